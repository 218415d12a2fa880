// ficus::upstream — a worker's view of its clusters (ClusterState: the load balancer, the
// keep-alive pools, the retry budget; owned by one worker thread, nothing locked or atomic)
// and the state every worker shares (ClusterShared: endpoint health, ejection and failed
// connects, circuit breaker counts, resilience counters; atomics only), kept current by the
// Monitor thread (active health checks, connect probes, ejection expiry, DNS re-resolution).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "net/net.h"
#include "observe/observe.h"
#include "upstream/internal/balancers.h"     // Balancer, PickContext, kNoEndpoint
#include "upstream/internal/retry_budget.h"  // RetryBudget

namespace ficus::upstream {

// Counters and breaker gauges of one cluster, kept across reloads (by cluster name) so that
// Prometheus counters stay monotonic and breaker counts stay exact while old and new
// snapshots overlap. Written by any worker (relaxed atomic RMW, only on rare events or when a
// breaker is configured), read by the admin thread.
struct ClusterCounters {
  enum Breaker : int { kMaxConnections, kMaxPending, kMaxRequests, kMaxRetries, kBreakers };
  static constexpr const char* kBreakerNames[kBreakers] = {"max_connections", "max_pending",
                                                           "max_requests", "max_retries"};
  std::atomic<uint64_t> retries{0};                 // retries started
  std::atomic<uint64_t> retry_budget_exhausted{0};  // retries the budget refused
  std::atomic<uint64_t> breaker_rejections[kBreakers] = {};
  std::atomic<uint64_t> ejections{0};  // outlier ejections
  std::atomic<uint64_t> health_checks_passed{0};
  std::atomic<uint64_t> health_checks_failed{0};
  std::atomic<uint64_t> panics{0};             // picks that used every endpoint (too few available)
  std::atomic<uint64_t> connect_markdowns{0};  // endpoints marked down by a failed connect
  // Breaker gauges (maintained only for the limits a cluster sets).
  std::atomic<int64_t> open[kBreakers] = {};  // connections, pending, requests, retries
};

// One upstream connection (pooled between requests when the upstream allows keep-alive).
struct Connection {
  explicit Connection(size_t endpoint_index) : endpoint(endpoint_index) {}
  ~Connection() {
    if (open_connections) open_connections->fetch_sub(1, std::memory_order_relaxed);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  net::Socket socket;
  size_t endpoint;  // index into its cluster's endpoints
  int64_t idle_since_ms = 0;
  uint32_t requests = 0;  // requests served on this connection so far
  // The max_connections gauge this connection counts in (null when no breaker is set).
  std::atomic<int64_t>* open_connections = nullptr;
};

// What an attempt told about its endpoint, for passive outlier detection.
enum class Outcome : uint8_t {
  kSuccess,         // a response head that is not 5xx
  k5xx,             // a 5xx response head
  kGatewayFailure,  // connect failure, reset before a response, timeout
};

// The state of one cluster that every worker shares: endpoint health (active checks), ejection
// (outlier detection) and failed connects, circuit breaker counts. Created per snapshot;
// endpoint state of endpoints whose address did not change is carried over from the previous
// snapshot, and the counters are carried over by cluster name. Lock-free: workers read three
// bitmaps per pick and write an endpoint's atomics only when its outcome differs from the
// last one.
class ClusterShared {
 public:
  // `previous`: the same cluster in the running snapshot (or null).
  ClusterShared(const config::Cluster& cluster, std::vector<net::Address> addresses,
                const ClusterShared* previous);
  ~ClusterShared();
  const config::Cluster& config() const { return cluster_; }
  const std::string& name() const { return cluster_.name; }
  size_t endpoint_count() const { return addresses_.size(); }
  const net::Address& address(size_t i) const { return addresses_[i]; }
  const std::vector<net::Address>& addresses() const { return addresses_; }
  ClusterCounters& counters() const { return *counters_; }

