// ficus::proxy — the request lifecycle. The one place that knows the phases:
//   accept -> read head -> route -> admit -> forward -> relay -> record (fail: any error)
// Admit runs the route's policies (policy/policy.h); see docs/architecture.md. A Worker is one
// thread's share of the gateway: its listeners, its connections, its upstream pools, its metric
// cells. The server module owns the threads.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "config/config.h"
#include "net/net.h"
#include "observe/observe.h"
#include "policy/policy.h"
#include "record/record.h"
#include "route/route.h"
#include "telemetry/telemetry.h"
#include "upstream/upstream.h"

namespace ficus::proxy {

// Everything a request needs from one config, resolved once at load: immutable, shared by all
// workers. A request keeps the snapshot it started with alive until it ends.
struct Snapshot {
  std::shared_ptr<const config::Config> config;
  route::RouteTable routes;
  std::vector<observe::RouteStats*> route_stats;      // parallel to config->routes
  std::vector<observe::ClusterStats*> cluster_stats;  // parallel to config->clusters
  // [cluster][endpoint], parallel to config->clusters[i].endpoints
  std::vector<std::vector<observe::TrafficStats*>> endpoint_stats;
  std::vector<std::vector<net::Address>> cluster_addresses;
  uint64_t generation = 0;
  // Parallel to config->routes: where a route with `record:` captures to (null: not recorded).
  struct RouteRecord {
    record::Recorder* recorder = nullptr;
    uint32_t policy = 0;
    double sample = 1;
    uint64_t max_body_bytes = 0;
  };
  std::vector<RouteRecord> route_records;
  // Per cluster, shared by every worker: health, ejection, breakers (parallel to clusters).
  std::vector<std::shared_ptr<upstream::ClusterShared>> cluster_shared;
  // Parallel to config->routes: the policies the admit phase runs, built with the snapshot.
  std::vector<policy::Chain> route_policies;
};

// Builds a snapshot. Throws std::runtime_error (startup/reload only) on what validation could
// not catch (e.g. an endpoint address that does not parse).
// `previous` (the running snapshot, or null) lends its endpoint health and ejection state to
// the clusters and endpoints that stay.
std::shared_ptr<const Snapshot> BuildSnapshot(std::shared_ptr<const config::Config> config,
                                              observe::Registry& registry, uint64_t generation,
                                              const Snapshot* previous = nullptr);

class Session;

// One worker thread's state. Every method runs on that worker's thread (post to its
// loop from elsewhere).
class Worker {
 public:
  Worker(int id, net::Loop& loop, observe::Registry& registry,
         std::shared_ptr<const Snapshot> snapshot);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Opens this worker's SO_REUSEPORT sockets for every listener of the snapshot and starts
  // accepting, plus the timeout sweeper. Throws std::system_error when a bind fails.
  void Start();
  // Installs a new snapshot: new requests use it; in-flight ones finish on theirs. Upstream
  // pools of clusters whose endpoints did not change are kept.
  void SetSnapshot(std::shared_ptr<const Snapshot> snapshot);
  // Graceful drain: stop accepting, close idle keep-alive connections, let in-flight requests
  // finish (answering them with Connection: close).
  void StartDrain();
  // Closes everything now (after the drain deadline).
  void Abort();

  // Where this worker's sessions put 5xx samples (their ring is this worker's); null = none.
  // Set before Start.
  void SetErrorSampler(telemetry::ErrorSampler* sampler) { error_sampler_ = sampler; }
  telemetry::ErrorSampler* error_sampler() const { return error_sampler_; }

  int id() const { return id_; }
  bool draining() const { return draining_; }
  int64_t active_connections() const { return active_connections_; }

  // --- for sessions (same thread) ---
  net::Loop& loop() { return loop_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snapshot_; }
  const std::shared_ptr<upstream::ClusterState>& cluster(size_t index) { return clusters_[index]; }
  observe::ServerCell& server_stats() { return registry_.Server(id_); }
  observe::Registry& registry() { return registry_; }
  // The access log and tracer (null when not configured). Set before Start().
  void SetSinks(observe::AccessLog* access_log, observe::Tracer* tracer) {
    access_log_ = access_log;
    tracer_ = tracer;
  }
  observe::AccessLog* access_log() const { return access_log_; }
  observe::Tracer* tracer() const { return tracer_; }
  net::TimeoutList& timeouts() { return timeouts_; }
  // Exchange memory: fixed-size blocks recycled per worker, so a request allocates nothing in
  // steady state and an idle keep-alive connection holds none.
  char* AcquireBlock();
  void ReleaseBlock(char* block);
  // 64 random bits (retry back-off jitter).
  uint64_t Random() { return rng_(); }
  // A new request id (UUID v4 text, 36 chars) written to `out`.
  void NewRequestId(char out[36]);
  void SessionStarted(Session* s);
  void SessionEnded(Session* s);
  // Routed requests left until the next repeat sample (session_repeat.cc), this worker's.
  uint32_t& repeat_countdown() { return repeat_countdown_; }

  static constexpr size_t kBlockSize = 64 * 1024;

 private:
  // One listening socket of this worker (SO_REUSEPORT), by its config address.
  struct Listener {
    std::string address;  // "host:port"
    net::Socket socket;
    bool removed = false;  // a reload dropped it: the accept loop ends
    bool running = false;  // its accept loop has not ended yet
    // Outlives the Listener (an element of listener_removed_): its sessions read it to answer
    // with Connection: close once a reload removed their listener.
    bool* removed_flag = nullptr;
  };
  net::Task<void> AcceptLoop(Listener& slot);
  void Tick();
  void RebuildClusters();
  // Opens the snapshot's new listeners and closes the ones it no longer has.
  void ReconcileListeners();

  int id_;
  net::Loop& loop_;
  observe::Registry& registry_;
  observe::AccessLog* access_log_ = nullptr;
  observe::Tracer* tracer_ = nullptr;
  std::shared_ptr<const Snapshot> snapshot_;
  std::vector<std::shared_ptr<upstream::ClusterState>> clusters_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Listener>> retired_listeners_;  // until their accept loop ends
  std::deque<bool> listener_removed_;  // one per listener ever opened (stable addresses)
  bool started_ = false;
  int accept_loops_ = 0;  // running AcceptLoop tasks
  int tick_count_ = 0;
  net::TimeoutList timeouts_;
  std::vector<char*> free_blocks_;
  std::mt19937_64 rng_;
  int64_t active_connections_ = 0;
  int64_t max_connections_ = 0;  // this worker's share of limits.max_connections
  bool draining_ = false;
  bool stopped_ = false;
  telemetry::ErrorSampler* error_sampler_ = nullptr;
  uint32_t repeat_countdown_ = 1;
};

}  // namespace ficus::proxy
