// Upstream resilience of a cluster: retry, outlier_detection, health_check, circuit_breakers,
// hash_key, affinity, panic_threshold, dns_refresh. See docs/config.md.
#include "config/internal/reader.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

void Loader::ReadResilience(const Fields& f, Cluster* c) {
  if (const Value* v = f.Get("retry")) ReadRetry(*v, &c->retry);
  if (const Value* v = f.Get("outlier_detection")) ReadOutlier(*v, &c->outlier_detection);
  if (const Value* v = f.Get("health_check")) ReadHealthCheck(*v, &c->health_check);
  if (const Value* v = f.Get("circuit_breakers")) ReadBreakers(*v, &c->circuit_breakers);
  if (const Value* v = f.Get("adaptive_concurrency")) ReadAdaptive(*v, &c->adaptive_concurrency);
  if (const Value* v = f.Get("hash_key")) {
    ReadHashKey(*v, &c->hash_key);
    if (std::find(kHashBalancers.begin(), kHashBalancers.end(), c->load_balancer) ==
        kHashBalancers.end()) {
      Error(*v, "hash_key is used only by load_balancer ring_hash or maglev (this cluster uses " +
                    Quote(c->load_balancer) + ")");
    }
  }
  if (const Value* v = f.Get("affinity")) ReadAffinity(*v, &c->affinity);
  if (const Value* v = f.Get("panic_threshold")) {
    if (auto n = Integer(*v, 0, 100)) c->panic_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* v = f.Get("dns_refresh")) {
    if (auto d = DurationIn(*v, Duration{0}, std::chrono::hours(24))) c->dns_refresh = *d;
  }
}

void Loader::ReadRetry(const Value& v, RetryPolicy* r) {
  Fields f;
  if (!ReadMap(v, {"on", "max_tries", "per_try_timeout", "backoff", "budget"}, &f)) return;
  r->max_tries = 2;  // a retry section without max_tries means one retry
  if (const Value* x = f.Get("max_tries")) {
    if (auto n = Integer(*x, 1, 10)) r->max_tries = static_cast<uint32_t>(*n);
  }
  if (const Value* on = f.Get("on")) {
    if (ExpectList(*on)) {
      size_t i = 0;
      for (auto it = on->node.begin(); it != on->node.end(); ++it, ++i) {
        const Value item = Item(*on, *it, i);
        std::optional<std::string> s = String(item);
        if (!s) continue;
        uint16_t code = 0;
        auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), code);
        if (*s == "connect_failure") {
          r->on_connect_failure = true;
        } else if (*s == "reset") {
          r->on_reset = true;
        } else if (*s == "timeout") {
          r->on_timeout = true;
        } else if (ec == std::errc() && ptr == s->data() + s->size() && code >= 500 &&
                   code <= 599) {
          r->on_status.push_back(code);
        } else {
          Error(item, "unknown retry condition " + Quote(*s) +
                          "; expected connect_failure, reset, timeout or a status 500..599");
        }
      }
    }
  } else {
    Require(f, v, "on");
  }
  if (const Value* x = f.Get("per_try_timeout")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(1))) r->per_try_timeout = *d;
  }
  if (const Value* b = f.Get("backoff")) {
    Fields bf;
    if (ReadMap(*b, {"base", "max"}, &bf)) {
      // Capped at 1s: a session sleeping in back-off must not hold up a shutdown for long.
      if (const Value* x = bf.Get("base")) {
        if (auto d = DurationIn(*x, Duration{0}, Duration{1000})) r->backoff_base = *d;
      }
      if (const Value* x = bf.Get("max")) {
        if (auto d = DurationIn(*x, Duration{0}, Duration{1000})) r->backoff_max = *d;
      }
      if (r->backoff_max < r->backoff_base) {
        Error(*b, "backoff.max (" + FormatDuration(r->backoff_max) + ") is below backoff.base (" +
                      FormatDuration(r->backoff_base) + ")");
      }
    }
  }
  if (const Value* b = f.Get("budget")) ReadRetryBudget(*b, r);
}

