// Sections: a route's protection policies -- rate_limit:, concurrency:, auth: (built into
// policies by src/policy/protect.h).
#include <openssl/evp.h>

#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

namespace {

// The key parts a rate limit may combine; a "header:", "query:" or "jwt_claim:" part names what.
bool ValidKeyPart(std::string_view part, std::string* why) {
  if (part == "client_ip" || part == "route" || part == "consumer") return true;
  for (std::string_view prefix : {"header:", "query:", "jwt_claim:"}) {
    if (!part.starts_with(prefix)) continue;
    std::string_view name = part.substr(prefix.size());
    if (name.empty() || (prefix == "header:" && !IsToken(name)) ||
        name.find_first_of(" \t&=#") != std::string_view::npos) {
      *why = "names no valid " + std::string(prefix.substr(0, prefix.size() - 1));
      return false;
    }
    return true;
  }
  *why =
      "is not a key: use client_ip, route, consumer, header:<name>, query:<name> or "
      "jwt_claim:<name>";
  return false;
}

// "100/s", "6000/min", "5/h", "10/1d", "30/10s": a count per period.
bool ParseRate(std::string_view text, uint64_t* count, Duration* period, std::string* why) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    *why = "expected a rate like 100/s, 6000/min or 30/10s";
    return false;
  }
  std::string_view n = text.substr(0, slash), unit = text.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), *count);
  if (n.empty() || ec != std::errc() || ptr != n.data() + n.size() || *count == 0 ||
      *count > 1'000'000'000) {
    *why = "expected a count 1..1000000000 before '/', in a rate like 100/s";
    return false;
  }
  static const std::pair<std::string_view, int64_t> kUnits[] = {
      {"s", 1000},       {"sec", 1000},      {"second", 1000}, {"m", 60'000},
      {"min", 60'000},   {"minute", 60'000}, {"h", 3'600'000}, {"hour", 3'600'000},
      {"d", 86'400'000}, {"day", 86'400'000}};
  for (const auto& [name, ms] : kUnits) {
    if (unit == name) {
      *period = Duration(ms);
      return true;
    }
  }
  std::string error;
  std::optional<Duration> d = ParseDuration(unit, &error);
  if (!d || *d < Duration(1) || *d > std::chrono::hours(24 * 7)) {
    *why = "expected a period after '/' (s, min, h, d, or a duration up to 7d such as 10s)";
    return false;
  }
  *period = *d;
  return true;
}

const char* const kClasses[] = {"critical", "default", "sheddable"};

}  // namespace

std::string Sha256Hex(std::string_view data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

void Loader::ReadRateLimits(const Value& v, std::vector<RateLimit>* out) {
  if (v.node.IsMap()) {
    RateLimit r;
    if (ReadRateLimit(v, &r)) out->push_back(std::move(r));
    return;
  }
  if (!v.node.IsSequence()) {
    Error(v, "expected a rate limit (a map with key, rate, burst) or a list of named ones, got " +
                 KindOf(v.node));
    return;
  }
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    RateLimit r;
    if (!ReadRateLimit(item, &r)) continue;
    if (!item.node.IsMap() || !item.node["name"]) {
      Error(item, "each limit of a list needs a name (the RateLimit-Policy field names it)");
      continue;
    }
    bool dup = false;
    for (const RateLimit& o : *out) dup = dup || o.name == r.name;
    if (dup) {
      Error(item, "duplicate rate limit name " + Quote(r.name));
      continue;
    }
    out->push_back(std::move(r));
  }
}

