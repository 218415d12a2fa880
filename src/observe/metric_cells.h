// Per-worker metric cells: counters, gauges and the latency histogram. A worker writes only its
// own cell (relaxed loads/stores, no RMW); readers merge every worker's cells. Part of observe.h,
// the module's interface; include that.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

#include "base/latency_buckets.h"

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
  static constexpr int kDecades = latency_buckets::kDecades;  // 1 µs .. 1000 s
  static constexpr int kPerDecade = latency_buckets::kPerDecade;
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

  void Record(uint64_t micros) { RecordInBucket(BucketFor(micros), micros); }
  // For one value recorded in several histograms: the bucket is computed once by the caller.
  // REQUIRES: bucket == BucketFor(micros).
  void RecordInBucket(int bucket, uint64_t micros) {
    buckets_[bucket].Add(1);
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
// The layout's tables live in base (the config reader checks SLO thresholds against them).
using latency_buckets::kDecadeBounds;
using latency_buckets::kPow10;
using latency_buckets::kTwiceMantissa;
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

}  // namespace ficus::observe