  // --- workers ---
  // Whether health checks or outlier detection are configured. Picks are filtered either way:
  // a failed connect marks an endpoint down in every cluster.
  bool filters() const { return filters_; }
  size_t mask_words() const { return words_; }
  // Writes the endpoints a pick may use into `words` (mask_words() of them) and returns true;
  // returns false when every endpoint may be used. Available = healthy, not ejected, and its
  // last connect did not fail. Below panic_threshold percent available (or none), every
  // endpoint is used (Envoy's panic mode) except those whose last connect failed; when every
  // endpoint's last connect failed, all are used (each try is then a probe).
  bool AvailableMask(std::span<uint64_t> words) const;
  // Whether any endpoint is unhealthy, ejected or marked down by a failed connect; when not,
  // AvailableMask would return false. Three relaxed loads per 64 endpoints, inline: the
  // common case of a pick.
  bool AnyDown() const {
    size_t w = 0;
    do {
      if ((ejected_bits_[w].load(std::memory_order_relaxed) |
           unhealthy_bits_[w].load(std::memory_order_relaxed) |
           connect_failed_bits_[w].load(std::memory_order_relaxed)) != 0) {
        return true;
      }
    } while (++w < words_);  // a cluster has at least one endpoint: one word at least
    return false;
  }
  // The endpoints whose last connect did not fail, as AvailableMask writes them (false: all).
  bool ConnectableMask(std::span<uint64_t> words) const;
  // A connect to endpoint i failed (refused, unreachable, timed out): it is down for new picks
  // on every worker at once, until a connect to it succeeds (a request's, the monitor's probe
  // after a back-off, or a health check).
  void ConnectFailed(size_t i, int64_t now_ms);
  // A connect to endpoint i succeeded. One relaxed load unless it was marked down.
  void ConnectSucceeded(size_t i);
  // Passive outlier detection: consecutive 5xx / gateway failures eject the endpoint.
  void Report(size_t endpoint, Outcome outcome, int64_t now_ms);
  // Circuit breakers: false (and a counted rejection) when `b` is at its limit; otherwise the
  // caller holds one unit until Release. Both do nothing when the limit is not set.
  bool TryAcquire(ClusterCounters::Breaker b);
  void Release(ClusterCounters::Breaker b);
  uint32_t limit(ClusterCounters::Breaker b) const { return limits_[b]; }

  // --- state (any thread) ---
  bool healthy(size_t i) const;  // active health checks say so (true without checks)
  bool ejected(size_t i) const;
  bool connect_failed(size_t i) const;  // marked down by a failed connect
  // How often endpoint i came back after being down (un-ejected, healthy again, a connect
  // after a failed one), and the sum over the cluster: workers compare the sum on their tick
  // and have their balancer forget the endpoints that came back.
  uint32_t recoveries(size_t i) const;
  uint64_t recoveries() const { return recoveries_.load(std::memory_order_acquire); }
  uint32_t ejections(size_t i) const;  // the current back-off multiplier
  size_t ejected_count() const { return static_cast<size_t>(ejected_count_.load()); }

  // --- the Monitor thread ---
  // Returns ejections that expired at now_ms (and decays multipliers); each un-ejected
  // endpoint is appended to `unejected`, each newly seen ejection to `ejected`.
  void Sweep(int64_t now_ms, std::vector<size_t>* ejected, std::vector<size_t>* unejected);
  // Applies one active check result; returns true when the endpoint's health changed. A check
  // that connected clears a failed-connect mark; one whose connect failed sets it.
  bool CheckResult(size_t i, bool passed, bool connect_failed = false, int64_t now_ms = 0);
  // Failed-connect marks: appends each mark the monitor has not seen yet to `marked`, each
  // seen mark that is gone (a connect succeeded) to `cleared`, and each endpoint whose probe
  // (a TCP connect from the monitor) is due to `probe` (its next probe is pushed back, so one
  // is in flight at a time).
  void SweepConnectFailures(int64_t now_ms, std::vector<size_t>* marked,
                            std::vector<size_t>* cleared, std::vector<size_t>* probe);
  // A probe's result: connected clears the mark; otherwise the back-off doubles.
  void ProbeResult(size_t i, bool connected, int64_t now_ms);
  // The delay before the k-th probe of a marked endpoint (k >= 1): 250 ms doubling to 5 s.
  static int64_t ProbeDelayMs(uint32_t k);

