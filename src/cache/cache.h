// ficus::cache — the HTTP response cache (RFC 9111 shared cache) as a route policy: a `cache:`
// route answers fresh hits from memory, revalidates stale entries, coalesces concurrent misses,
// stores while relaying, and invalidates on unsafe methods. This header is the module's whole
// interface: the builder, the /metrics families and the admin purge.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"
#include "policy/policy.h"

namespace ficus::cache {

// Appends the route's cache policy when its config has `cache:`. The store (and its counters)
// is taken over from the running snapshot's same route when its cache config is unchanged, so
// a reload keeps what is cached.
void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain);

// Whether the upstream lets a shared cache reuse this response to a GET or HEAD without asking
// the origin each time (RFC 9111 §3, §5.2.2): not `no-store`, `private` or `no-cache` (the
// targeted Ficus-/CDN-Cache-Control first, RFC 9213), no Set-Cookie unless the freshness is
// explicit (the cache then stores it without the cookie), no `Vary: *`, and a
// request with Authorization only when the response allows sharing. What a `cache:` route
// would store without `force_ttl`; the report's cacheability samples count only these.
bool SharedCacheMayReuse(const http::RequestHead& request, const http::ResponseHead& response);

// The ficus_cache_* families (Prometheus text) of every cached route in `chains` (a snapshot's
// route_policies), appended to `out`.
void RenderMetrics(std::span<const policy::Chain> chains, std::string& out);

// A cached route's request counters, cumulative since its store was made (a reload that changes
// the route's bounds or keys makes a new store: they start again at zero). Telemetry keeps
// their per-minute differences for the report.
struct RouteCounters {
  std::string route;
  uint64_t hits = 0;          // answered fresh from the store
  uint64_t misses = 0;        // GET/HEAD forwarded or waiting for a fill
  uint64_t stale = 0;         // answered stale (stale-while-revalidate, stale-if-error)
  uint64_t stale_errors = 0;  // ... of which stale-if-error (those are misses too)
  uint64_t revalidated = 0;   // a 304 refreshed a stored response
  uint64_t coalesced = 0;     // waited for another request's fill and answered from it (misses)
  uint64_t bypassed = 0;      // unsafe methods and responses not stored
};
std::vector<RouteCounters> Counters(std::span<const policy::Chain> chains);

// What an admin purge removes.
struct PurgeRequest {
  enum class Kind : uint8_t { kKey, kPrefix, kTag, kAll };
  Kind kind = Kind::kAll;
  // kKey: a URL ("http://host/path?q", normalised as the route's keys are); kPrefix: the start
  // of keys ("http://host/path/"); kTag: one Surrogate-Key / Cache-Tag member.
  std::string_view value;
  std::string_view route;  // only this route's cache; empty: every cached route
};
// Removes the matching stored responses from the caches in `chains`; how many were removed.
size_t Purge(std::span<const policy::Chain> chains, const PurgeRequest& request);

}  // namespace ficus::cache
