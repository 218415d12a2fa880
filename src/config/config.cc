#include "config/config.h"

#include <fcntl.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "config/internal/loader.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config {

namespace {

// Far above any real config; stops `ficus check -c /dev/zero` from eating memory.
constexpr size_t kMaxFileBytes = 16 << 20;

LoadResult Failure(std::string_view source, std::string reason) {
  LoadResult r;
  r.errors.push_back(ConfigError{std::string(source), 0, 0, "", std::move(reason)});
  return r;
}

LoadOptions WithDefaults(const LoadOptions& options) {
  LoadOptions o = options;
  if (!o.resolve) o.resolve = internal::ResolveWithGetaddrinfo;
  if (!o.getenv) {
    o.getenv = [](const std::string& name) -> std::optional<std::string> {
      const char* v = std::getenv(name.c_str());
      if (!v) return std::nullopt;
      return std::string(v);
    };
  }
  return o;
}

}  // namespace

std::string ConfigError::ToString() const {
  // Appends only: g++ 12 -O3 warns falsely (-Wrestrict) on "literal" + std::string.
  std::string out = file;
  if (line > 0) {
    out.append(":").append(std::to_string(line));
    if (column > 0) out.append(":").append(std::to_string(column));
  }
  out.append(": ");
  if (!field.empty()) out.append(field).append(": ");
  out.append(reason);
  return out;
}

std::string Endpoint::Address() const { return internal::JoinHostPort(host, port); }
std::string Listener::Address() const { return internal::JoinHostPort(address, port); }
std::string Admin::Address() const { return internal::JoinHostPort(address, port); }
bool Admin::IsLoopback() const { return internal::IsLoopbackIp(address); }

LoadResult LoadString(std::string_view yaml, std::string_view source_name,
                      const LoadOptions& options) {
  try {
    return internal::LoadYaml(yaml, source_name, WithDefaults(options));
  } catch (const std::exception& e) {
    return Failure(source_name,
                   std::string("internal error while loading the config: ") + e.what());
  } catch (...) {
    return Failure(source_name, "internal error while loading the config");
  }
}

LoadResult LoadString(std::string_view yaml, std::string_view source_name) {
  return LoadString(yaml, source_name, LoadOptions{});
}

LoadResult LoadFile(const std::string& path, const LoadOptions& options) {
  try {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Failure(path, std::string("cannot open: ") + std::strerror(errno));
    std::string text;
    char buf[64 * 1024];
    while (true) {
      const ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        return Failure(path, std::string("cannot read: ") + std::strerror(err));
      }
      if (n == 0) break;
      text.append(buf, static_cast<size_t>(n));
      if (text.size() > kMaxFileBytes) {
        ::close(fd);
        return Failure(path, "file is larger than " + FormatSize(kMaxFileBytes));
      }
    }
    ::close(fd);
    return LoadString(text, path, options);
  } catch (const std::exception& e) {
    return Failure(path, std::string("internal error while loading the config: ") + e.what());
  }
}

LoadResult LoadFile(const std::string& path) { return LoadFile(path, LoadOptions{}); }

// ---------------------------------------------------------------------------------------------
// Describe

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

// ---------------------------------------------------------------------------------------------
// ToRedactedYaml

namespace {

// Every string goes through EscapeEnv so that loading the output again gives the same values.
void Str(YAML::Emitter& out, std::string_view s) { out << internal::EscapeEnv(s); }

void StrList(YAML::Emitter& out, const std::vector<std::string>& items) {
  out << YAML::Flow << YAML::BeginSeq;
  for (const std::string& s : items) Str(out, s);
  out << YAML::EndSeq;
}

}  // namespace

