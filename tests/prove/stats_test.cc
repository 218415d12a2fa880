// The statistics against known values: scipy's documented Mann-Whitney example, a tied example
// counted by hand, a two-proportion test worked out from its formula, and the bootstrap's
// behaviour on steps whose outcome is clear and on steps at the edge.
#include "prove/internal/stats.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ficus::prove::internal {
namespace {

// scipy.stats.mannwhitneyu docs: males [19, 22, 16, 29, 24] vs females [20, 11, 17, 12]:
// U = 17, asymptotic two-sided p = 0.11134688653314041.
TEST(MannWhitneyTest, ScipyDocumentedExample) {
  RankTest t = MannWhitney({19, 22, 16, 29, 24}, {20, 11, 17, 12});
  EXPECT_DOUBLE_EQ(t.u, 17);
  EXPECT_NEAR(t.p_two_sided, 0.11134688653314041, 1e-12);
  EXPECT_NEAR(t.a_greater, 17.0 / 20, 1e-12);
  EXPECT_LT(t.p_a_greater, t.p_a_less);
  EXPECT_NEAR(t.p_a_greater, t.p_two_sided / 2, 1e-12);
}

// Ties: a = [1,2,2,3,3,3,5], b = [2,3,4,4,6,6]. Counting pairs: U = 9.5; ties (3 twos, 4 threes,
// 2 fours, 2 sixes) give sum(t^3 - t) = 96, var = 42/12 (14 - 96/156), z = -11/sqrt(var).
TEST(MannWhitneyTest, TiesAreCorrected) {
  RankTest t = MannWhitney({1, 2, 2, 3, 3, 3, 5}, {2, 3, 4, 4, 6, 6});
  EXPECT_DOUBLE_EQ(t.u, 9.5);
  const double sd = std::sqrt(42.0 / 12 * (14 - 96.0 / 156));
  EXPECT_NEAR(t.z, -11 / sd, 1e-12);
  EXPECT_NEAR(t.p_two_sided, 0.10803, 1e-4);
  EXPECT_LT(t.p_a_less, 0.06);
}

TEST(MannWhitneyTest, HistogramFormEqualsValues) {
  // Bins 0..3 with values 10, 20, 30, 40.
  const std::vector<uint64_t> a = {3, 1, 0, 2}, b = {0, 2, 4, 1};
  RankTest h = MannWhitney(a, b);
  RankTest v = MannWhitney({10, 10, 10, 20, 40, 40}, {20, 20, 30, 30, 30, 30, 40});
  EXPECT_DOUBLE_EQ(h.u, v.u);
  EXPECT_DOUBLE_EQ(h.p_two_sided, v.p_two_sided);
}

TEST(MannWhitneyTest, DegenerateSamples) {
  EXPECT_EQ(MannWhitney({}, {1.0, 2.0}).p_two_sided, 1);
  RankTest same = MannWhitney({5, 5, 5}, {5, 5});  // all tied: no evidence
  EXPECT_EQ(same.p_two_sided, 1);
  EXPECT_DOUBLE_EQ(same.a_greater, 0.5);
}

TEST(MannWhitneyTest, LargeShiftedSamplesAreSignificant) {
  std::vector<uint64_t> before(100, 0), after(100, 0);
  for (int i = 40; i < 60; ++i) before[i] = 500;
  for (int i = 5; i < 25; ++i) after[i] = 500;
  RankTest t = MannWhitney(after, before);
  EXPECT_LT(t.p_a_less, 1e-12);
  EXPECT_DOUBLE_EQ(t.a_greater, 0);
}

// 30/400 failed before, 12/400 after: pooled p = 42/800, z = -2.853371049746439,
// two-sided p = 0.004325807999583453.
TEST(TwoProportionsTest, WorkedExample) {
  ProportionTest t = TwoProportions(30, 400, 12, 400);
  EXPECT_NEAR(t.z, -2.853371049746439, 1e-12);
  EXPECT_NEAR(t.p_two_sided, 0.004325807999583453, 1e-12);
  EXPECT_NEAR(t.p_b_lower, 0.0021629039997917267, 1e-12);
  EXPECT_GT(t.p_b_higher, 0.99);
}

TEST(TwoProportionsTest, NoFailuresIsNoEvidence) {
  ProportionTest t = TwoProportions(0, 1000, 0, 1000);
  EXPECT_EQ(t.z, 0);
  EXPECT_EQ(t.p_two_sided, 1);
  EXPECT_EQ(TwoProportions(1, 0, 0, 10).p_two_sided, 1);
}

TEST(QuantileTest, BinHoldingTheRank) {
  const std::vector<double> values = {1, 2, 3, 4};
  const std::vector<uint64_t> counts = {50, 40, 9, 1};
  EXPECT_EQ(QuantileOf(counts, values, 0.5), 1);
  EXPECT_EQ(QuantileOf(counts, values, 0.9), 2);
  EXPECT_EQ(QuantileOf(counts, values, 0.99), 3);
  EXPECT_EQ(QuantileOf(counts, values, 1.0), 4);
  EXPECT_EQ(QuantileOf(std::vector<uint64_t>{0, 0, 0, 0}, values, 0.5), 0);
}

// Bins: 10 ms .. 1000 ms in steps of 10 ms; threshold 250 ms.
std::vector<double> Bins() {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i * 10.0);
  return v;
}

