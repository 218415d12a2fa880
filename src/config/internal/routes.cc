// Sections: routes, their matchers and record:.
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

std::optional<std::string> Loader::ReadPath(const Value& v) {
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  if (!s->starts_with('/')) {
    Error(v, "must start with '/', got " + Quote(*s));
    return std::nullopt;
  }
  if (s->find_first_of(" \t") != std::string::npos) {
    Error(v, "must not contain spaces (a request path never does), got " + Quote(*s));
    return std::nullopt;
  }
  if (s->find_first_of("?#") != std::string::npos) {
    Error(v, "must not contain '?' or '#': paths are matched without the query string, got " +
                 Quote(*s));
    return std::nullopt;
  }
  return s;
}

void Loader::ReadHosts(const Value& v, std::vector<std::string>* hosts) {
  std::vector<Value> items;
  if (v.node.IsSequence()) {
    if (v.node.size() == 0) {
      Error(v, "must list at least one host (leave 'host' out to match any host)");
      return;
    }
    size_t i = 0;
    for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) items.push_back(Item(v, *it, i));
  } else if (v.node.IsScalar()) {
    items.push_back(v);
  } else {
    Error(v, "expected a host name or a list of host names, got " + KindOf(v.node));
    return;
  }
  for (const Value& item : items) {
    std::optional<std::string> s = String(item);
    if (!s) continue;
    std::string host = ToLower(*s);
    if (host == "*") {
      hosts->push_back(host);
      continue;
    }
    if (host.starts_with('[')) {
      // An IPv6 literal, as it appears in a Host header.
      std::optional<std::string> ip;
      if (host.ends_with(']')) ip = CanonicalIp(std::string_view(host).substr(1, host.size() - 2));
      if (!ip || ip->find(':') == std::string::npos) {
        Error(item, "expected an IPv6 address in brackets like [::1], got " + Quote(*s));
      } else {
        hosts->push_back("[" + *ip + "]");
      }
      continue;
    }
    if (host.find(':') != std::string::npos) {
      Error(item, "must not include a port (the Host header is compared without its port), got " +
                      Quote(*s));
      continue;
    }
    if (host.ends_with('.')) host.pop_back();
    std::string_view name = host;
    const bool wildcard = name.starts_with("*.");
    if (wildcard) name.remove_prefix(2);
    if (!IsValidHostName(name) || name.ends_with('.')) {
      Error(item, "expected a host name like example.com or *.example.com, got " + Quote(*s));
      continue;
    }
    if (std::find(hosts->begin(), hosts->end(), host) == hosts->end()) hosts->push_back(host);
  }
}

void Loader::ReadMethods(const Value& v, std::vector<std::string>* methods) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "must list at least one method (leave 'methods' out to match any method)");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    std::optional<std::string> s = String(item);
    if (!s) continue;
    if (!IsToken(*s)) {
      Error(item, Quote(*s) + " is not a valid method name");
      continue;
    }
    std::string m = ToUpper(*s);
    if (std::find(methods->begin(), methods->end(), m) == methods->end()) methods->push_back(m);
  }
}

void Loader::ReadHeaders(const Value& v, std::vector<HeaderMatcher>* headers) {
  if (!ExpectList(v)) return;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item, {"name", "value", "present", "invert"}, &f)) continue;
    HeaderMatcher h;
    bool ok = true;
    Require(f, item, "name");
    if (const Value* name = f.Get("name")) {
      std::optional<std::string> s = String(*name);
      if (s && !IsToken(*s)) {
        Error(*name, Quote(*s) + " is not a valid header name");
        s.reset();
      }
      if (s) h.name = ToLower(*s);
      ok = ok && s.has_value();
    } else {
      ok = false;
    }
    const Value* value = f.Get("value");
    const Value* present = f.Get("present");
    if (value && present) {
      Error(*present, "use either 'value' or 'present', not both");
      ok = false;
    }
    if (value) {
      std::optional<std::string> s = String(*value);
      if (s && (s->starts_with(' ') || s->starts_with('\t') || s->ends_with(' ') ||
                s->ends_with('\t'))) {
        Error(*value,
              "has leading or trailing whitespace, which a received header value never "
              "has, got " +
                  Quote(*s));
        s.reset();
      }
      if (s) h.exact = *s;
      ok = ok && s.has_value();
    }
    bool want_present = true;
    if (present) {
      std::optional<bool> b = Bool(*present);
      if (b) want_present = *b;
      ok = ok && b.has_value();
    }
    if (const Value* invert = f.Get("invert")) {
      std::optional<bool> b = Bool(*invert);
      if (b) h.invert = *b;
      ok = ok && b.has_value();
    }
    if (!want_present) h.invert = !h.invert;  // "present: false" = must be absent
    if (ok) headers->push_back(std::move(h));
  }
}

