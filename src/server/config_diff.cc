#include "server/internal/config_diff.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace ficus::server {
namespace {

void Json(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += ch;
    }
  }
  out += '"';
}

// Everything that makes a cluster behave differently, as one comparable string.
std::string Fingerprint(const config::Cluster& c) {
  std::string f = c.load_balancer;
  for (const auto& e : c.endpoints) {
    f += fmt::format("|{}:{}*{}/{}", e.host, e.port, e.weight, e.hostname);
  }
  const auto& r = c.retry;
  f += fmt::format("|{}|{}|{}|{}|{}", c.connect_timeout.count(), c.pool.max_idle,
                   c.pool.idle_timeout.count(), r.max_tries, r.per_try_timeout.count());
  f += fmt::format("|{}{}{}|{}|{}|{}|{}|{}|{}", r.on_connect_failure, r.on_reset, r.on_timeout,
                   fmt::join(r.on_status, ","), r.backoff_base.count(), r.backoff_max.count(),
                   r.budget_ratio, r.budget_min_per_second, r.budget_window.count());
  const auto& o = c.outlier_detection;
  f += fmt::format("|{}|{}|{}|{}|{}|{}", o.enabled, o.consecutive_5xx,
                   o.consecutive_gateway_failures, o.base_ejection_time.count(),
                   o.max_ejection_time.count(), o.max_ejection_percent);
  const auto& h = c.health_check;
  f += fmt::format("|{}|{}|{}|{}|{}|{}|{}|{}", h.enabled, h.path, h.host, h.interval.count(),
                   h.jitter.count(), h.timeout.count(), h.healthy_threshold, h.unhealthy_threshold);
  for (const auto& [lo, hi] : h.expected_statuses) f += fmt::format("|{}-{}", lo, hi);
  const auto& b = c.circuit_breakers;
  f += fmt::format("|{}|{}|{}|{}", b.max_connections, b.max_pending, b.max_requests, b.max_retries);
  f += fmt::format("|{}|{}|{}|{}|{}|{}", static_cast<int>(c.hash_key.kind), c.hash_key.name,
                   c.affinity.cookie, c.affinity.ttl.count(), c.panic_threshold,
                   c.dns_refresh.count());
  return f;
}

std::string Fingerprint(const config::Route& r) {
  std::string f =
      r.cluster + "|" + r.match.path + "|" + r.match.path_prefix + "|" + r.match.path_regex;
  for (const auto& h : r.match.hosts) f += "|h:" + h;
  for (const auto& m : r.match.methods) f += "|m:" + m;
  for (const auto& h : r.match.headers) {
    f += "|H:" + h.name + "=" + h.exact.value_or("*") + (h.invert ? "!" : "");
  }
  f += fmt::format("|{}|{}", r.timeout ? r.timeout->count() : -1,
                   r.upstream_timeout ? r.upstream_timeout->count() : -1);
  return f;
}

// {"added":[..],"removed":[..],"changed":[..]} from name -> fingerprint maps (changed omitted
// when `with_changed` is false).
void Section(std::string& out, const char* name, const std::map<std::string, std::string>& a,
             const std::map<std::string, std::string>& b, bool with_changed) {
  std::vector<std::string> added, removed, changed;
  for (const auto& [k, v] : b) {
    auto it = a.find(k);
    if (it == a.end()) {
      added.push_back(k);
    } else if (it->second != v) {
      changed.push_back(k);
    }
  }
  for (const auto& [k, v] : a) {
    if (!b.count(k)) removed.push_back(k);
  }
  auto list = [&](const char* key, const std::vector<std::string>& names, bool comma) {
    Json(out, key);
    out += ":[";
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) out += ',';
      Json(out, names[i]);
    }
    out += comma ? "]," : "]";
  };
  Json(out, name);
  out += ":{";
  list("added", added, true);
  list("removed", removed, with_changed);
  if (with_changed) list("changed", changed, false);
  out += "},";
}

}  // namespace

std::string ConfigErrorsJson(const std::vector<config::ConfigError>& errors) {
  std::string out = "{\"applied\":false,\"errors\":[";
  for (size_t i = 0; i < errors.size(); ++i) {
    const auto& e = errors[i];
    if (i) out += ',';
    out += fmt::format("{{\"line\":{},\"column\":{},\"field\":", e.line, e.column);
    Json(out, e.field);
    out += ",\"reason\":";
    Json(out, e.reason);
    out += ",\"message\":";
    Json(out, e.ToString());
    out += '}';
  }
  out += "]}\n";
  return out;
}

std::string ConfigDiffJson(const config::Config& before, const config::Config& after) {
  std::map<std::string, std::string> la, lb, ca, cb, ra, rb;
  for (const auto& l : before.listeners) la[l.Address()] = l.name;
  for (const auto& l : after.listeners) lb[l.Address()] = l.name;
  for (const auto& c : before.clusters) ca[c.name] = Fingerprint(c);
  for (const auto& c : after.clusters) cb[c.name] = Fingerprint(c);
  for (const auto& r : before.routes) ra[r.name] = Fingerprint(r);
  for (const auto& r : after.routes) rb[r.name] = Fingerprint(r);
  std::string out = "{\"applied\":true,";
  Section(out, "listeners", la, lb, false);
  Section(out, "clusters", ca, cb, true);
  Section(out, "routes", ra, rb, true);
  const bool settings = before.timeouts.request != after.timeouts.request ||
                        before.timeouts.idle != after.timeouts.idle ||
                        before.timeouts.upstream_response != after.timeouts.upstream_response ||
                        before.timeouts.connect != after.timeouts.connect ||
                        before.timeouts.request_head != after.timeouts.request_head ||
                        before.timeouts.drain != after.timeouts.drain ||
                        before.limits.max_body_bytes != after.limits.max_body_bytes ||
                        before.limits.max_connections != after.limits.max_connections ||
                        before.limits.max_head_bytes != after.limits.max_head_bytes ||
                        before.limits.max_header_count != after.limits.max_header_count ||
                        before.log_level != after.log_level;
  out += fmt::format("\"settings_changed\":{}}}\n", settings);
  return out;
}

}  // namespace ficus::server
