// Sections: clusters and their endpoints (names resolved when the config loads).
#include <sys/socket.h>

#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

std::optional<std::string> Loader::Resolve(const Value& v, const std::string& name) {
  auto it = resolved_.find(name);
  if (it == resolved_.end()) {
    std::string error;
    std::optional<std::string> ip = options_.resolve(name, &error);
    it = resolved_.emplace(name, std::make_pair(ip, error)).first;
  }
  if (!it->second.first) {
    Error(v, "cannot resolve host " + Quote(name) + ": " + it->second.second);
    return std::nullopt;
  }
  std::optional<std::string> ip = CanonicalIp(*it->second.first);
  if (!ip) {
    Error(v, "host " + Quote(name) + " resolved to " + Quote(*it->second.first) +
                 ", which is not an IP address");
  }
  return ip;
}

std::optional<Endpoint> Loader::ReadEndpoint(const Value& v) {
  Endpoint e;
  const Value* address = &v;
  Fields f;
  if (v.node.IsMap()) {
    if (!ReadMap(v, {"address", "weight"}, &f)) return std::nullopt;
    Require(f, v, "address");
    if (const Value* w = f.Get("weight")) {
      if (auto n = Integer(*w, 1, 1000)) e.weight = static_cast<uint32_t>(*n);
    }
    address = f.Get("address");
    if (!address) return std::nullopt;
  } else if (!v.node.IsScalar()) {
    Error(v, "expected an address like 127.0.0.1:3000 or a map {address, weight}, got " +
                 KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(*address);
  if (!s) return std::nullopt;
  HostPort hp;
  std::string error;
  if (!ParseHostPort(*s, &hp, &error)) {
    Error(*address, Quote(*s) + ": " + error);
    return std::nullopt;
  }
  int family = 0;
  if (std::optional<std::string> ip = CanonicalIp(hp.host, &family)) {
    if (hp.bracketed != (family == AF_INET6)) {
      Error(*address, "brackets are for IPv6 addresses only, got " + Quote(*s));
      return std::nullopt;
    }
    e.host = *ip;
  } else if (hp.bracketed) {
    Error(*address, Quote(hp.host) + " is not an IPv6 address");
    return std::nullopt;
  } else if (!IsValidHostName(hp.host)) {
    Error(*address, "invalid host name " + Quote(hp.host));
    return std::nullopt;
  } else {
    std::optional<std::string> ip = Resolve(*address, hp.host);
    if (!ip) return std::nullopt;
    e.host = *ip;
    e.hostname = hp.host;
  }
  e.port = hp.port;
  return e;
}

void Loader::ReadClusters(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one cluster is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item,
                 {"name", "endpoints", "load_balancer", "connect_timeout", "pool", "retry",
                  "outlier_detection", "health_check", "circuit_breakers", "hash_key", "affinity",
                  "panic_threshold", "dns_refresh", "adaptive_concurrency"},
                 &f)) {
      continue;
    }
    Cluster c;
    c.line = item.loc.line;
    c.connect_timeout = config_.timeouts.connect;
    Require(f, item, "name");
    bool ok = true;
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      name_loc = name->loc;
      c.line = name->loc.line;
      // Remember the name even when it is invalid, so routes naming it do not cascade.
      if (name->node.IsScalar()) declared_clusters_.push_back(name->node.Scalar());
      if (auto s = Name(*name)) {
        c.name = *s;
        if (name->node.Scalar() != c.name) declared_clusters_.push_back(c.name);
        for (size_t k = 0; k < config_.clusters.size(); ++k) {
          if (config_.clusters[k].name == c.name) {
            Error(*name, "duplicate cluster name " + Quote(c.name) + " (also clusters[" +
                             std::to_string(k) + "] at line " +
                             std::to_string(cluster_locs_[k].line) + ")");
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    Require(f, item, "endpoints");
    if (const Value* eps = f.Get("endpoints")) {
      if (ExpectList(*eps)) {
        if (eps->node.size() == 0) Error(*eps, "at least one endpoint is required");
        size_t j = 0;
        std::vector<std::string> seen;
        for (auto e = eps->node.begin(); e != eps->node.end(); ++e, ++j) {
          const Value ev = Item(*eps, *e, j);
          std::optional<Endpoint> endpoint = ReadEndpoint(ev);
          if (!endpoint) continue;
          const std::string addr = endpoint->Address();
          auto dup = std::find(seen.begin(), seen.end(), addr);
          if (dup != seen.end()) {
            std::string how = endpoint->hostname.empty()
                                  ? ""
                                  : " (" + endpoint->hostname + " resolves to " + addr + ")";
            Error(ev, "endpoint " + addr + " is listed twice (also endpoints[" +
                          std::to_string(dup - seen.begin()) + "])" + how +
                          "; use weight to send it more traffic");
          }
          seen.push_back(addr);
          c.endpoints.push_back(std::move(*endpoint));
        }
      }
    }
    if (const Value* lb = f.Get("load_balancer")) {
      if (auto s = String(*lb)) {
        if (std::find(kHashBalancers.begin(), kHashBalancers.end(), *s) != kHashBalancers.end()) {
          c.load_balancer = *s;
          if (!f.Get("hash_key")) {
            Error(*lb, "load balancer " + Quote(*s) +
                           " needs a `hash_key` (header, cookie, query or client_address)");
          }
        } else if (std::find(kLoadBalancers.begin(), kLoadBalancers.end(), *s) ==
                   kLoadBalancers.end()) {
          std::vector<std::string> known = kLoadBalancers;
          known.insert(known.end(), kHashBalancers.begin(), kHashBalancers.end());
          Error(*lb, "unknown load balancer " + Quote(*s) + "; known: " + JoinNames(known));
        } else {
          c.load_balancer = *s;
        }
      }
    }
    if (const Value* ct = f.Get("connect_timeout")) {
      if (auto d = DurationIn(*ct, Duration{1}, std::chrono::minutes(10))) c.connect_timeout = *d;
    }
    if (const Value* pool = f.Get("pool")) {
      Fields pf;
      if (ReadMap(*pool, {"max_idle", "idle_timeout"}, &pf)) {
        if (const Value* x = pf.Get("max_idle")) {
          if (auto n = Integer(*x, 0, 10000)) c.pool.max_idle = static_cast<uint32_t>(*n);
        }
        if (const Value* x = pf.Get("idle_timeout")) {
          if (auto d = DurationIn(*x, Duration{1}, std::chrono::hours(1))) c.pool.idle_timeout = *d;
        }
      }
    }
    ReadResilience(f, &c);
    if (ok) {
      cluster_locs_.push_back(name_loc);
      config_.clusters.push_back(std::move(c));
    }
  }
}

}  // namespace ficus::config::internal
