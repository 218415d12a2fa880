// The bucket edges of ficus's latency histogram (observe::Histogram): {1.5, 2, 2.5, 3, 4, 5, 6,
// 7, 8, 10} x 10^k µs for k = 0..8. Here, in base, so the config reader can check that an SLO
// latency threshold is one of them (then /metrics, the SLO engine and the exported Prometheus
// rules all count it exactly) without depending on observe.
#pragma once

#include <array>
#include <cstdint>

namespace ficus::latency_buckets {

inline constexpr int kDecades = 9;  // 1 µs .. 1000 s
inline constexpr int kPerDecade = 10;

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
inline constexpr int kTwiceMantissa[kPerDecade] = {3, 4, 5, 6, 8, 10, 12, 14, 16, 20};

// kDecadeBounds[k][j]: the upper bound (µs) of bucket 10 * k + j for the first nine buckets of
// decade k (the tenth is 10^(k+1), implied by the decade itself).
inline constexpr auto kDecadeBounds = [] {
  std::array<std::array<uint64_t, kPerDecade - 1>, kDecades> t{};
  for (int k = 0; k < kDecades; ++k) {
    for (int j = 0; j < kPerDecade - 1; ++j) {
      t[k][j] = kTwiceMantissa[j] * kPow10[k] / 2;
    }
  }
  return t;
}();

// The upper bound of finite bucket i (0 <= i < kDecades * kPerDecade) in µs; the two
// fractional ones (1.5 µs, 2.5 µs) rounded down, which classifies every integer exactly.
constexpr uint64_t EdgeMicros(int i) {
  return kTwiceMantissa[i % kPerDecade] * kPow10[i / kPerDecade] / 2;
}

// Whether `micros` (>= 10) is exactly a bucket edge, e.g. 250'000 (250 ms) or 2'000'000 (2 s),
// not 350'000. Below 10 µs the rounded fractional edges make the question moot.
constexpr bool IsEdgeMicros(uint64_t micros) {
  for (int i = 0; i < kDecades * kPerDecade; ++i) {
    if (EdgeMicros(i) == micros) return true;
  }
  return false;
}

}  // namespace ficus::latency_buckets
