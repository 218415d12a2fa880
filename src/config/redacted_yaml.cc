// GET /config: the running config as YAML that loads back to the same values, secrets redacted.
#include <yaml-cpp/yaml.h>

#include "config/config.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config {

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

// queues[]: every key, so that the YAML loads back to the same queues.
void EmitQueues(YAML::Emitter& out, const std::vector<Queue>& queues) {
  if (queues.empty()) return;
  out << YAML::Key << "queues" << YAML::Value << YAML::BeginSeq;
  for (const Queue& q : queues) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    Str(out, q.name);
    out << YAML::Key << "max_jobs" << YAML::Value << q.max_jobs;
    out << YAML::Key << "max_bytes" << YAML::Value << FormatSize(q.max_bytes);
    out << YAML::Key << "max_body" << YAML::Value << FormatSize(q.max_body);
    out << YAML::Key << "concurrency" << YAML::Value << q.concurrency;
    out << YAML::Key << "rate" << YAML::Value << std::to_string(q.rate) + "/s";
    out << YAML::Key << "attempt_timeout" << YAML::Value << FormatDuration(q.attempt_timeout);
    out << YAML::Key << "backoff" << YAML::Value << FormatDuration(q.backoff);
    out << YAML::Key << "max_backoff" << YAML::Value << FormatDuration(q.max_backoff);
    out << YAML::Key << "retry_on" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (uint16_t s : q.retry_on) out << s;
    out << YAML::EndSeq;
    out << YAML::Key << "retention" << YAML::Value << FormatDuration(q.retention);
    out << YAML::Key << "jobs_path" << YAML::Value;
    Str(out, q.jobs_path);
    out << YAML::Key << "retry_after" << YAML::Value << FormatDuration(q.retry_after);
    out << YAML::Key << "result_body" << YAML::Value << FormatSize(q.result_body);
    out << YAML::Key << "retention_bytes" << YAML::Value << FormatSize(q.retention_bytes);
    if (q.callback) {
      const QueueCallback& cb = *q.callback;
      out << YAML::Key << "callback" << YAML::Value << YAML::BeginMap;
      if (cb.url) {
        out << YAML::Key << "url" << YAML::Value;
        Str(out, cb.url->url);
      }
      out << YAML::Key << "secret" << YAML::Value << "<redacted>";
      if (!cb.request_header.empty()) {
        out << YAML::Key << "request_header" << YAML::Value;
        Str(out, cb.request_header);
        out << YAML::Key << "allowed_origins" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const std::string& o : cb.allowed_origins) Str(out, o);
        out << YAML::EndSeq;
      }
      out << YAML::Key << "max_attempts" << YAML::Value << cb.max_attempts;
      out << YAML::Key << "timeout" << YAML::Value << FormatDuration(cb.timeout);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
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
  internal::EmitPostgres(out, c.postgres);

  out << YAML::Key << "listeners" << YAML::Value << YAML::BeginSeq;
  for (const Listener& l : c.listeners) {
    out << YAML::BeginMap;
    out << YAML::Key << "name" << YAML::Value;
    Str(out, l.name);
    out << YAML::Key << "listen" << YAML::Value << l.Address();
    if (l.kind == ListenerKind::kPostgres) out << YAML::Key << "kind" << YAML::Value << "postgres";
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
    if (r.cache) {
      const Cache& k = *r.cache;
      out << YAML::Key << "cache" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "ttl" << YAML::Value << FormatDuration(k.ttl);
      out << YAML::Key << "stale_while_revalidate" << YAML::Value
          << FormatDuration(k.stale_while_revalidate);
      out << YAML::Key << "stale_if_error" << YAML::Value << FormatDuration(k.stale_if_error);
      out << YAML::Key << "max_size" << YAML::Value << FormatSize(k.max_size);
      out << YAML::Key << "max_object_size" << YAML::Value << FormatSize(k.max_object_size);
      out << YAML::Key << "query_sort" << YAML::Value << k.query_sort;
      out << YAML::Key << "query_ignore" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& q : k.query_ignore) Str(out, q);
      out << YAML::EndSeq;
      out << YAML::Key << "force_ttl" << YAML::Value << k.force_ttl;
      out << YAML::Key << "coalesce_timeout" << YAML::Value << FormatDuration(k.coalesce_timeout);
      out << YAML::EndMap;
    }
    if (r.compress) {
      const Compress& k = *r.compress;
      out << YAML::Key << "compress" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "codings" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& c : k.codings) Str(out, c);
      out << YAML::EndSeq;
      out << YAML::Key << "types" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& t : k.types) Str(out, t);
      out << YAML::EndSeq;
      out << YAML::Key << "min_size" << YAML::Value << FormatSize(k.min_size);
      out << YAML::Key << "gzip_level" << YAML::Value << k.gzip_level;
      out << YAML::Key << "brotli_level" << YAML::Value << k.brotli_level;
      out << YAML::Key << "zstd_level" << YAML::Value << k.zstd_level;
      out << YAML::EndMap;
    }
    if (r.offload) {
      out << YAML::Key << "offload" << YAML::Value << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "queue" << YAML::Value;
      Str(out, r.offload->queue);
      out << YAML::Key << "max_attempts" << YAML::Value << r.offload->max_attempts;
      out << YAML::EndMap;
    }
    if (r.jobs) {
      out << YAML::Key << "jobs" << YAML::Value << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "queue" << YAML::Value;
      Str(out, r.jobs->queue);
      out << YAML::EndMap;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  EmitQueues(out, c.queues);

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