void Loader::ReadMatch(const Value& v, RouteMatch* m) {
  Fields f;
  if (!ReadMap(v, {"path", "path_prefix", "path_regex", "host", "methods", "headers"}, &f)) return;
  const Value* first_path = nullptr;
  std::string first_key;
  for (const char* key : {"path", "path_prefix", "path_regex"}) {
    const Value* p = f.Get(key);
    if (!p) continue;
    if (first_path) {
      const bool later =
          p->loc.line > first_path->loc.line ||
          (p->loc.line == first_path->loc.line && p->loc.column > first_path->loc.column);
      const Value* report = later ? p : first_path;
      const std::string other = later ? first_key : key;
      Error(*report, "use only one of path, path_prefix, path_regex (" + other + " is also set)");
      continue;
    }
    first_path = p;
    first_key = key;
    if (first_key == "path_regex") {
      if (auto s = String(*p)) {
        if (std::string bad = CheckRegex(*s); !bad.empty()) {
          Error(*p, bad);
        } else {
          m->path_regex = *s;
        }
      }
    } else if (auto s = ReadPath(*p)) {
      (first_key == "path" ? m->path : m->path_prefix) = *s;
    }
  }
  if (const Value* host = f.Get("host")) ReadHosts(*host, &m->hosts);
  if (const Value* methods = f.Get("methods")) ReadMethods(*methods, &m->methods);
  if (const Value* headers = f.Get("headers")) ReadHeaders(*headers, &m->headers);
}

void Loader::ReadRecord(const Value& v, std::optional<Record>* out) {
  Fields f;
  if (!ReadMap(v, {"path", "sample", "max_body_bytes", "redact_headers"}, &f)) return;
  Record rec;
  bool ok = true;
  Require(f, v, "path");
  if (const Value* p = f.Get("path")) {
    auto s = String(*p);
    if (s && s->empty()) Error(*p, "must not be empty");
    if (s && !s->empty())
      rec.path = *s;
    else
      ok = false;
  } else {
    ok = false;
  }
  if (const Value* p = f.Get("sample")) {
    auto s = String(*p);
    double x = -1;
    if (s && !s->empty()) {
      std::string t = *s;
      const bool percent = t.back() == '%';
      if (percent) t.pop_back();
      char* end = nullptr;
      x = std::strtod(t.c_str(), &end);
      if (t.empty() || end != t.c_str() + t.size()) x = -1;
      if (percent) x /= 100;
    }
    if (s && !(x >= 0 && x <= 1)) {
      Error(*p, "expected a ratio 0..1 or a percentage such as 10%, got " + Quote(*s));
      ok = false;
    } else if (s) {
      rec.sample = x;
    }
  }
  if (const Value* p = f.Get("max_body_bytes")) {
    if (auto n = SizeIn(*p, 0, 64ull << 20))
      rec.max_body_bytes = *n;
    else
      ok = false;
  }
  if (const Value* p = f.Get("redact_headers")) {
    if (ExpectList(*p)) {
      rec.redact_headers.clear();
      size_t i = 0;
      for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
        const Value item = Item(*p, *it, i);
        auto s = String(item);
        if (s && (s->empty() || s->find_first_of(" :\t") != std::string::npos)) {
          Error(item, "expected a header name, got " + Quote(*s));
          ok = false;
        } else if (s) {
          rec.redact_headers.push_back(ToLower(*s));
        }
      }
    }
  }
  if (ok) *out = std::move(rec);
}

void Loader::ReadRoutes(const Value& v) {
  if (!ExpectList(v)) return;
  if (v.node.size() == 0) {
    Error(v, "at least one route is required");
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item,
                 {"name", "match", "cluster", "timeout", "upstream_timeout", "record", "rate_limit",
                  "concurrency", "auth", "cache", "compress", "offload", "jobs"},
                 &f))
      continue;
    Route r;
    r.name = "route-" + std::to_string(i);
    r.line = item.loc.line;
    Loc name_loc = item.loc;
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) r.name = *s;
      name_loc = name->loc;
    }
    for (size_t k = 0; k < config_.routes.size(); ++k) {
      if (config_.routes[k].name == r.name) {
        Error(name_loc, Sub(item.path, "name"),
              "duplicate route name " + Quote(r.name) + " (also routes[" + std::to_string(k) +
                  "] at line " + std::to_string(config_.routes[k].line) + ")");
      }
    }
    if (const Value* match = f.Get("match")) ReadMatch(*match, &r.match);
    Require(f, item, "cluster");
    const Value* cluster = f.Get("cluster");
    bool cluster_ok = false;
    if (cluster) {
      if (auto s = String(*cluster)) {
        r.cluster = *s;
        cluster_ok = true;
      }
    }
    route_locs_.push_back(item.loc);
    route_cluster_locs_.push_back(cluster ? cluster->loc : item.loc);
    route_cluster_paths_.push_back(Sub(item.path, "cluster"));
    route_cluster_ok_.push_back(cluster_ok);
    if (const Value* t = f.Get("timeout")) {
      if (auto d = DurationIn(*t, Duration{0}, std::chrono::hours(24))) r.timeout = *d;
    }
    if (const Value* t = f.Get("upstream_timeout")) {
      if (auto d = DurationIn(*t, Duration{1}, std::chrono::hours(24))) r.upstream_timeout = *d;
    }
    if (const Value* rec = f.Get("record")) ReadRecord(*rec, &r.record);
    if (const Value* p = f.Get("rate_limit")) ReadRateLimits(*p, &r.rate_limits);
    if (const Value* p = f.Get("concurrency")) ReadConcurrency(*p, &r.concurrency);
    if (const Value* p = f.Get("auth")) ReadAuth(*p, &r.auth);
    CheckProtection(r, item);
    if (const Value* c = f.Get("cache")) ReadCache(*c, &r.cache);
    if (const Value* c = f.Get("compress")) ReadCompress(*c, &r.compress);
    if (const Value* o = f.Get("offload")) ReadOffload(*o, &r.offload);
    if (const Value* j = f.Get("jobs")) ReadJobsApi(*j, &r.jobs);
    config_.routes.push_back(std::move(r));
  }
}

}  // namespace ficus::config::internal
