// ficus::upstream — a worker's view of its clusters: the load balancer and the keep-alive
// connection pools, one per endpoint. Everything here is owned by one worker thread and used
// only there, so nothing is locked or atomic.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "net/net.h"
#include "observe/observe.h"
#include "upstream/internal/balancers.h"  // Balancer, PickContext, kNoEndpoint

namespace ficus::upstream {

// One upstream connection (pooled between requests when the upstream allows keep-alive).
struct Connection {
  explicit Connection(size_t endpoint_index) : endpoint(endpoint_index) {}
  net::Socket socket;
  size_t endpoint;  // index into its cluster's endpoints
  int64_t idle_since_ms = 0;
  uint32_t requests = 0;  // requests served on this connection so far
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
               observe::ClusterStats* stats, uint64_t seed = 1);
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
  std::string name_;
  std::string load_balancer_;
  std::vector<net::Address> addresses_;
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
