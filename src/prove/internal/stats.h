// The statistics `ficus prove` decides with: a rank test on latency samples (Mann-Whitney U),
// a two-proportion z-test on error counts, and a bootstrap interval on the sustainable rate of
// a step load. Plain functions over counts, so they take load histograms without copying
// samples and can be checked against textbook values.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ficus::prove::internal {

// Mann-Whitney U of sample a against sample b, normal approximation with the tie correction
// and a continuity correction (as scipy.stats.mannwhitneyu(method="asymptotic")).
struct RankTest {
  double u = 0;            // pairs with a > b, ties counting one half (scipy's U1 for x = a)
  double z = 0;            // (u - mean) / sd, continuity-corrected towards 0
  double p_two_sided = 1;  // H1: the distributions differ
  double p_a_less = 1;     // H1: a tends to be smaller than b (one-sided)
  double p_a_greater = 1;  // H1: a tends to be larger than b (one-sided)
  double a_greater = 0.5;  // u / (n_a n_b): P(a > b) + P(a = b) / 2 (Vargha-Delaney A)
  uint64_t n_a = 0, n_b = 0;
};
// Two samples as counts over the same ordered bins (bin i holds values smaller than bin i+1's;
// equal values share a bin and tie): two latency histograms of one layout.
// REQUIRES: a.size() == b.size().
RankTest MannWhitney(std::span<const uint64_t> a, std::span<const uint64_t> b);
// Two samples as values.
RankTest MannWhitney(std::vector<double> a, std::vector<double> b);

// x_a failures of n_a against x_b of n_b: pooled two-proportion z-test.
struct ProportionTest {
  double ratio_a = 0, ratio_b = 0;
  double z = 0;            // (ratio_b - ratio_a) / pooled standard error; 0 when undefined
  double p_two_sided = 1;  // H1: the ratios differ
  double p_b_lower = 1;    // H1: b's ratio is lower than a's (one-sided)
  double p_b_higher = 1;   // H1: b's ratio is higher than a's (one-sided)
};
ProportionTest TwoProportions(uint64_t x_a, uint64_t n_a, uint64_t x_b, uint64_t n_b);

// One step of a step load, as the bootstrap resamples it.
struct StepSample {
  double rate = 0;                // the step's target req/s
  std::vector<uint64_t> latency;  // counts per bin (the bins' values are given apart)
  uint64_t requests = 0;          // scheduled
  uint64_t errors = 0;            // failed or dropped of those
};
// The sustainable rate: the highest step rate before the first step whose p99 is over
// `threshold` or whose error ratio reaches `max_error_ratio` (steps in increasing rate order;
// 0 when the first fails), with a percentile bootstrap interval: each replicate redraws every
// step's latencies (multinomially over its bins) and errors (binomially), and finds the rate
// again. `bin_values[i]` is the value of bin i (the unit of `threshold`).
struct RateInterval {
  double rate = 0;  // from the measured steps
  double low = 0, high = 0;
  int replicates = 0;
};
RateInterval BootstrapRate(const std::vector<StepSample>& steps, std::span<const double> bin_values,
                           double threshold, double max_error_ratio, int replicates,
                           double confidence, uint64_t seed);

// The quantile q of counts over bins: the value of the bin holding the ceil(q * n)-th
// smallest; 0 when empty.
double QuantileOf(std::span<const uint64_t> counts, std::span<const double> bin_values, double q);

// The standard normal distribution function.
double NormalCdf(double z);

}  // namespace ficus::prove::internal
