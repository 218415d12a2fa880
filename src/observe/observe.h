// ficus::observe — metrics with per-worker shards. A worker writes only its own cell (plain
// relaxed loads/stores, no RMW, no lock); a scrape sums the cells of every worker. Stats
// objects are created at config load and never freed, so their addresses stay valid across
// reloads and counters stay monotonic (Prometheus requires it).
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace ficus::observe {

constexpr int kMaxWorkers = 64;

// A counter written by one thread, read by any. On x86-64 a relaxed load+store is a plain mov.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A gauge written by one thread (its worker's share of a process-wide value).
class Gauge {
 public:
  void Add(int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Log-linear histogram of durations in microseconds: each power-of-ten decade from 1 µs to
// 1000 s is split into the buckets {1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k, so any recorded
// value is known within one bucket (<= 50 % relative width) and the decimal bounds Prometheus
// users expect (1ms, 5ms, 10ms, 25ms, 100ms, 250ms, 1s, ...) are exact bucket edges.
// Single writer (its worker), any number of readers.
//
// Bucket 10*k + j (k = 0..8, j = 0..9) covers (lo, hi] with hi = {1.5, 2, 2.5, 3, 4, 5, 6, 7,
// 8, 10}[j] x 10^k µs, Prometheus `le` semantics; bucket 0 also takes 0 and 1 µs, bucket 89
// ends at exactly 1000 s and bucket 90 is everything above (+Inf).
class Histogram {
 public:
  static constexpr int kDecades = 9;  // 1 µs .. 1000 s
  static constexpr int kPerDecade = 10;
  static constexpr int kBuckets = kDecades * kPerDecade + 1;  // + overflow bucket
  // Upper bound (inclusive, in µs) of bucket i; the last bucket is +Inf (UINT64_MAX). Values
  // are whole microseconds, so the two fractional bounds (1.5 µs and 2.5 µs) are given rounded
  // down (1 and 2), which classifies every integer exactly. REQUIRES: 0 <= i < kBuckets.
  static uint64_t UpperBoundMicros(int i);
  // The exact upper bound of bucket i in seconds (1.5e-6, 2e-6, ...); +Inf for the last.
  static double UpperBoundSeconds(int i);
  // The smallest i with micros <= UpperBoundMicros(i). A few integer operations, no division
  // and no floating point (bench/observe_bench.cc).
  static constexpr int BucketFor(uint64_t micros);

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

namespace internal {
// 10^0 .. 10^19 (all that fit in uint64_t).
inline constexpr auto kPow10 = [] {
  std::array<uint64_t, 20> p{};
  uint64_t v = 1;
  for (uint64_t& x : p) {
    x = v;
    v *= 10;  // wraps (defined for unsigned) after the last element; never used
  }
  return p;
}();
// Twice the bucket upper bounds of one decade, in units of 10^k: integers, unlike 1.5 and 2.5.
inline constexpr int kTwiceMantissa[Histogram::kPerDecade] = {3, 4, 5, 6, 8, 10, 12, 14, 16, 20};
// kDecadeBounds[k][j]: UpperBoundMicros(10 * k + j) for the first nine buckets of decade k
// (the tenth is 10^(k+1), implied by the decade itself).
inline constexpr auto kDecadeBounds = [] {
  std::array<std::array<uint64_t, Histogram::kPerDecade - 1>, Histogram::kDecades> t{};
  for (int k = 0; k < Histogram::kDecades; ++k) {
    for (int j = 0; j < Histogram::kPerDecade - 1; ++j) {
      t[k][j] = kTwiceMantissa[j] * kPow10[k] / 2;
    }
  }
  return t;
}();
}  // namespace internal

constexpr int Histogram::BucketFor(uint64_t micros) {
  if (micros > internal::kPow10[kDecades]) [[unlikely]] {
    return kBuckets - 1;  // over 1000 s
  }
  // Decade k holds (10^k, 10^(k+1)] µs, so k = floor(log10(micros - 1)) (0 for 0 and 1 µs).
  // `| 1` keeps x >= 1 and never changes its digit count (10^n - 1 is odd). floor(log10) from
  // the bit width: 1233 / 4096 ~ log10(2), corrected by one power-of-ten comparison.
  uint64_t x = (micros - (micros != 0)) | 1;
  int t = (std::bit_width(x) * 1233) >> 12;
  int k = t - (x < internal::kPow10[t]);
  // Within the decade: count the bounds below micros. Nine independent compares, written out
  // because g++ -O2 does not unroll the loop form (measured slower).
  const auto& b = internal::kDecadeBounds[k];
  int j = (b[0] < micros) + (b[1] < micros) + (b[2] < micros) + (b[3] < micros) + (b[4] < micros) +
          (b[5] < micros) + (b[6] < micros) + (b[7] < micros) + (b[8] < micros);
  return k * kPerDecade + j;
}

// Status classes 1xx..5xx -> 0..4.
inline int StatusClassIndex(int status) {
  int c = status / 100 - 1;
  return c < 0 ? 0 : (c > 4 ? 4 : c);
}

// A HyperLogLog register set (2^10 registers, ~3.3 % standard error) of the clients seen, for
// the telemetry store's distinct-client estimate. Single writer (its worker): a register is
// raised with a relaxed load and store, no RMW. The reader (the telemetry thread) takes and
// zeroes the registers every interval; a raise that lands between the reader's load and its
// zeroing is lost for that interval, an error far inside the sketch's own.
class ClientSketch {
 public:
  static constexpr int kPrecision = 10;
  static constexpr int kRegisters = 1 << kPrecision;
  // `hash`: a well-mixed 64-bit hash of the client (HashClient).
  void Add(uint64_t hash) {
    const uint32_t index = static_cast<uint32_t>(hash >> (64 - kPrecision));
    // Rank = position of the first 1 bit after the index bits (1-based); the sentinel bit
    // bounds it at 64 - kPrecision + 1.
    const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
    const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
    if (registers_[index].load(std::memory_order_relaxed) < rank) {
      registers_[index].store(rank, std::memory_order_relaxed);
    }
  }
  uint8_t Register(int i) const { return registers_[i].load(std::memory_order_relaxed); }
  // Reader side: the register's value, then zero.
  uint8_t Take(int i) {
    uint8_t v = registers_[i].load(std::memory_order_relaxed);
    if (v != 0) registers_[i].store(0, std::memory_order_relaxed);
    return v;
  }

 private:
  std::array<std::atomic<uint8_t>, kRegisters> registers_{};
};

// A 64-bit hash of a client address (its text), mixed well enough for ClientSketch.
uint64_t HashClient(std::string_view address);

struct alignas(64) RouteCell {
  Counter requests;
  std::array<Counter, 5> responses;  // by status class
  Counter request_bytes;             // body bytes received from the client
  Counter response_bytes;            // body bytes sent to the client
  Histogram duration;                // request start -> response complete
  ClientSketch clients;              // distinct client addresses (telemetry)
};

struct RouteStats {
  std::string name;
  std::array<RouteCell, kMaxWorkers> cells;
  RouteCell& Cell(int worker) { return cells[worker]; }
};

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
  std::string name;
  std::array<ClusterCell, kMaxWorkers> cells;
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

  // Calls `f` for every registered route / cluster, under the registry's lock (so `f` must
  // not call Route() or Cluster()). For readers that fold the cells themselves (telemetry).
  void ForEachRoute(const std::function<void(RouteStats&)>& f);
  void ForEachCluster(const std::function<void(ClusterStats&)>& f);

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
