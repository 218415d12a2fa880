// Per-route, per-cluster and per-endpoint traffic cells, the snapshots a scrape or the telemetry
// store merges from them, the Prometheus text writer and the Registry that owns them all. Part of
// observe.h, the module's interface; include that.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "observe/sketches.h"

namespace ficus::observe {

// Requests of a route that carried the valid `ficus assess` secret (SyntheticKey), in one
// worker; also counted in the cell's ordinary counters.
struct SyntheticCounts {
  Counter requests;
  Counter errors;          // 5xx sent downstream
  Histogram duration;      // request start -> response complete
  Counter response_bytes;  // body bytes sent to the client
};

// Traffic seen by a route, a cluster or an endpoint, in one worker. Recorded in the proxy's
// record phase (in_flight when the exchange reaches the route/cluster/endpoint).
struct alignas(64) TrafficCell {
  Counter requests;
  Gauge in_flight;
  std::array<Counter, 5> responses;  // by status class of the response sent downstream
  CodeCounters codes;                // by status code
  Counter request_bytes;             // body bytes received from the client
  Counter response_bytes;            // body bytes sent to the client
  Histogram duration;                // request start -> response complete
  Histogram upstream_connect;        // per new upstream connection: connect() time
  Histogram upstream_first_byte;     // request head sent upstream -> first response byte
  ClientSketch clients;              // distinct client keys (routes only; telemetry)
  KeySketch keys;                    // heaviest client keys (routes only; telemetry)
  KeySketch limited;                 // keys a rate/concurrency limit refused (routes; telemetry)
  RepeatSketch repeats;              // sampled GET 200 body repeats (routes only; telemetry)
  SyntheticCounts synthetic;         // `ficus assess` requests (routes only; kept out of SLOs)
};
using RouteCell = TrafficCell;

// A route's, cluster's or endpoint's cells (one per worker). `name` is the route or cluster
// name, or the endpoint's address (then `cluster` names its cluster).
struct TrafficStats {
  TrafficStats(std::string name, std::string cluster, int workers);
  std::string name;
  std::string cluster;
  std::unique_ptr<TrafficCell[]> cells;
  bool configured = true;  // in the running config (Registry::SetConfigured; under its lock)
  TrafficCell& Cell(int worker) { return cells[worker]; }
};
using RouteStats = TrafficStats;

struct alignas(64) ClusterCell {
  Counter requests;                  // upstream attempts
  std::array<Counter, 5> responses;  // by status class of the upstream response
  Counter connect_failures;
  Counter timeouts;  // upstream response timeouts
  Counter connections_opened;
  Counter connections_reused;  // requests sent on a pooled connection
  Gauge idle_connections;      // in this worker's pools
};

struct ClusterStats {
  ClusterStats(std::string name, int workers);
  std::string name;
  std::unique_ptr<ClusterCell[]> cells;
  TrafficStats traffic;  // the requests routed to the cluster, as TrafficStats
  ClusterCell& Cell(int worker) { return cells[worker]; }
};

struct alignas(64) ServerCell {
  Gauge active_connections;  // downstream
  Counter connections_accepted;
  Counter connections_rejected;  // over limits.max_connections
  Counter requests;              // every request head parsed or rejected
  std::array<Counter, 5> responses;
  Counter parse_errors;   // 4xx/5xx answered before routing
  Counter head_timeouts;  // 408
  Counter no_route;       // 404 from the router
};

// --- snapshots: every worker's cells merged (what a scrape, or the telemetry store, reads) ---

struct HistogramTotals {
  std::array<uint64_t, Histogram::kBuckets> buckets{};  // per bucket, not cumulative
  uint64_t sum_micros = 0;
  uint64_t Count() const;
  void Add(const Histogram& h);
};

struct TrafficTotals {
  std::string name;
  std::string cluster;  // endpoints only
  uint64_t requests = 0;
  int64_t in_flight = 0;
  std::array<uint64_t, 5> responses{};
  std::vector<std::pair<int, uint64_t>> codes;  // ascending; code 0 = other (past the slots)
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  HistogramTotals duration, upstream_connect, upstream_first_byte;
};

struct ClusterTotals {
  TrafficTotals traffic;
  uint64_t upstream_requests = 0;
  std::array<uint64_t, 5> upstream_responses{};
  uint64_t connect_failures = 0;
  uint64_t timeouts = 0;
  uint64_t connections_opened = 0;
  uint64_t connections_reused = 0;
  int64_t idle_connections = 0;
};

struct ServerTotals {
  int64_t active_connections = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;
  uint64_t requests = 0;
  std::array<uint64_t, 5> responses{};
  uint64_t parse_errors = 0;
  uint64_t head_timeouts = 0;
  uint64_t no_route = 0;
};

struct MetricsSnapshot {
  ServerTotals server;
  std::vector<TrafficTotals> routes;     // in registration order
  std::vector<ClusterTotals> clusters;   // in registration order
  std::vector<TrafficTotals> endpoints;  // in registration order (cluster, address)
};

// The process as the kernel sees it (read from /proc at scrape time).
struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};
ProcessStats ReadProcessStats();

