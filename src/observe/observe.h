// ficus::observe — metrics with per-worker shards. A worker writes only its own cell (plain
// relaxed loads/stores, no RMW, no lock); a scrape sums the cells of every worker. Stats
// objects are created at config load and never freed, so their addresses stay valid across
// reloads and counters stay monotonic (Prometheus requires it).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ficus::observe {

constexpr int kMaxWorkers = 64;

// A counter written by one thread, read by any. On x86-64 a relaxed load+store is a plain mov.
class Counter {
 public:
  void Add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A gauge written by one thread (its worker's share of a process-wide value).
class Gauge {
 public:
  void Add(int64_t n) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Log-linear histogram of durations in microseconds: each power-of-ten decade from 1 µs to
// 1000 s is split into the buckets {1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k, so any recorded
// value is known within one bucket (<= 50 % relative width) and the decimal bounds Prometheus
// users expect (1ms, 5ms, 10ms, 25ms, 100ms, 250ms, 1s, ...) are exact bucket edges.
// Single writer (its worker), any number of readers.
class Histogram {
 public:
  static constexpr int kDecades = 9;              // 1 µs .. 1000 s
  static constexpr int kPerDecade = 10;
  static constexpr int kBuckets = kDecades * kPerDecade + 1;  // + overflow bucket
  // Upper bound (inclusive, in µs) of bucket i; the last bucket is +Inf.
  static uint64_t UpperBoundMicros(int i);
  static int BucketFor(uint64_t micros);

  void Record(uint64_t micros) {
    buckets_[BucketFor(micros)].Add(1);
    sum_micros_.Add(micros);
  }
  uint64_t Bucket(int i) const { return buckets_[i].Get(); }
  uint64_t SumMicros() const { return sum_micros_.Get(); }
  uint64_t Count() const;

 private:
  std::array<Counter, kBuckets> buckets_{};
  Counter sum_micros_;
};

// Status classes 1xx..5xx -> 0..4.
inline int StatusClassIndex(int status) {
  int c = status / 100 - 1;
  return c < 0 ? 0 : (c > 4 ? 4 : c);
}

struct alignas(64) RouteCell {
  Counter requests;
  std::array<Counter, 5> responses;  // by status class
  Counter request_bytes;             // body bytes received from the client
  Counter response_bytes;            // body bytes sent to the client
  Histogram duration;                // request start -> response complete
};

struct RouteStats {
  std::string name;
  std::array<RouteCell, kMaxWorkers> cells;
  RouteCell& Cell(int worker) { return cells[worker]; }
};

struct alignas(64) ClusterCell {
  Counter requests;                   // upstream attempts
  std::array<Counter, 5> responses;   // by status class of the upstream response
  Counter connect_failures;
  Counter timeouts;                   // upstream response timeouts
  Counter connections_opened;
  Counter connections_reused;         // requests sent on a pooled connection
  Gauge idle_connections;             // in this worker's pools
};

struct ClusterStats {
  std::string name;
  std::array<ClusterCell, kMaxWorkers> cells;
  ClusterCell& Cell(int worker) { return cells[worker]; }
};

struct alignas(64) ServerCell {
  Gauge active_connections;        // downstream
  Counter connections_accepted;
  Counter connections_rejected;    // over limits.max_connections
  Counter requests;                // every request head parsed or rejected
  std::array<Counter, 5> responses;
  Counter parse_errors;            // 4xx/5xx answered before routing
  Counter head_timeouts;           // 408
  Counter no_route;                // 404 from the router
};

// Owns every stats object. Route()/Cluster() are called at config load (any thread, locked);
// the returned pointers stay valid for the registry's life. Render() may run concurrently
// with workers writing their cells.
class Registry {
 public:
  explicit Registry(int workers);
  int workers() const { return workers_; }
  RouteStats* Route(std::string_view name);
  ClusterStats* Cluster(std::string_view name);
  ServerCell& Server(int worker) { return server_[worker]; }

  // Prometheus text exposition format 0.0.4 for everything registered.
  std::string RenderPrometheus() const;

 private:
  int workers_;
  mutable std::mutex mu_;  // guards the two deques' structure (not the cells)
  std::deque<RouteStats> routes_;
  std::deque<ClusterStats> clusters_;
  std::array<ServerCell, kMaxWorkers> server_{};
};

}  // namespace ficus::observe