 private:
  struct Endpoint;
  void Eject(size_t i, int64_t now_ms);
  void Uneject(size_t i);
  void Recovered(size_t i);

  config::Cluster cluster_;
  std::vector<net::Address> addresses_;
  size_t words_;  // 64-bit words per endpoint bitmap
  std::shared_ptr<ClusterCounters> counters_;
  std::unique_ptr<Endpoint[]> endpoints_;
  std::unique_ptr<std::atomic<uint64_t>[]> ejected_bits_;
  std::unique_ptr<std::atomic<uint64_t>[]> unhealthy_bits_;
  std::unique_ptr<std::atomic<uint64_t>[]> connect_failed_bits_;
  std::atomic<int> ejected_count_{0};
  std::atomic<uint64_t> recoveries_{0};
  int max_ejected_ = 0;
  bool filters_ = false;
  uint32_t limits_[ClusterCounters::kBreakers] = {};
};

// Health and ejection state of every endpoint plus the clusters' resilience counters, in the
// Prometheus text format (appended to `out`). Admin thread.
void RenderResilienceMetrics(std::span<const std::shared_ptr<ClusterShared>> clusters,
                             std::string& out);

// The background thread that keeps ClusterShared current: active HTTP health checks (many in
// flight at once, non-blocking sockets and poll), ejection expiry, and re-resolving endpoints
// given as DNS names. Never on a worker thread. Logs every health and ejection change.
class Monitor {
 public:
  // Called (on the monitor thread) when a cluster's DNS names resolve to different addresses:
  // cluster name and its endpoints' new IP literals, in config order.
  using DnsChange = std::function<void(const std::string& cluster, std::vector<std::string> hosts)>;
  // Called (on the monitor thread) for every health and ejection change it observes, and for
  // breaker trips (rejections it sees the counters gain; the first per cluster per 10 s, the
  // note counting the rejections): kind "health", "ejection" or "breaker", the cluster, a note.
  using EventSink =
      std::function<void(std::string_view kind, const std::string& cluster, std::string note)>;
  static constexpr int64_t kBreakerEventIntervalMs = 10'000;
  explicit Monitor(DnsChange on_dns_change = nullptr, EventSink on_event = nullptr);
  ~Monitor();  // Stop()
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;
  // The clusters to watch (the running snapshot's). Any thread.
  void SetClusters(std::vector<std::shared_ptr<ClusterShared>> clusters);
  void Start();
  void Stop();  // idempotent; joins the thread

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Idle connections of one endpoint, most recently used first (warm sockets, and the oldest
// expire at the back).
class EndpointPool {
 public:
  // The most recently used connection idle for less than idle_timeout_ms, or null. Expired
  // connections met on the way are closed.
  std::unique_ptr<Connection> Take(int64_t now_ms, int64_t idle_timeout_ms);
  // Keeps `c` when fewer than max_idle are pooled; otherwise closes it.
  void Put(std::unique_ptr<Connection> c, int64_t now_ms, uint32_t max_idle);
  // Closes connections idle for idle_timeout_ms or more; returns how many.
  size_t CloseExpired(int64_t now_ms, int64_t idle_timeout_ms);
  void CloseAll() { idle_.clear(); }
  size_t size() const { return idle_.size(); }

 private:
  std::vector<std::unique_ptr<Connection>> idle_;  // back = most recent
};

// Smooth weighted round robin (the nginx algorithm): over any window of sum(weights) picks,
// each endpoint is chosen exactly `weight` times, interleaved rather than in bursts.
class WeightedRoundRobin {
 public:
  explicit WeightedRoundRobin(std::vector<uint32_t> weights);
  size_t Pick();

 private:
  std::vector<int64_t> weight_;
  std::vector<int64_t> current_;
  int64_t total_ = 0;
  size_t next_ = 0;  // used when all weights are equal: a plain cursor
  bool uniform_ = true;
};

// A cluster as one worker sees it.
class ClusterState {
 public:
  // `seed` feeds the balancer's random choices (P2C candidates); give each worker its own so
  // that workers do not draw the same candidates in lockstep.
  ClusterState(const config::Cluster& cluster, std::vector<net::Address> addresses,
               observe::ClusterStats* stats, uint64_t seed = 1,
               std::shared_ptr<ClusterShared> shared = nullptr);
  // The cluster's config (the snapshot's; valid while the snapshot lives).
  const config::Cluster& config() const { return shared_->config(); }
  // Shared by all workers (never null: the constructor makes one when not given).
  ClusterShared& shared() { return *shared_; }
  // Retry budget (this worker's share, a rate over a sliding window: RetryBudget).
  // RequestStarted counts every request (one increment); TryStartRetry reserves one retry
  // (false = over budget, counted in retry_budget_exhausted).
  void RequestStarted() { budget_.RequestStarted(); }
  bool TryStartRetry(int64_t now_ms, bool connect_failure);
  // The worker's tick (every 100 ms): slides the budget's window and lets the balancer forget
  // endpoints that came back since the last tick (ClusterShared::recoveries).
  void Tick(int64_t now_ms);
  const RetryBudget& budget() const { return budget_; }
  // Affinity cookie value -> endpoint (built only when the cluster sets affinity).
  const AffinityIndex* affinity() const { return affinity_.get(); }
  const std::string& affinity_cookie_value(size_t endpoint) const {
    return affinity_values_[endpoint];
  }
  const std::string& name() const { return name_; }
  // The cluster's `load_balancer` (round_robin, least_request, p2c_ewma).
  const std::string& load_balancer() const { return load_balancer_; }
  // An endpoint for one request, or kNoEndpoint when the context allows none. Every pick
  // that is used must be followed by OnStart, and each OnStart by exactly one OnEnd.
  size_t Pick(const PickContext& ctx) { return balancer_->Pick(ctx); }
  void OnStart(size_t endpoint) { balancer_->OnStart(endpoint); }
  // latency_us: from the attempt's start to the response head (ok), or to its failure.
  void OnEnd(size_t endpoint, uint64_t latency_us, bool ok) {
    balancer_->OnEnd(endpoint, latency_us, ok);
  }
  // Whether the balancer uses OnEnd's latency (p2c_ewma): others need no clock reads.
  bool wants_latency() const { return wants_latency_; }
  Balancer& balancer() { return *balancer_; }
  const net::Address& address(size_t endpoint) const { return addresses_[endpoint]; }
  size_t endpoint_count() const { return addresses_.size(); }
  EndpointPool& pool(size_t endpoint) { return pools_[endpoint]; }
  const config::Pool& pool_config() const { return pool_config_; }
  int64_t connect_timeout_ms() const { return connect_timeout_ms_; }
  observe::ClusterStats* stats() const { return stats_; }
  // Same endpoints (addresses, in order) and pool settings: pools can be carried over.
  bool SameEndpoints(const ClusterState& other) const;
  // Takes over `other`'s idle connections. The balancer is NOT carried over: the new state
  // starts with a fresh one (counts and latencies relearn within a few requests, and the
  // balancer or the weights may have changed). Requests still in flight on the old state
  // report their OnEnd to the old balancer, which their session keeps alive.
  void AdoptPools(ClusterState& other) { pools_.swap(other.pools_); }
  size_t CloseExpired(int64_t now_ms);
  size_t idle_connections() const;

 private:
  std::shared_ptr<ClusterShared> shared_;  // before pools_: connections count in its gauges
  std::string name_;
  std::string load_balancer_;
  std::vector<net::Address> addresses_;
  RetryBudget budget_;
  uint64_t seen_recoveries_ = 0;          // shared_->recoveries() as of the last Tick
  std::vector<uint32_t> seen_recovered_;  // per endpoint
  std::unique_ptr<AffinityIndex> affinity_;
  std::vector<std::string> affinity_values_;
  std::unique_ptr<Balancer> balancer_;
  bool wants_latency_ = false;
  std::vector<EndpointPool> pools_;
  config::Pool pool_config_;
  int64_t connect_timeout_ms_;
  observe::ClusterStats* stats_;
};

// Resolves a cluster's endpoints to socket addresses (the config holds IP literals after
// loading). Throws std::runtime_error on a bad address (startup/reload only).
std::vector<net::Address> ResolveEndpoints(const config::Cluster& cluster);

}  // namespace ficus::upstream