// --- Prometheus text exposition (format 0.0.4) -----------------------------------------------

struct Label {
  std::string_view name;
  std::string_view value;
};

// Writes families and samples into `out`. Each family: Family() once, then its samples.
// Used by the registry and by collectors other modules register (AddCollector).
class MetricWriter {
 public:
  explicit MetricWriter(std::string& out) : out_(out) {}
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t v);
  void GaugeSample(std::string_view name, std::initializer_list<Label> labels, int64_t v);
  void DoubleSample(std::string_view name, std::initializer_list<Label> labels, double v);
  // One histogram series: cumulative buckets at the exported bounds (and at `extra_le`, bucket
  // edges in µs, ascending: the SLO latency thresholds) and +Inf, _sum (s), _count. `labels`
  // must not contain "le".
  void HistogramSeries(std::string_view name, std::initializer_list<Label> labels,
                       const HistogramTotals& h, std::span<const uint64_t> extra_le = {});

 private:
  void Begin(std::string_view name, std::initializer_list<Label> labels, std::string_view suffix,
             const Label* extra = nullptr);
  std::string& out_;
};

// The `le` label value of a bucket bound in µs, as /metrics writes it: 2'000'000 -> "2",
// 300'000 -> "0.3", 2'500 -> "0.0025" (exact decimal seconds). What rules must match.
std::string PrometheusLe(uint64_t micros);

// Owns every stats object. Route()/Cluster()/Endpoint() are called at config load (any
// thread, locked); the returned pointers stay valid for the registry's life. Collect() and
// Render() may run concurrently with workers writing their cells.
class Registry {
 public:
  explicit Registry(int workers);
  ~Registry();
  int workers() const { return workers_; }
  RouteStats* Route(std::string_view name);
  ClusterStats* Cluster(std::string_view name);
  TrafficStats* Endpoint(std::string_view cluster, std::string_view address);
  ServerCell& Server(int worker) { return server_[worker]; }
  // The running assessment's secret (admin thread writes, workers read).
  SyntheticKey& synthetic() { return synthetic_; }

  // Calls `f` for every registered route / cluster, under the registry's lock (so `f` must
  // not call Route() or Cluster()). For readers that fold the cells themselves (telemetry).
  void ForEachRoute(const std::function<void(RouteStats&)>& f);
  void ForEachCluster(const std::function<void(ClusterStats&)>& f);
  void ForEachEndpoint(const std::function<void(TrafficStats&)>& f);

  // Which registered series the running config has: the listed ones. Collect() leaves the
  // others out, so a route, cluster or endpoint a reload removed stops being exported. Its
  // objects stay (workers still on the previous snapshot may write to them) and are exported
  // again, counters continuing, if a later config brings the name back. The telemetry store's
  // readers (ForEach*) still see every series: its windows age out by themselves.
  void SetConfigured(std::span<const RouteStats* const> routes,
                     std::span<const ClusterStats* const> clusters,
                     std::span<const TrafficStats* const> endpoints);
  // Extra `le` bounds (µs; bucket edges: see base/latency_buckets.h) of every route's
  // ficus_route_request_duration_seconds: the running config's SLO latency thresholds, so
  // PromQL over /metrics counts them exactly. Set at each config apply.
  void SetRouteLatencyBounds(std::vector<uint64_t> micros);

  // Every worker's cells merged, for the series in the running config.
  MetricsSnapshot Collect() const;

  // Extra families rendered after the built-in ones, in registration order (other modules'
  // counters: health, retries, breakers; the access log's and tracer's own counters). The
  // function runs on the scraping thread and must only read.
  void AddCollector(std::function<void(MetricWriter&)> collector);

  // Prometheus text exposition format 0.0.4 for everything registered, plus process metrics
  // and ficus_build_info.
  std::string RenderPrometheus() const;

 private:
  int workers_;
  mutable std::mutex mu_;  // guards the deques' structure (not the cells) and collectors_
  std::deque<RouteStats> routes_;
  std::deque<ClusterStats> clusters_;
  std::deque<TrafficStats> endpoints_;
  std::vector<std::function<void(MetricWriter&)>> collectors_;
  std::vector<uint64_t> route_latency_bounds_;  // guarded by mu_; ascending, unique
  std::array<ServerCell, kMaxWorkers> server_{};
  SyntheticKey synthetic_;
};

}  // namespace ficus::observe
