// Rate limits (GCRA per key, shared by all workers): 429 with Retry-After, the IETF RateLimit
// fields (draft-ietf-httpapi-ratelimit-headers-11) and an RFC 9457 problem body.
#include "policy/internal/rate_limit.h"

#include <arpa/inet.h>

#include <charconv>

#include "base/log.h"
#include "http/http.h"
#include "policy/internal/jwt.h"

namespace ficus::policy::internal {

namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kShadowLogEveryNs = 10 * kSecond;

int64_t CeilSeconds(int64_t ns) { return ns <= 0 ? 0 : (ns + kSecond - 1) / kSecond; }

std::string_view HeaderValue(const http::RequestHead& head, std::string_view name) {
  for (const http::Header& h : head.headers) {
    if (http::EqualsIgnoreCase(h.name, name)) return h.value;
  }
  return {};
}

// The raw value of `name` in a query string ("a=1&b=2"), or empty.
std::string_view QueryValue(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.size() >= name.size() && pair.starts_with(name) &&
        (pair.size() == name.size() || pair[name.size()] == '=')) {
      return pair.size() == name.size() ? std::string_view() : pair.substr(name.size() + 1);
    }
  }
  return {};
}

// The client address masked to the limit's prefix, as bytes; the text itself when unmasked.
void AddClientIp(KeyHash& h, std::string_view ip, uint32_t v4_prefix, uint32_t v6_prefix) {
  const bool v6 = ip.find(':') != std::string_view::npos;
  const uint32_t prefix = v6 ? v6_prefix : v4_prefix;
  if (prefix == (v6 ? 128u : 32u) || ip.size() >= 64) {
    h.Add(ip);
    return;
  }
  char text[64];
  ip.copy(text, ip.size());
  text[ip.size()] = '\0';
  unsigned char addr[16] = {};
  if (inet_pton(v6 ? AF_INET6 : AF_INET, text, addr) != 1) {
    h.Add(ip);
    return;
  }
  const uint32_t bytes = v6 ? 16 : 4;
  for (uint32_t i = 0; i < bytes; ++i) {
    const uint32_t bit = i * 8;
    if (bit >= prefix) {
      addr[i] = 0;
    } else if (prefix - bit < 8) {
      addr[i] &= static_cast<unsigned char>(0xff << (8 - (prefix - bit)));
    }
  }
  h.Add(std::string_view(reinterpret_cast<char*>(addr), bytes));
  h.AddWord(prefix);
}

// "name";r=2;t=1 into `buf`.
std::string_view FormatRateLimit(char* buf, size_t size, std::string_view name, int64_t remaining,
                                 int64_t reset_s) {
  char* p = buf;
  char* end = buf + size;
  *p++ = '"';
  p = std::copy(name.begin(), name.end(), p);
  p = std::copy_n("\";r=", 4, p);
  p = std::to_chars(p, end, remaining).ptr;
  p = std::copy_n(";t=", 3, p);
  p = std::to_chars(p, end, reset_s).ptr;
  return {buf, static_cast<size_t>(p - buf)};
}

}  // namespace

RateLimitPolicy::RateLimitPolicy(const config::Route& route, const RateLimitPolicy* previous)
    : route_name_(route.name), clock_(&MonotonicNanos) {
  for (const config::RateLimit& c : route.rate_limits) {
    Limit l;
    l.config = c;
    if (previous != nullptr) {
      for (const Limit& p : previous->limits_) {
        if (p.config == c) l.state = p.state;
      }
    }
    if (!l.state) {
      const bool shared = c.key.size() == 1 && c.key[0] == "route";
      l.state = std::make_shared<LimitState>(shared ? 1 : c.max_keys);
    }
    l.interval_ns = std::chrono::nanoseconds(c.period).count() / static_cast<int64_t>(c.count);
    l.tolerance_ns = l.interval_ns * static_cast<int64_t>(c.burst);
    l.policy_field = "\"" + c.name + "\";q=" + std::to_string(c.count) + ";w=" +
                     std::to_string(std::max<int64_t>(
                         1, CeilSeconds(std::chrono::nanoseconds(c.period).count())));
    l.problem =
        "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,"
        "\"detail\":\"The rate limit '" +
        c.name + "' of route '" + route.name +
        "' is exhausted; retry after the time in Retry-After.\"}";
    limits_.push_back(std::move(l));
  }
}