namespace {
// The cluster's resilience settings, only the parts it configures.
void EmitResilience(YAML::Emitter& out, const Cluster& cl) {
  const RetryPolicy& r = cl.retry;
  if (r.enabled()) {
    out << YAML::Key << "retry" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "on" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    if (r.on_connect_failure) out << "connect_failure";
    if (r.on_reset) out << "reset";
    if (r.on_timeout) out << "timeout";
    for (uint16_t s : r.on_status) out << YAML::DoubleQuoted << std::to_string(s);
    out << YAML::EndSeq;
    out << YAML::Key << "max_tries" << YAML::Value << r.max_tries;
    out << YAML::Key << "per_try_timeout" << YAML::Value << FormatDuration(r.per_try_timeout);
    out << YAML::Key << "backoff" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "base" << YAML::Value << FormatDuration(r.backoff_base);
    out << YAML::Key << "max" << YAML::Value << FormatDuration(r.backoff_max) << YAML::EndMap;
    out << YAML::Key << "budget" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "ratio" << YAML::Value << r.budget_ratio;
    out << YAML::Key << "min_per_second" << YAML::Value << r.budget_min_per_second;
    out << YAML::Key << "window" << YAML::Value << FormatDuration(r.budget_window);
    out << YAML::EndMap << YAML::EndMap;
  }
  const OutlierDetection& o = cl.outlier_detection;
  if (o.enabled) {
    out << YAML::Key << "outlier_detection" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "consecutive_5xx" << YAML::Value << o.consecutive_5xx;
    out << YAML::Key << "consecutive_gateway_failures" << YAML::Value
        << o.consecutive_gateway_failures;
    out << YAML::Key << "base_ejection_time" << YAML::Value << FormatDuration(o.base_ejection_time);
    out << YAML::Key << "max_ejection_time" << YAML::Value << FormatDuration(o.max_ejection_time);
    out << YAML::Key << "max_ejection_percent" << YAML::Value << o.max_ejection_percent;
    out << YAML::EndMap;
  }
  const HealthCheck& h = cl.health_check;
  if (h.enabled) {
    out << YAML::Key << "health_check" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value;
    Str(out, h.path);
    if (!h.host.empty()) {
      out << YAML::Key << "host" << YAML::Value;
      Str(out, h.host);
    }
    out << YAML::Key << "interval" << YAML::Value << FormatDuration(h.interval);
    out << YAML::Key << "jitter" << YAML::Value << FormatDuration(h.jitter);
    out << YAML::Key << "timeout" << YAML::Value << FormatDuration(h.timeout);
    out << YAML::Key << "expected_statuses" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& [lo, hi] : h.expected_statuses) {
      out << YAML::DoubleQuoted << (std::to_string(lo) + "-" + std::to_string(hi));
    }
    out << YAML::EndSeq;
    out << YAML::Key << "healthy_threshold" << YAML::Value << h.healthy_threshold;
    out << YAML::Key << "unhealthy_threshold" << YAML::Value << h.unhealthy_threshold;
    out << YAML::EndMap;
  }
  internal::EmitAdaptive(out, cl);
  const CircuitBreakers& b = cl.circuit_breakers;
  if (b.any()) {
    out << YAML::Key << "circuit_breakers" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "max_connections" << YAML::Value << b.max_connections;
    out << YAML::Key << "max_pending" << YAML::Value << b.max_pending;
    out << YAML::Key << "max_requests" << YAML::Value << b.max_requests;
    out << YAML::Key << "max_retries" << YAML::Value << b.max_retries;
    out << YAML::EndMap;
  }
  if (cl.hash_key.kind != HashKey::Kind::kNone) {
    out << YAML::Key << "hash_key" << YAML::Value << YAML::Flow << YAML::BeginMap;
    switch (cl.hash_key.kind) {
      case HashKey::Kind::kHeader:
        out << YAML::Key << "header" << YAML::Value;
        break;
      case HashKey::Kind::kCookie:
        out << YAML::Key << "cookie" << YAML::Value;
        break;
      case HashKey::Kind::kQuery:
        out << YAML::Key << "query" << YAML::Value;
        break;
      default:
        out << YAML::Key << "client_address" << YAML::Value << true;
        break;
    }
    if (cl.hash_key.kind != HashKey::Kind::kClientAddress) Str(out, cl.hash_key.name);
    out << YAML::EndMap;
  }
  if (!cl.affinity.cookie.empty()) {
    out << YAML::Key << "affinity" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "cookie" << YAML::Value;
    Str(out, cl.affinity.cookie);
    out << YAML::Key << "ttl" << YAML::Value << FormatDuration(cl.affinity.ttl) << YAML::EndMap;
  }
  out << YAML::Key << "panic_threshold" << YAML::Value << cl.panic_threshold;
  if (cl.dns_refresh.count() > 0) {
    out << YAML::Key << "dns_refresh" << YAML::Value << FormatDuration(cl.dns_refresh);
  }
}
}  // namespace