StepSample Step(double rate, int fast_bin, int slow_bin, uint64_t slow, uint64_t errors = 0) {
  StepSample s;
  s.rate = rate;
  s.latency.assign(100, 0);
  s.latency[fast_bin] = 2000 - slow;
  s.latency[slow_bin] = slow;
  s.requests = 2000;
  s.errors = errors;
  return s;
}

TEST(BootstrapRateTest, ClearStepsGiveATightInterval) {
  // 100 and 200 req/s far within the threshold, 300 far over it.
  std::vector<StepSample> steps = {Step(100, 2, 3, 10), Step(200, 4, 5, 10),
                                   Step(300, 50, 90, 1000)};
  RateInterval r = BootstrapRate(steps, Bins(), 250, 0.01, 500, 0.95, 1);
  EXPECT_EQ(r.rate, 200);
  EXPECT_EQ(r.low, 200);
  EXPECT_EQ(r.high, 200);
  EXPECT_EQ(r.replicates, 500);
}

TEST(BootstrapRateTest, AStepAtTheEdgeWidensTheInterval) {
  // Step 2's p99 sits on the threshold: 1 % of its requests (20 of 2000) are slow, so half of
  // the replicates see its p99 slow. Step 3's errors sit at the 1 % limit.
  std::vector<StepSample> steps = {Step(100, 2, 3, 0), Step(200, 2, 40, 20),
                                   Step(300, 2, 3, 0, 20)};
  RateInterval r = BootstrapRate(steps, Bins(), 250, 0.01, 1000, 0.95, 7);
  EXPECT_LE(r.low, 100);
  EXPECT_GE(r.high, 200);
  EXPECT_GE(r.rate, r.low);
  EXPECT_LE(r.rate, r.high);
  // Same seed, same interval.
  RateInterval again = BootstrapRate(steps, Bins(), 250, 0.01, 1000, 0.95, 7);
  EXPECT_EQ(again.low, r.low);
  EXPECT_EQ(again.high, r.high);
}

TEST(BootstrapRateTest, FirstStepFailingIsZero) {
  std::vector<StepSample> steps = {Step(100, 50, 90, 1000)};
  RateInterval r = BootstrapRate(steps, Bins(), 250, 0.01, 200, 0.95, 3);
  EXPECT_EQ(r.rate, 0);
  EXPECT_EQ(r.high, 0);
}

}  // namespace
}  // namespace ficus::prove::internal