uint64_t RateLimitPolicy::KeyOf(const Limit& limit, const Context& ctx) const {
  KeyHash h(limit.state->table.seed());
  for (const std::string& part : limit.config.key) {
    h.AddWord(part.size());  // the part's kind: parts of different kinds never mix
    if (part == "client_ip") {
      AddClientIp(h, ctx.client_ip(), limit.config.ipv4_prefix, limit.config.ipv6_prefix);
    } else if (part == "route") {
      h.AddWord(1);
    } else if (part == "consumer") {
      h.Add(ctx.consumer());
    } else if (part.starts_with("header:")) {
      h.Add(HeaderValue(ctx.request(), std::string_view(part).substr(7)));
    } else if (part.starts_with("query:")) {
      h.Add(QueryValue(ctx.request().query, std::string_view(part).substr(6)));
    } else if (part.starts_with("jwt_claim:")) {
      // The auth policy before this one verified the token (the config requires one).
      std::string claim = JwtClaim(BearerToken(HeaderValue(ctx.request(), "authorization")),
                                   std::string_view(part).substr(10));
      h.Add(claim);
    }
  }
  return h.Done();
}

Decision RateLimitPolicy::Admit(Context& ctx) {
  const int64_t now = clock_();
  LimitCell* cells = nullptr;
  char buf[160];
  for (const Limit& l : limits_) {
    cells = &l.state->cells[static_cast<size_t>(ctx.worker()) % kCells];
    const GcraTable::Result r =
        l.state->table.Take(KeyOf(l, ctx), now, l.interval_ns, l.tolerance_ns);
    if (r.allowed) {
      cells->allowed.fetch_add(1, std::memory_order_relaxed);
      if (l.config.headers) {
        const int64_t remaining = (l.tolerance_ns - (r.tat - now)) / l.interval_ns;
        ctx.AddResponseHeader("RateLimit-Policy", l.policy_field);
        ctx.AddResponseHeader("RateLimit", FormatRateLimit(buf, sizeof buf, l.config.name,
                                                           remaining, CeilSeconds(r.tat - now)));
      }
      continue;
    }
    if (l.config.shadow) {
      cells->shadow_limited.fetch_add(1, std::memory_order_relaxed);
      int64_t last = l.state->last_shadow_log_ns.load(std::memory_order_relaxed);
      if (now - last >= kShadowLogEveryNs &&
          l.state->last_shadow_log_ns.compare_exchange_strong(last, now)) {
        log::warn(
            "rate limit '{}' of route '{}' (shadow) would have limited a request; "
            "ficus_rate_limit_requests_total{{result=\"shadow_limited\"}} counts them",
            l.config.name, route_name_);
      }
      continue;
    }
    cells->limited.fetch_add(1, std::memory_order_relaxed);
    // The next request of this key passes once TAT - tolerance + interval is reached.
    const int64_t retry =
        std::max<int64_t>(1, CeilSeconds(r.tat + l.interval_ns - l.tolerance_ns - now));
    char* p = std::to_chars(buf, buf + 24, retry).ptr;
    ctx.AddResponseHeader("Retry-After", std::string_view(buf, static_cast<size_t>(p - buf)));
    ctx.AddResponseHeader("RateLimit-Policy", l.policy_field);
    ctx.AddResponseHeader(
        "RateLimit", FormatRateLimit(buf, sizeof buf, l.config.name, 0, CeilSeconds(r.tat - now)));
    return Decision::Respond({429, {}, "application/problem+json", l.problem});
  }
  return Decision::Pass();
}

}  // namespace ficus::policy::internal