bool Loader::ReadRateLimit(const Value& v, RateLimit* r) {
  Fields f;
  if (!ReadMap(v,
               {"name", "key", "rate", "burst", "ipv4_prefix", "ipv6_prefix", "shadow", "headers",
                "max_keys"},
               &f))
    return false;
  bool ok = true;
  r->line = v.loc.line;
  if (const Value* name = f.Get("name")) {
    if (auto s = Name(*name)) {
      r->name = *s;
    } else {
      ok = false;
    }
  }
  if (const Value* key = f.Get("key")) {
    r->key.clear();
    std::vector<Value> parts;
    if (key->node.IsSequence() && key->node.size() > 0) {
      size_t i = 0;
      for (auto it = key->node.begin(); it != key->node.end(); ++it, ++i)
        parts.push_back(Item(*key, *it, i));
    } else {
      parts.push_back(*key);
    }
    for (const Value& part : parts) {
      std::optional<std::string> s = String(part);
      std::string why;
      if (!s) {
        ok = false;
      } else if (!ValidKeyPart(*s, &why)) {
        Error(part, Quote(*s) + " " + why);
        ok = false;
      } else {
        r->key.push_back(s->starts_with("header:") ? ToLower(*s) : *s);
      }
    }
  }
  Require(f, v, "rate");
  if (const Value* rate = f.Get("rate")) {
    std::optional<std::string> s = String(*rate);
    std::string why;
    if (!s || !ParseRate(*s, &r->count, &r->period, &why)) {
      if (s) Error(*rate, why + ", got " + Quote(*s));
      ok = false;
    } else if (std::chrono::nanoseconds(r->period).count() / static_cast<int64_t>(r->count) < 1) {
      Error(*rate, "is more than one request per nanosecond");
      ok = false;
    }
  } else {
    ok = false;
  }
  r->burst = r->count;
  if (const Value* b = f.Get("burst")) {
    if (auto n = Integer(*b, 1, 1'000'000'000)) {
      r->burst = *n;
    } else {
      ok = false;
    }
  }
  if (const Value* p = f.Get("ipv4_prefix")) {
    if (auto n = Integer(*p, 1, 32)) {
      r->ipv4_prefix = static_cast<uint32_t>(*n);
    } else {
      ok = false;
    }
  }
  if (const Value* p = f.Get("ipv6_prefix")) {
    if (auto n = Integer(*p, 1, 128)) {
      r->ipv6_prefix = static_cast<uint32_t>(*n);
    } else {
      ok = false;
    }
  }
  if (const Value* b = f.Get("shadow")) {
    if (auto x = Bool(*b)) r->shadow = *x;
  }
  if (const Value* b = f.Get("headers")) {
    if (auto x = Bool(*b)) r->headers = *x;
  }
  if (const Value* n = f.Get("max_keys")) {
    if (auto x = Integer(*n, 1, 1ull << 26)) {
      r->max_keys = *x;
    } else {
      ok = false;
    }
  }
  return ok;
}

void Loader::ReadConcurrency(const Value& v, std::optional<ConcurrencyLimit>* out) {
  Fields f;
  if (!ReadMap(v,
               {"max", "queue", "queue_timeout", "class", "class_header", "critical_reserve",
                "sheddable_max"},
               &f))
    return;
  ConcurrencyLimit c;
  c.line = v.loc.line;
  bool ok = true;
  Require(f, v, "max");
  if (const Value* m = f.Get("max")) {
    if (auto n = Integer(*m, 1, 1'000'000)) {
      c.max = static_cast<uint32_t>(*n);
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (const Value* q = f.Get("queue")) {
    if (auto n = Integer(*q, 0, 1'000'000)) {
      c.queue = static_cast<uint32_t>(*n);
    } else {
      ok = false;
    }
  }
  if (const Value* t = f.Get("queue_timeout")) {
    if (auto d = DurationIn(*t, Duration{1}, std::chrono::minutes(10))) {
      c.queue_timeout = *d;
    } else {
      ok = false;
    }
  }
  if (const Value* cls = f.Get("class")) {
    std::optional<std::string> s = String(*cls);
    bool found = false;
    for (int i = 0; s && i < 3; ++i) {
      if (*s == kClasses[i]) {
        c.default_class = static_cast<PriorityClass>(i);
        found = true;
      }
    }
    if (s && !found) Error(*cls, "expected critical, default or sheddable, got " + Quote(*s));
    ok = ok && found;
  }
  if (const Value* h = f.Get("class_header")) {
    std::optional<std::string> s = String(*h);
    if (s && !IsToken(*s)) {
      Error(*h, Quote(*s) + " is not a valid header name");
      s.reset();
    }
    if (s) c.class_header = ToLower(*s);
    ok = ok && s.has_value();
  }
  // Shares of `max` reserved by class shed sheddable requests while the route had free slots
  // (12 % of them at 1x capacity in bench/protect): gone, with a word for configs that set them.
  for (const char* key : {"critical_reserve", "sheddable_max"}) {
    if (const Value* p = f.Get(key)) {
      Error(*p, std::string(key) +
                    " was removed: every class now takes a free slot below max, and at max "
                    "critical requests are queued first and displace sheddable waiters");
      ok = false;
    }
  }
  if (ok) *out = std::move(c);
}

void Loader::ReadAuth(const Value& v, std::optional<Auth>* out) {
  Fields f;
  if (!ReadMap(v, {"api_keys", "jwt", "consumers"}, &f)) return;
  Auth a;
  a.line = v.loc.line;
  bool ok = true;
  if (!f.Get("api_keys") && !f.Get("jwt")) {
    Error(v, "names no credential: set api_keys, jwt or both");
    ok = false;
  }
  if (const Value* k = f.Get("api_keys")) {
    Fields kf;
    if (ReadMap(*k, {"header", "query", "file", "keys"}, &kf)) {
      ApiKeyAuth ak;
      if (const Value* h = kf.Get("header")) {
        std::optional<std::string> s = String(*h);
        if (s && IsToken(*s)) {
          ak.header = ToLower(*s);
        } else {
          if (s) Error(*h, Quote(*s) + " is not a valid header name");
          ok = false;
        }
      }
      if (const Value* q = kf.Get("query")) {
        if (auto s = String(*q); s && !s->empty()) ak.query = *s;
      }
      if (const Value* file = kf.Get("file")) {
        if (auto s = String(*file); s && !s->empty()) ak.file = *s;
      }
      if (const Value* keys = kf.Get("keys")) {
        // consumer: key (the key is hashed here: the config keeps no secret).
        if (!keys->node.IsMap()) {
          Error(*keys, "expected a map of consumer: key, got " + KindOf(keys->node));
          ok = false;
        } else {
          for (auto it = keys->node.begin(); it != keys->node.end(); ++it) {
            const Value item{it->second, LocOf(it->second.Mark()),
                             Sub(keys->path, it->first.as<std::string>(""))};
            std::optional<std::string> key = String(item);
            if (!key || key->size() < 8) {
              if (key) Error(item, "an API key must have at least 8 characters");
              ok = false;
              continue;
            }
            // "sha256:<hex>" is a digest already (as /config shows inline keys).
            std::string_view k = *key;
            const bool digest =
                k.starts_with("sha256:") && k.size() == 71 &&
                k.substr(7).find_first_not_of("0123456789abcdef") == std::string_view::npos;
            ak.keys.emplace_back(it->first.as<std::string>(""),
                                 digest ? std::string(k.substr(7)) : Sha256Hex(k));
          }
        }
      }
      if (ak.file.empty() && ak.keys.empty()) {
        Error(*k, "names no key: set file, keys or both");
        ok = false;
      }
      a.api_keys = std::move(ak);
    } else {
      ok = false;
    }
  }
  if (const Value* j = f.Get("jwt")) {
    JwtAuth jwt;
    ok = ReadJwtAuth(*j, &jwt) && ok;
    a.jwt = std::move(jwt);
  }
  if (const Value* c = f.Get("consumers")) {
    if (ExpectList(*c)) {
      size_t i = 0;
      for (auto it = c->node.begin(); it != c->node.end(); ++it, ++i) {
        if (auto s = String(Item(*c, *it, i))) a.consumers.push_back(*s);
      }
    }
  }
  if (ok) *out = std::move(a);
}

void Loader::ReadAdaptive(const Value& v, std::optional<AdaptiveConcurrency>* out) {
  Fields f;
  if (!ReadMap(v, {"min_limit", "max_limit", "initial_limit", "window", "tolerance"}, &f)) return;
  AdaptiveConcurrency a;
  bool ok = true;
  const std::pair<const char*, uint32_t*> ints[] = {{"min_limit", &a.min_limit},
                                                    {"max_limit", &a.max_limit},
                                                    {"initial_limit", &a.initial_limit}};
  for (const auto& [key, field] : ints) {
    if (const Value* p = f.Get(key)) {
      if (auto n = Integer(*p, 1, 1'000'000)) {
        *field = static_cast<uint32_t>(*n);
      } else {
        ok = false;
      }
    }
  }
  if (const Value* p = f.Get("window")) {
    if (auto d = DurationIn(*p, Duration{10}, std::chrono::minutes(1))) {
      a.window = *d;
    } else {
      ok = false;
    }
  }
  if (const Value* p = f.Get("tolerance")) {
    std::optional<std::string> s = String(*p);
    char* end = nullptr;
    const double x = s ? std::strtod(s->c_str(), &end) : 0;
    if (!s || s->empty() || end != s->c_str() + s->size() || !(x >= 1 && x <= 10)) {
      if (s) Error(*p, "expected a ratio 1..10 (sampled RTT / long-term RTT), got " + Quote(*s));
      ok = false;
    } else {
      a.tolerance = x;
    }
  }
  if (!f.Get("initial_limit") && a.min_limit <= a.max_limit)
    a.initial_limit = std::clamp(a.initial_limit, a.min_limit, a.max_limit);
  if (ok && (a.min_limit > a.max_limit || a.initial_limit < a.min_limit ||
             a.initial_limit > a.max_limit)) {
    Error(v, "needs min_limit <= initial_limit <= max_limit");
    ok = false;
  }
  if (ok) *out = a;
}

void Loader::ReadOverload(const Value& v, Overload* o) {
  Fields f;
  if (!ReadMap(v, {"max_memory", "max_open_files"}, &f)) return;
  if (const Value* p = f.Get("max_memory")) {
    if (auto n = SizeIn(*p, 16ull << 20, 1ull << 50)) o->max_memory = *n;
  }
  if (const Value* p = f.Get("max_open_files")) {
    std::optional<std::string> s = String(*p);
    if (s && s->ends_with('%')) {
      if (auto x = Ratio(*p); x && *x >= 0.01) {
        o->max_open_files_percent = static_cast<uint32_t>(*x * 100 + 0.5);
      } else if (x) {
        Error(*p, "must be between 1% and 100%");
      }
    } else if (s) {
      if (auto n = Integer(*p, 16, 1u << 30)) o->max_open_files = *n;
    }
  }
}

void Loader::CheckProtection(const Route& r, const Value& route) {
  for (const RateLimit& l : r.rate_limits) {
    for (const std::string& part : l.key) {
      // An unverified claim is the client's word: only a verified token may key a limit.
      if (part.starts_with("jwt_claim:") && !(r.auth && r.auth->jwt)) {
        Error(route.loc, Sub(route.path, "rate_limit"),
              "limit " + Quote(l.name) + " is keyed by " + Quote(part) +
                  ", which needs auth.jwt on the route (the token must be verified)");
      }
      if (part == "consumer" && !r.auth) {
        Warn(route.loc, Sub(route.path, "rate_limit"),
             "limit " + Quote(l.name) +
                 " is keyed by consumer but the route has no auth: every request shares one "
                 "budget");
      }
    }
  }
}

}  // namespace ficus::config::internal

namespace ficus::config {

const char* PriorityClassName(PriorityClass c) { return internal::kClasses[static_cast<int>(c)]; }

}  // namespace ficus::config