// `budget: 20%` (the ratio alone) or a map. The budget is a rate over a sliding window; the
// concurrency floor it replaced (`min_concurrency`) is still read, as the per-second floor,
// with a warning.
void Loader::ReadRetryBudget(const Value& b, RetryPolicy* r) {
  if (b.node.IsScalar()) {
    if (auto d = Ratio(b)) r->budget_ratio = *d;
    return;
  }
  Fields bf;
  if (!ReadMap(b, {"ratio", "min_per_second", "window", "min_concurrency"}, &bf)) return;
  if (const Value* x = bf.Get("ratio")) {
    if (auto d = Ratio(*x)) r->budget_ratio = *d;
  }
  if (const Value* x = bf.Get("min_per_second")) {
    if (auto n = Integer(*x, 0, 100000)) r->budget_min_per_second = static_cast<uint32_t>(*n);
  }
  if (const Value* x = bf.Get("min_concurrency")) {
    if (bf.Get("min_per_second")) {
      Error(*x, "min_concurrency is the old name of min_per_second; give only min_per_second");
    } else if (auto n = Integer(*x, 0, 100000)) {
      r->budget_min_per_second = static_cast<uint32_t>(*n);
      Warn(x->loc, x->path,
           "the retry budget is a rate now: min_concurrency is read as min_per_second: " +
               std::to_string(*n) + " (retries per second always allowed); rename it");
    }
  }
  if (const Value* x = bf.Get("window")) {
    if (auto d = DurationIn(*x, Duration{1000}, Duration{60000})) r->budget_window = *d;
  }
}

void Loader::ReadOutlier(const Value& v, OutlierDetection* o) {
  Fields f;
  if (!ReadMap(v,
               {"consecutive_5xx", "consecutive_gateway_failures", "base_ejection_time",
                "max_ejection_time", "max_ejection_percent"},
               &f)) {
    return;
  }
  o->enabled = true;
  if (const Value* x = f.Get("consecutive_5xx")) {
    if (auto n = Integer(*x, 0, 1000)) o->consecutive_5xx = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("consecutive_gateway_failures")) {
    if (auto n = Integer(*x, 0, 1000)) o->consecutive_gateway_failures = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("base_ejection_time")) {
    if (auto d = DurationIn(*x, Duration{100}, std::chrono::hours(1))) o->base_ejection_time = *d;
  }
  if (const Value* x = f.Get("max_ejection_time")) {
    if (auto d = DurationIn(*x, Duration{100}, std::chrono::hours(24))) o->max_ejection_time = *d;
  }
  if (const Value* x = f.Get("max_ejection_percent")) {
    if (auto n = Integer(*x, 0, 100)) o->max_ejection_percent = static_cast<uint32_t>(*n);
  }
  if (o->max_ejection_time < o->base_ejection_time) {
    Error(v, "max_ejection_time (" + FormatDuration(o->max_ejection_time) +
                 ") is below base_ejection_time (" + FormatDuration(o->base_ejection_time) + ")");
  }
}

