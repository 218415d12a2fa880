// ficus::upstream load balancers (issue 3): one `Balancer` per cluster per worker thread.
//
// Algorithms (config names in quotes):
//   "round_robin"   smooth weighted round robin (nginx), same sequence as WeightedRoundRobin.
//   "least_request" power of two choices on active requests / weight (Envoy's least request).
//   "p2c_ewma"      power of two choices on peak-EWMA latency x (active + 1) (Finagle/Linkerd).
//   "ring_hash"     consistent hashing on a Ketama-style ring with weighted virtual nodes.
//   "maglev"        consistent hashing on Google's Maglev table (65537 entries), weighted.
//
// Threading: a Balancer belongs to one worker thread; nothing is locked or atomic. Each
// worker balances on its own view (its own active counts and latencies), as Envoy does.
//
// Wired: round_robin, least_request and p2c_ewma are selectable per cluster
// (upstream::ClusterState owns one per worker; Session::Forward does steps 2 and 3 below with
// empty masks). Still to wire: hash keys (1), retries to other endpoints and health (2),
// affinity (4). The plan for the session (see also the report in the PR):
//   1. Key: when the cluster uses ring_hash/maglev, the proxy extracts the configured key
//      (header, cookie, query parameter or client address) and passes HashKey(value) as
//      PickContext::hash (0 when absent: the pick is then random but still valid).
//   2. Pick with `excluded` = endpoints this request already tried (retries go elsewhere when
//      another endpoint exists) and `available` = the health mask (later; empty = all).
//   3. OnStart(e) right after a successful Pick (before connecting), and exactly one OnEnd(e,
//      latency_us, ok) per OnStart when that attempt ends (response head received = ok, or
//      connect/reset/timeout = !ok), including attempts abandoned for a retry.
//   4. Session affinity (cookie): see AffinityIndex below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/net.h"

namespace ficus::upstream {

// Pick's answer when no endpoint may be chosen (all excluded or unavailable, or none).
inline constexpr size_t kNoEndpoint = SIZE_MAX;

// A fast, non-cryptographic 64-bit hash of a key (a header value, a client address, ...).
// Stable across processes, machines and versions of ficus (the affinity cookie and hashing
// consistency across workers and restarts depend on that): changing it remaps every key.
// Never returns 0, so 0 can mean "no key" in PickContext.
uint64_t HashKey(std::string_view key);

// A read-only view of a set of endpoint indexes: bit i of words[i / 64]. Indexes past the
// end of `words` are not in the set.
struct EndpointMask {
  std::span<const uint64_t> words;
  bool Contains(size_t i) const {
    size_t w = i >> 6;
    return w < words.size() && ((words[w] >> (i & 63)) & 1) != 0;
  }
  bool empty() const { return words.empty(); }
};

// An owning set of endpoint indexes (e.g. the endpoints one request has tried). Keep one per
// session and Clear() it per request: it allocates only when it first grows.
class EndpointSet {
 public:
  EndpointSet() = default;
  explicit EndpointSet(size_t endpoints) : words_((endpoints + 63) / 64, 0) {}
  void Insert(size_t i);
  void Erase(size_t i);
  bool Contains(size_t i) const { return mask().Contains(i); }
  void Clear();
  void Fill(size_t endpoints);  // all of 0..endpoints-1
  EndpointMask mask() const { return EndpointMask{words_}; }

