// The protection keys of a route and cluster, and the overload guard, as the redacted YAML of
// `GET /config` shows them (the reading side is protect.cc).
#include <yaml-cpp/yaml.h>

#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

void EmitAdaptive(YAML::Emitter& out, const Cluster& cl) {
  if (!cl.adaptive_concurrency) return;
  const AdaptiveConcurrency& a = *cl.adaptive_concurrency;
  out << YAML::Key << "adaptive_concurrency" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "min_limit" << YAML::Value << a.min_limit;
  out << YAML::Key << "max_limit" << YAML::Value << a.max_limit;
  out << YAML::Key << "initial_limit" << YAML::Value << a.initial_limit;
  out << YAML::Key << "window" << YAML::Value << FormatDuration(a.window);
  out << YAML::Key << "tolerance" << YAML::Value << a.tolerance;
  out << YAML::EndMap;
}

void EmitOverload(YAML::Emitter& out, const Overload& o) {
  if (!o.any()) return;
  out << YAML::Key << "overload" << YAML::Value << YAML::Flow << YAML::BeginMap;
  if (o.max_memory > 0) out << YAML::Key << "max_memory" << YAML::Value << o.max_memory;
  if (o.max_open_files > 0) {
    out << YAML::Key << "max_open_files" << YAML::Value << o.max_open_files;
  } else if (o.max_open_files_percent > 0) {
    out << YAML::Key << "max_open_files" << YAML::Value
        << std::to_string(o.max_open_files_percent) + "%";
  }
  out << YAML::EndMap;
}

void EmitProtection(YAML::Emitter& out, const Route& r) {
  if (!r.rate_limits.empty()) {
    out << YAML::Key << "rate_limit" << YAML::Value << YAML::BeginSeq;
    for (const RateLimit& l : r.rate_limits) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "name" << YAML::Value << l.name;
      out << YAML::Key << "key" << YAML::Value << YAML::Flow << l.key;
      out << YAML::Key << "rate" << YAML::Value
          << std::to_string(l.count) + "/" + FormatDuration(l.period);
      out << YAML::Key << "burst" << YAML::Value << l.burst;
      if (l.ipv4_prefix != 32) out << YAML::Key << "ipv4_prefix" << YAML::Value << l.ipv4_prefix;
      if (l.ipv6_prefix != 128) out << YAML::Key << "ipv6_prefix" << YAML::Value << l.ipv6_prefix;
      out << YAML::Key << "shadow" << YAML::Value << l.shadow;
      out << YAML::Key << "headers" << YAML::Value << l.headers;
      out << YAML::Key << "max_keys" << YAML::Value << l.max_keys;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq;
  }
  if (r.concurrency) {
    const ConcurrencyLimit& c = *r.concurrency;
    out << YAML::Key << "concurrency" << YAML::Value << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "max" << YAML::Value << c.max;
    out << YAML::Key << "queue" << YAML::Value << c.queue;
    out << YAML::Key << "queue_timeout" << YAML::Value << FormatDuration(c.queue_timeout);
    if (!c.class_header.empty())
      out << YAML::Key << "class_header" << YAML::Value << c.class_header;
    out << YAML::Key << "class" << YAML::Value << PriorityClassName(c.default_class);
    out << YAML::EndMap;
  }
  if (r.auth) {
    const Auth& a = *r.auth;
    out << YAML::Key << "auth" << YAML::Value << YAML::BeginMap;
    if (a.api_keys) {
      out << YAML::Key << "api_keys" << YAML::Value << YAML::BeginMap;
      out << YAML::Key << "header" << YAML::Value << a.api_keys->header;
      if (!a.api_keys->query.empty())
        out << YAML::Key << "query" << YAML::Value << a.api_keys->query;
      if (!a.api_keys->file.empty()) out << YAML::Key << "file" << YAML::Value << a.api_keys->file;
      if (!a.api_keys->keys.empty()) {
        // Digests only: the keys themselves were never kept.
        out << YAML::Key << "keys" << YAML::Value << YAML::BeginMap;
        for (const auto& [consumer, hex] : a.api_keys->keys)
          out << YAML::Key << consumer << YAML::Value << "sha256:" + hex;
        out << YAML::EndMap;
      }
      out << YAML::EndMap;
    }
    if (a.jwt) {
      const JwtAuth& j = *a.jwt;
      out << YAML::Key << "jwt" << YAML::Value << YAML::BeginMap;
      if (!j.jwks_file.empty()) {
        out << YAML::Key << "jwks_file" << YAML::Value << j.jwks_file;
      } else {
        out << YAML::Key << "jwks_url" << YAML::Value << j.jwks_url;
        if (!j.jwks_ca_file.empty())
          out << YAML::Key << "jwks_ca_file" << YAML::Value << j.jwks_ca_file;
        out << YAML::Key << "jwks_refresh" << YAML::Value << FormatDuration(j.jwks_refresh);
        out << YAML::Key << "jwks_min_refresh" << YAML::Value << FormatDuration(j.jwks_min_refresh);
        out << YAML::Key << "jwks_timeout" << YAML::Value << FormatDuration(j.jwks_timeout);
      }
      out << YAML::Key << "token_cache" << YAML::Value << j.token_cache;
      if (!j.issuer.empty()) out << YAML::Key << "issuer" << YAML::Value << j.issuer;
      if (!j.audiences.empty())
        out << YAML::Key << "audience" << YAML::Value << YAML::Flow << j.audiences;
      out << YAML::Key << "algorithms" << YAML::Value << YAML::Flow << j.algorithms;
      out << YAML::Key << "leeway" << YAML::Value << FormatDuration(j.leeway);
      out << YAML::Key << "consumer_claim" << YAML::Value << j.consumer_claim;
      out << YAML::EndMap;
    }
    if (!a.consumers.empty())
      out << YAML::Key << "consumers" << YAML::Value << YAML::Flow << a.consumers;
    out << YAML::EndMap;
  }
}

}  // namespace ficus::config::internal