void Loader::ReadHealthCheck(const Value& v, HealthCheck* h) {
  Fields f;
  if (!ReadMap(v,
               {"path", "host", "interval", "jitter", "timeout", "expected_statuses",
                "healthy_threshold", "unhealthy_threshold"},
               &f)) {
    return;
  }
  h->enabled = true;
  if (const Value* x = f.Get("path")) {
    if (auto p = String(*x)) {
      if (!p->starts_with('/') || p->find_first_of(" \t") != std::string::npos) {
        Error(*x, "must start with '/' and contain no spaces, got " + Quote(*p));
      } else {
        h->path = *p;
      }
    }
  }
  if (const Value* x = f.Get("host")) {
    if (auto s = String(*x)) {
      if (!IsValidHostName(*s) && !CanonicalIp(*s)) {
        Error(*x, "invalid host name " + Quote(*s));
      } else {
        h->host = *s;
      }
    }
  }
  if (const Value* x = f.Get("interval")) {
    if (auto d = DurationIn(*x, Duration{10}, std::chrono::hours(1))) h->interval = *d;
  }
  if (const Value* x = f.Get("jitter")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(1))) h->jitter = *d;
  }
  if (const Value* x = f.Get("timeout")) {
    if (auto d = DurationIn(*x, Duration{1}, std::chrono::minutes(10))) h->timeout = *d;
  }
  if (const Value* x = f.Get("healthy_threshold")) {
    if (auto n = Integer(*x, 1, 100)) h->healthy_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("unhealthy_threshold")) {
    if (auto n = Integer(*x, 1, 100)) h->unhealthy_threshold = static_cast<uint32_t>(*n);
  }
  if (const Value* x = f.Get("expected_statuses")) {
    if (ExpectList(*x)) {
      h->expected_statuses.clear();
      size_t i = 0;
      for (auto it = x->node.begin(); it != x->node.end(); ++it, ++i) {
        const Value item = Item(*x, *it, i);
        std::optional<std::string> s = String(item);
        if (!s) continue;
        // "200" or "200-299"
        std::string_view text = *s;
        size_t dash = text.find('-');
        std::string_view a = text.substr(0, dash);
        std::string_view b = dash == std::string_view::npos ? a : text.substr(dash + 1);
        uint16_t lo = 0, hi = 0;
        auto r1 = std::from_chars(a.data(), a.data() + a.size(), lo);
        auto r2 = std::from_chars(b.data(), b.data() + b.size(), hi);
        if (a.empty() || b.empty() || r1.ec != std::errc() || r1.ptr != a.data() + a.size() ||
            r2.ec != std::errc() || r2.ptr != b.data() + b.size() || lo < 100 || hi > 599 ||
            lo > hi) {
          Error(item, "expected a status 100..599 or a range like 200-399, got " + Quote(*s));
          continue;
        }
        h->expected_statuses.emplace_back(lo, hi);
      }
      if (h->expected_statuses.empty() && x->node.size() == 0) {
        Error(*x, "at least one expected status is required");
      }
    }
  }
}

void Loader::ReadBreakers(const Value& v, CircuitBreakers* b) {
  Fields f;
  if (!ReadMap(v, {"max_connections", "max_pending", "max_requests", "max_retries"}, &f)) return;
  struct Spec {
    const char* key;
    uint32_t* out;
  };
  const Spec specs[] = {{"max_connections", &b->max_connections},
                        {"max_pending", &b->max_pending},
                        {"max_requests", &b->max_requests},
                        {"max_retries", &b->max_retries}};
  for (const Spec& s : specs) {
    if (const Value* x = f.Get(s.key)) {
      if (auto n = Integer(*x, 0, 10'000'000)) *s.out = static_cast<uint32_t>(*n);
    }
  }
}

void Loader::ReadHashKey(const Value& v, HashKey* k) {
  Fields f;
  if (!ReadMap(v, {"header", "cookie", "query", "client_address"}, &f)) return;
  if (f.entries().size() != 1) {
    Error(v, "expected exactly one of header, cookie, query, client_address");
    return;
  }
  const auto& e = f.entries().front();
  if (e.key == "client_address") {
    if (auto b = Bool(e.value)) {
      if (!*b) {
        Error(e.value, "client_address: false hashes nothing; name a header, cookie or query");
      } else {
        k->kind = HashKey::Kind::kClientAddress;
      }
    }
    return;
  }
  std::optional<std::string> s = String(e.value);
  if (!s) return;
  if (s->empty() || !IsToken(*s)) {
    Error(e.value, "expected a " + e.key + " name (a token), got " + Quote(*s));
    return;
  }
  if (e.key == "header") {
    k->kind = HashKey::Kind::kHeader;
    k->name = ToLower(*s);
  } else {
    k->kind = e.key == "cookie" ? HashKey::Kind::kCookie : HashKey::Kind::kQuery;
    k->name = *s;
  }
}

void Loader::ReadAffinity(const Value& v, Affinity* a) {
  Fields f;
  if (!ReadMap(v, {"cookie", "ttl"}, &f)) return;
  Require(f, v, "cookie");
  if (const Value* x = f.Get("cookie")) {
    if (auto s = String(*x)) {
      if (s->empty() || !IsToken(*s)) {
        Error(*x, "expected a cookie name (a token), got " + Quote(*s));
      } else {
        a->cookie = *s;
      }
    }
  }
  if (const Value* x = f.Get("ttl")) {
    if (auto d = DurationIn(*x, Duration{0}, std::chrono::hours(24 * 400))) a->ttl = *d;
  }
}

}  // namespace ficus::config::internal
