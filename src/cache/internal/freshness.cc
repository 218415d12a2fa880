// RFC 9111 §3 (may a shared cache store this response?) and §4.2 (how long is it fresh, how old
// is it).
#include <algorithm>

#include "cache/internal/rfc.h"

namespace ficus::cache {

bool HeuristicallyCacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

bool StatusUnderstood(int status) {
  switch (status) {
    case 200:
    case 201:
    case 202:
    case 203:
    case 204:
    case 205:
    case 300:
    case 301:
    case 302:
    case 303:
    case 307:
    case 308:
    case 400:
    case 401:
    case 402:
    case 403:
    case 404:
    case 405:
    case 406:
    case 407:
    case 408:
    case 409:
    case 410:
    case 411:
    case 412:
    case 413:
    case 414:
    case 415:
    case 416:
    case 417:
    case 421:
    case 422:
    case 426:
    case 428:
    case 429:
    case 431:
    case 451:
    case 500:
    case 501:
    case 502:
    case 503:
    case 504:
    case 505:
      return true;
    default:
      return false;
  }
}

std::string_view VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kStorable:
      return "stored";
    case Verdict::kMethod:
      return "method";
    case Verdict::kStatus:
      return "status";
    case Verdict::kNoStore:
      return "no-store";
    case Verdict::kPrivate:
      return "private";
    case Verdict::kAuthorization:
      return "authorization";
    case Verdict::kSetCookie:
      return "set-cookie";
    case Verdict::kVaryStar:
      return "vary-star";
    case Verdict::kNotCacheable:
      return "not-cacheable";
    case Verdict::kMustUnderstand:
      return "must-understand";
  }
  return "unknown";
}

Verdict Storable(const http::RequestHead& request, const CacheControl& request_cc, int status,
                 std::span<const http::Header> response, const CacheControl& cc,
                 const Rules& rules) {
  if (request.method != http::Method::kGet) return Verdict::kMethod;
  // §3: a final status; 206 and 304 only when understood (they are not: no range support), and
  // must-understand stores only a status we understand, and then ignores no-store (§5.2.2.3).
  if (cc.must_understand && !StatusUnderstood(status)) return Verdict::kMustUnderstand;
  if (status < 200 || status == 206 || status == 304) return Verdict::kStatus;
  const bool forced = rules.force_ttl && rules.default_ttl_s > 0;
  if (request_cc.no_store) return Verdict::kNoStore;
  if (cc.no_store && !cc.must_understand && !forced) return Verdict::kNoStore;
  if (cc.is_private && !forced) return Verdict::kPrivate;
  // §3.5: a request with credentials is answered for that user alone unless the response says
  // it may be shared.
  if (FindField(request.headers, "Authorization") && !cc.must_revalidate && !cc.is_public &&
      cc.s_maxage < 0) {
    return Verdict::kAuthorization;
  }
  std::vector<std::string> names;
  if (VaryNames(response, names)) return Verdict::kVaryStar;
  const bool explicit_freshness =
      cc.max_age >= 0 || cc.s_maxage >= 0 || FindField(response, "Expires").has_value();
  // Set-Cookie does not inhibit caching (§7.3 of RFC 9111's security notes), and a stored
  // response never keeps it (object.cc: a cookie is never replayed to another client); but a
  // response that sets one and says nothing of its freshness is taken as per user, not given
  // the route's ttl or a heuristic.
  if (FindField(response, "Set-Cookie") && !explicit_freshness && !cc.is_public && !forced) {
    return Verdict::kSetCookie;
  }
  // §3: at least one of public, Expires, max-age, s-maxage, or a heuristically cacheable status.
  if (explicit_freshness || cc.is_public || HeuristicallyCacheable(status)) {
    return Verdict::kStorable;
  }
  return Verdict::kNotCacheable;
}

Timing ComputeTiming(int status, std::span<const http::Header> response, const CacheControl& cc,
                     const Rules& rules, int64_t request_time_ms, int64_t response_time_ms,
                     int64_t age_value) {
  Timing t;
  t.request_time_ms = request_time_ms;
  t.response_time_ms = response_time_ms;
  const int64_t response_s = response_time_ms / 1000;
  std::optional<int64_t> date;
  if (auto d = FindField(response, "Date")) date = ParseHttpDate(*d);
  t.date_s = date.value_or(response_s);

  // §4.2.3
  if (age_value < 0) age_value = AgeValue(response);
  const int64_t apparent_age = std::max<int64_t>(0, response_s - t.date_s);
  const int64_t response_delay = std::max<int64_t>(0, (response_time_ms - request_time_ms) / 1000);
  t.corrected_initial_age_s = std::max(apparent_age, age_value + response_delay);

  // §4.2.1
  if (rules.force_ttl && rules.default_ttl_s > 0) {
    t.lifetime_s = rules.default_ttl_s;
  } else if (cc.s_maxage >= 0) {
    t.lifetime_s = cc.s_maxage;
  } else if (cc.max_age >= 0) {
    t.lifetime_s = cc.max_age;
  } else if (auto e = FindField(response, "Expires")) {
    // An invalid Expires (e.g. "0") is in the past (§5.3).
    std::optional<int64_t> expires = ParseHttpDate(*e);
    t.lifetime_s = expires ? std::max<int64_t>(0, *expires - t.date_s) : 0;
  } else if (rules.default_ttl_s > 0 && (HeuristicallyCacheable(status) || cc.is_public)) {
    t.lifetime_s = rules.default_ttl_s;  // the route's own heuristic
  } else if (HeuristicallyCacheable(status) || cc.is_public) {
    // §4.2.2: a fraction of the time since Last-Modified, capped.
    std::optional<int64_t> lm;
    if (auto l = FindField(response, "Last-Modified")) lm = ParseHttpDate(*l);
    if (lm && *lm < t.date_s) {
      t.lifetime_s = std::min<int64_t>((t.date_s - *lm) / 10, rules.max_heuristic_s);
    }
  }
  return t;
}

int64_t CurrentAge(const Timing& t, int64_t now_ms) {
  const int64_t resident = std::max<int64_t>(0, now_ms - t.response_time_ms) / 1000;
  return std::min(t.corrected_initial_age_s + resident, kMaxDelta);
}

}  // namespace ficus::cache