std::string ToRedactedYaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "workers" << YAML::Value << c.workers;
  out << YAML::Key << "data_dir" << YAML::Value;
  Str(out, c.data_dir);
  out << YAML::Key << "log_level" << YAML::Value;
  Str(out, c.log_level);

  out << YAML::Key << "admin" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << c.admin.Address();
  out << YAML::Key << "token" << YAML::Value
      << (c.admin.token.empty() ? std::string() : std::string("<redacted>"));
  if (!c.admin.public_paths.empty())
    out << YAML::Key << "public_paths" << YAML::Value << YAML::Flow << c.admin.public_paths;
  out << YAML::EndMap;
  internal::EmitOverload(out, c.overload);

  out << YAML::Key << "listeners" << YAML::Value << YAML::BeginSeq;
  for (const Listener& l : c.listeners) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    Str(out, l.name);
    out << YAML::Key << "listen" << YAML::Value << l.Address();
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "clusters" << YAML::Value << YAML::BeginSeq;
  for (const Cluster& cl : c.clusters) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    Str(out, cl.name);
    out << YAML::Key << "endpoints" << YAML::Value << YAML::BeginSeq;
    for (const Endpoint& e : cl.endpoints) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "address" << YAML::Value << e.Address();
      out << YAML::Key << "weight" << YAML::Value << e.weight;
      out << YAML::EndMap;
      if (!e.hostname.empty()) out << YAML::Comment(e.hostname);  // the name it resolved from
    }
    out << YAML::EndSeq;
    out << YAML::Key << "load_balancer" << YAML::Value;
    Str(out, cl.load_balancer);
    out << YAML::Key << "connect_timeout" << YAML::Value << FormatDuration(cl.connect_timeout);
    out << YAML::Key << "pool" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "max_idle" << YAML::Value << cl.pool.max_idle;
    out << YAML::Key << "idle_timeout" << YAML::Value << FormatDuration(cl.pool.idle_timeout);
    out << YAML::EndMap;
    EmitResilience(out, cl);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  out << YAML::Key << "routes" << YAML::Value << YAML::BeginSeq;
  for (const Route& r : c.routes) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    Str(out, r.name);
    out << YAML::Key << "match" << YAML::Value << YAML::BeginMap;
    const RouteMatch& m = r.match;
    if (!m.hosts.empty()) {
      out << YAML::Key << "host" << YAML::Value;
      StrList(out, m.hosts);
    }
    if (!m.path.empty()) {
      out << YAML::Key << "path" << YAML::Value;
      Str(out, m.path);
    }
    if (!m.path_prefix.empty()) {
      out << YAML::Key << "path_prefix" << YAML::Value;
      Str(out, m.path_prefix);
    }
    if (!m.path_regex.empty()) {
      out << YAML::Key << "path_regex" << YAML::Value;
      Str(out, m.path_regex);
    }
    if (!m.methods.empty()) {
      out << YAML::Key << "methods" << YAML::Value;
      StrList(out, m.methods);
    }
    if (!m.headers.empty()) {
      out << YAML::Key << "headers" << YAML::Value << YAML::BeginSeq;
      for (const HeaderMatcher& h : m.headers) {
        out << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "name" << YAML::Value;
        Str(out, h.name);
        if (h.exact) {
          out << YAML::Key << "value" << YAML::Value;
          Str(out, *h.exact);
        }
        out << YAML::Key << "invert" << YAML::Value << h.invert;
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;  // match
    out << YAML::Key << "cluster" << YAML::Value;
    Str(out, r.cluster);
    if (r.timeout) out << YAML::Key << "timeout" << YAML::Value << FormatDuration(*r.timeout);
    if (r.upstream_timeout) {
      out << YAML::Key << "upstream_timeout" << YAML::Value << FormatDuration(*r.upstream_timeout);
    }
    if (r.record) {
      out << YAML::Key << "record" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "path" << YAML::Value;
      Str(out, r.record->path);
      out << YAML::Key << "sample" << YAML::Value << r.record->sample;
      out << YAML::Key << "max_body_bytes" << YAML::Value << FormatSize(r.record->max_body_bytes);
      out << YAML::Key << "redact_headers" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& h : r.record->redact_headers) Str(out, h);
      out << YAML::EndSeq << YAML::EndMap;
    }
    internal::EmitProtection(out, r);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;

  const Timeouts& t = c.timeouts;
  out << YAML::Key << "timeouts" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "connect" << YAML::Value << FormatDuration(t.connect);
  out << YAML::Key << "request_head" << YAML::Value << FormatDuration(t.request_head);
  out << YAML::Key << "idle" << YAML::Value << FormatDuration(t.idle);
  out << YAML::Key << "upstream_response" << YAML::Value << FormatDuration(t.upstream_response);
  out << YAML::Key << "request" << YAML::Value << FormatDuration(t.request);
  out << YAML::Key << "drain" << YAML::Value << FormatDuration(t.drain);
  out << YAML::EndMap;

  const Limits& l = c.limits;
  out << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_head_bytes" << YAML::Value << FormatSize(l.max_head_bytes);
  out << YAML::Key << "max_header_count" << YAML::Value << l.max_header_count;
  out << YAML::Key << "max_body_bytes" << YAML::Value << FormatSize(l.max_body_bytes);
  out << YAML::Key << "max_connections" << YAML::Value << l.max_connections;
  out << YAML::Key << "headers_with_underscores" << YAML::Value
      << UnderscoreActionName(l.headers_with_underscores);
  out << YAML::EndMap;

  out << YAML::Key << "telemetry" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_size" << YAML::Value << FormatSize(c.telemetry.max_size);
  out << YAML::Key << "error_samples_per_route" << YAML::Value
      << c.telemetry.error_samples_per_route;
  out << YAML::Key << "slo_interval" << YAML::Value << FormatDuration(c.telemetry.slo_interval);
  out << YAML::Key << "repeat_sample" << YAML::Value << c.telemetry.repeat_sample;
  out << YAML::EndMap;
  if (!c.slos.empty()) {
    out << YAML::Key << "slos" << YAML::Value << YAML::BeginSeq;
    for (const Slo& slo : c.slos) {
      out << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value;
      Str(out, slo.name);
      out << YAML::Key << "routes" << YAML::Value;
      StrList(out, slo.routes.empty() ? std::vector<std::string>{"*"} : slo.routes);
      if (slo.availability) {
        out << YAML::Key << "availability" << YAML::Value
            << internal::FormatPercent(*slo.availability);
      }
      if (slo.latency) {
        out << YAML::Key << "latency" << YAML::Value << YAML::Flow << YAML::BeginMap;
        out << YAML::Key << "threshold" << YAML::Value << FormatDuration(slo.latency->threshold);
        out << YAML::Key << "objective" << YAML::Value
            << internal::FormatPercent(slo.latency->objective);
        out << YAML::EndMap;
      }
      out << YAML::Key << "window" << YAML::Value << FormatDuration(slo.window);
      out << YAML::Key << "min_requests" << YAML::Value << slo.min_requests;
      if (!slo.webhooks.empty()) {
        out << YAML::Key << "webhooks" << YAML::Value << YAML::BeginSeq;
        for (const Webhook& w : slo.webhooks) Str(out, w.url);
        out << YAML::EndSeq;
        if (!slo.webhooks.front().ca_file.empty()) {
          out << YAML::Key << "ca_file" << YAML::Value;
          Str(out, slo.webhooks.front().ca_file);
        }
      }
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (c.access_log.enabled) {
    out << YAML::Key << "access_log" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value;
    Str(out, c.access_log.path);
    if (!c.access_log.fields.empty()) {
      out << YAML::Key << "fields" << YAML::Value;
      StrList(out, c.access_log.fields);
    }
    out << YAML::Key << "sample" << YAML::Value << c.access_log.sample;
    out << YAML::EndMap;
  }
  if (c.tracing.enabled) {
    const Tracing& tr = c.tracing;
    out << YAML::Key << "tracing" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "endpoint" << YAML::Value;
    Str(out, tr.endpoint);
    if (!tr.ca_file.empty()) {
      out << YAML::Key << "ca_file" << YAML::Value;
      Str(out, tr.ca_file);
    }
    out << YAML::Key << "sample" << YAML::Value << tr.sample;
    out << YAML::Key << "service_name" << YAML::Value;
    Str(out, tr.service_name);
    out << YAML::Key << "batch_size" << YAML::Value << tr.batch_size;
    out << YAML::Key << "flush_interval" << YAML::Value << FormatDuration(tr.flush_interval);
    out << YAML::Key << "timeout" << YAML::Value << FormatDuration(tr.timeout);
    out << YAML::EndMap;
  }

  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace ficus::config