 private:
  std::vector<uint64_t> words_;
};

// What one pick knows about its request.
struct PickContext {
  // HashKey of the request's key for ring_hash/maglev; 0 = no key (a random endpoint).
  // Ignored by the other algorithms.
  uint64_t hash = 0;
  // Endpoints this request already tried: never picked again.
  EndpointMask excluded;
  // Endpoints that may be picked (health). EMPTY MEANS ALL: a health mask with nothing
  // available is a non-empty span of zero words.
  EndpointMask available;
};

// One endpoint as a balancer sees it.
struct EndpointSpec {
  std::string id;       // stable identity, e.g. "10.0.0.1:8080": consistent hashing places
                        // endpoints by id, so removing one does not move the others' keys
  uint32_t weight = 1;  // > 0
};

struct BalancerOptions {
  uint64_t seed = 1;  // for the random choices (P2C, keyless hashing picks)
  // p2c_ewma: the decay time constant of the latency EWMA.
  int64_t ewma_tau_us = 10'000'000;
  // p2c_ewma: a failed attempt counts as at least this latency, so an endpoint that fails
  // fast (connection refused) does not look fast.
  uint64_t failure_penalty_us = 1'000'000;
  // p2c_ewma: the clock in microseconds (monotonic). Tests inject a simulated one.
  int64_t (*clock_us)() = nullptr;  // null = base MonotonicNanos() / 1000
  // ring_hash: the minimum number of ring entries (Envoy's minimum_ring_size).
  size_t min_ring_size = 1024;
};

class Balancer {
 public:
  virtual ~Balancer() = default;
  // An endpoint index in [0, size()) that is neither excluded nor unavailable, or kNoEndpoint
  // when there is none. Never allocates.
  virtual size_t Pick(const PickContext& ctx) = 0;
  // A request was sent to `endpoint` (call after Pick, once per attempt).
  virtual void OnStart(size_t endpoint) { (void)endpoint; }
  // That attempt ended after `latency_us` (send to response head, or to failure); `ok` is
  // false for connect failures, resets and timeouts. Exactly one OnEnd per OnStart.
  virtual void OnEnd(size_t endpoint, uint64_t latency_us, bool ok) {
    (void)endpoint, (void)latency_us, (void)ok;
  }
  // The endpoint is back after being down (its connect failed, health checks, ejection): what
  // was learned about it before no longer holds. p2c_ewma forgets its latency, so that the
  // endpoint is tried again as a new one would be, instead of waiting out the decay of the
  // failure penalty (a minute and more) with no traffic to correct it.
  virtual void Forget(size_t endpoint) { (void)endpoint; }
  size_t size() const { return weights_.size(); }

 protected:
  explicit Balancer(std::vector<uint32_t> weights) : weights_(std::move(weights)) {}
  std::vector<uint32_t> weights_;
};

// The config names above, for validation and error messages.
inline constexpr std::string_view kBalancerNames[] = {"round_robin", "least_request", "p2c_ewma",
                                                      "ring_hash", "maglev"};
bool IsBalancerName(std::string_view name);

// A balancer for `endpoints` (weights > 0), or null when `name` is not one of
// kBalancerNames. Building a ring or Maglev table costs O(table) time: reload only.
std::unique_ptr<Balancer> MakeBalancer(std::string_view name, std::vector<EndpointSpec> endpoints,
                                       const BalancerOptions& options = {});

// Cookie-based session affinity. ficus sets a cookie naming the endpoint that served the
// client and routes later requests carrying it to the same endpoint while it is available.
// The value is derived from the endpoint's address only (16 hex digits of HashKey of
// Address::ToString()), so every worker, every process and every restart agrees on it, and it
// survives reloads that add or remove other endpoints. It reveals nothing but a hash.
//
// Proxy side (to wire): per cluster, `affinity: {cookie: NAME, ttl: ...}`.
//   - request has cookie NAME and Find(value) is an endpoint that is available and not
//     excluded: use it (skip Pick; still call OnStart/OnEnd).
//   - otherwise Pick() as usual and add `Set-Cookie: NAME=<AffinityCookieValue(addr)>;
//     Path=/; HttpOnly` (plus Max-Age when ttl is set) to the response.
//   - a retry excludes the affinity endpoint like any other and re-sets the cookie.
std::string AffinityCookieValue(std::string_view endpoint_id);
std::string AffinityCookieValue(const net::Address& address);

class AffinityIndex {
 public:
  explicit AffinityIndex(std::span<const std::string> endpoint_ids);
  explicit AffinityIndex(std::span<const net::Address> addresses);
  // The endpoint whose AffinityCookieValue is `cookie_value`, or kNoEndpoint.
  size_t Find(std::string_view cookie_value) const;

 private:
  void Build(std::vector<uint64_t> hashes);
  std::vector<std::pair<uint64_t, uint32_t>> sorted_;  // (hash, endpoint index)
};

}  // namespace ficus::upstream
