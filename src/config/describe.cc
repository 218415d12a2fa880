// `ficus check`'s summary of a config: listeners, routes (match -> cluster), clusters, SLOs.
#include "config/config.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config {

namespace {

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& s : items) {
    if (!out.empty()) out.append(sep);
    out.append(s);
  }
  return out;
}

std::string DescribeMatch(const RouteMatch& m) {
  std::string out = "[";
  out.append(m.hosts.empty() ? std::string("*") : Join(m.hosts, ","));
  out.append("] [");
  out.append(m.methods.empty() ? std::string("*") : Join(m.methods, ","));
  out.append("] ");
  if (!m.path.empty()) {
    out += "path " + m.path;
  } else if (!m.path_prefix.empty()) {
    out += "prefix " + m.path_prefix;
  } else if (!m.path_regex.empty()) {
    out += "regex " + m.path_regex;
  } else {
    out += "any path";
  }
  if (!m.headers.empty()) {
    std::vector<std::string> hs;
    for (const HeaderMatcher& h : m.headers) {
      if (h.exact) {
        hs.push_back(h.name + (h.invert ? "!=" : "=") + *h.exact);
      } else {
        hs.push_back(h.name + (h.invert ? " absent" : " present"));
      }
    }
    out += " headers(" + Join(hs, ", ") + ")";
  }
  return out;
}

}  // namespace

const char* UnderscoreActionName(UnderscoreAction a) {
  switch (a) {
    case UnderscoreAction::kAllow:
      return "allow";
    case UnderscoreAction::kDrop:
      return "drop";
    case UnderscoreAction::kReject:
      return "reject";
  }
  return "drop";
}

std::string Describe(const Config& c) {
  std::string out;
  out += "config " + c.source + "\n";
  out += "workers: " + std::to_string(c.workers) + ", log_level: " + c.log_level +
         ", data_dir: " + c.data_dir + "\n";
  out += "admin: " + c.admin.Address() + (c.admin.token.empty() ? " (no token)" : " (token set)") +
         "\n";
  out += "listeners:\n";
  for (const Listener& l : c.listeners) out += "  " + l.name + ": " + l.Address() + "\n";
  out += "routes (first match wins):\n";
  for (const Route& r : c.routes) {
    out += "  " + r.name + ": " + DescribeMatch(r.match) + " -> " + r.cluster;
    std::vector<std::string> extra;
    if (r.timeout) extra.push_back("timeout " + FormatDuration(*r.timeout));
    if (r.upstream_timeout) {
      extra.push_back("upstream_timeout " + FormatDuration(*r.upstream_timeout));
    }
    if (r.record) extra.push_back("record " + r.record->path);
    if (r.auth) extra.push_back("auth");
    for (const RateLimit& l : r.rate_limits) extra.push_back("rate_limit " + l.name);
    if (r.concurrency) extra.push_back("concurrency " + std::to_string(r.concurrency->max));
    if (r.cache) extra.push_back("cache ttl " + FormatDuration(r.cache->ttl));
    if (r.compress) extra.push_back("compressed");
    if (r.offload) extra.push_back("offload to queue " + r.offload->queue);
    if (r.jobs) extra.push_back("job URLs of queue " + r.jobs->queue);
    if (!extra.empty()) out += " (" + Join(extra, ", ") + ")";
    out += "\n";
  }
  out += "clusters:\n";
  for (const Cluster& cl : c.clusters) {
    out += "  " + cl.name + ": " + cl.load_balancer + ", connect_timeout " +
           FormatDuration(cl.connect_timeout) + ", pool max_idle " +
           std::to_string(cl.pool.max_idle) + " idle_timeout " +
           FormatDuration(cl.pool.idle_timeout) + "\n";
    for (const Endpoint& e : cl.endpoints) {
      out += "    " + e.Address();
      if (!e.hostname.empty()) out += " (" + e.hostname + ")";
      out += " weight " + std::to_string(e.weight) + "\n";
    }
  }
  const Timeouts& t = c.timeouts;
  out += "timeouts: connect " + FormatDuration(t.connect) + ", request_head " +
         FormatDuration(t.request_head) + ", idle " + FormatDuration(t.idle) +
         ", upstream_response " + FormatDuration(t.upstream_response) + ", request " +
         (t.request.count() == 0 ? std::string("none") : FormatDuration(t.request)) + ", drain " +
         FormatDuration(t.drain) + "\n";
  const Limits& lim = c.limits;
  out += "limits: max_head_bytes " + FormatSize(lim.max_head_bytes) + ", max_header_count " +
         std::to_string(lim.max_header_count) + ", max_body_bytes " +
         (lim.max_body_bytes == 0 ? std::string("unlimited") : FormatSize(lim.max_body_bytes)) +
         ", max_connections " + std::to_string(lim.max_connections) +
         ", headers_with_underscores " + UnderscoreActionName(lim.headers_with_underscores) + "\n";
  out += "telemetry: " + c.data_dir + "/ficus.db, max_size " + FormatSize(c.telemetry.max_size) +
         ", error_samples_per_route " + std::to_string(c.telemetry.error_samples_per_route) + "\n";
  if (!c.slos.empty()) {
    out += "slos:\n";
    for (const Slo& slo : c.slos) {
      out += "  " + slo.name + ": routes " +
             (slo.routes.empty() ? std::string("*") : Join(slo.routes, ",")) + ", window " +
             FormatDuration(slo.window) + ", min_requests " + std::to_string(slo.min_requests);
      if (slo.availability) {
        out += ", availability " + internal::FormatPercent(*slo.availability);
      }
      if (slo.latency) {
        out += ", latency " + internal::FormatPercent(slo.latency->objective) + " within " +
               FormatDuration(slo.latency->threshold);
      }
      out += "\n";
      for (const Webhook& w : slo.webhooks) out += "    webhook " + w.url + "\n";
    }
  }
  return out;
}

}  // namespace ficus::config
