// The decision on made-up phases: a clear improvement is better, a clear regression worse,
// the same distribution inconclusive; the sustainable rate counts only beyond its intervals.
#include "prove/internal/decide.h"

#include <gtest/gtest.h>

#include <random>

namespace ficus::prove::internal {
namespace {

// A step whose latencies are drawn around `ms` (lognormal, 30 % spread), `errors` failed.
StepResult Step(double rate, double ms, uint64_t n, uint64_t errors, double threshold, int seed) {
  StepResult s;
  s.rate = rate;
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  std::lognormal_distribution<double> d(std::log(ms), 0.3);
  for (uint64_t i = 0; i < n; ++i) s.latency.Record(static_cast<int64_t>(d(rng) * 1e6));
  s.requests = n;
  s.errors = errors;
  s.p99_ms = static_cast<double>(s.latency.Percentile(0.99)) / 1e6;
  s.ok = s.p99_ms <= threshold && static_cast<double>(errors) / n < kMaxErrorRatio;
  return s;
}

Phase Steps(std::vector<std::tuple<double, double, uint64_t>> steps, double threshold, int seed) {
  Phase p;
  for (auto [rate, ms, errors] : steps) {
    p.steps.push_back(Step(rate, ms, static_cast<uint64_t>(rate * 3), errors, threshold, seed++));
    if (!p.steps.back().ok) break;
  }
  return p;
}

DecideParams Params() {
  DecideParams p;
  p.threshold_ms = 250;
  p.replicates = 300;
  return p;
}

TEST(DecideTest, MuchFasterIsBetter) {
  Phase before = Steps({{50, 40, 0}, {100, 60, 0}, {150, 200, 0}, {200, 400, 0}}, 250, 1);
  Phase after = Steps({{50, 2, 0}, {100, 2, 0}, {150, 2, 0}, {200, 2, 0}}, 250, 10);
  Verdict v = Decide(before, after, Params());
  EXPECT_EQ(v.outcome, "better") << v.why;
  EXPECT_LT(v.p_latency, 1e-6);
  EXPECT_NE(v.why.find("latency lower"), std::string::npos) << v.why;
  EXPECT_NE(v.why.find("sustainable rate higher"), std::string::npos) << v.why;
  EXPECT_TRUE(v.after.rate_bounded);
  EXPECT_EQ(v.after.rate, 200);
  EXPECT_LT(v.after.p99_ms, v.before.p99_ms / 2);
}

TEST(DecideTest, TheSameDistributionIsInconclusive) {
  Phase before = Steps({{50, 20, 0}, {100, 20, 0}, {150, 20, 0}}, 250, 1);
  Phase after = Steps({{50, 20, 0}, {100, 20, 0}, {150, 20, 0}}, 250, 100);
  Verdict v = Decide(before, after, Params());
  EXPECT_EQ(v.outcome, "inconclusive") << v.why;
}

TEST(DecideTest, FewerErrorsIsBetterAndMoreIsWorse) {
  Phase before = Steps({{200, 50, 60}}, 250, 1);  // 10 % errors at the first step
  Phase after = Steps({{200, 50, 0}}, 250, 5);
  Verdict v = Decide(before, after, Params());
  EXPECT_EQ(v.outcome, "better") << v.why;
  EXPECT_NE(v.why.find("errors lower"), std::string::npos) << v.why;
  Verdict w = Decide(after, before, Params());
  EXPECT_EQ(w.outcome, "worse") << w.why;
}

TEST(DecideTest, SlowerWithinTheTargetIsNotWorse) {
  // A concurrency limit's queueing: slower, still within 250 ms, and no errors instead of 5 %.
  Phase before = Steps({{100, 50, 15}}, 250, 1);
  Phase after = Steps({{100, 90, 0}}, 250, 2);
  Verdict v = Decide(before, after, Params());
  EXPECT_EQ(v.outcome, "better") << v.why;
  // Over the target it is worse.
  Phase slow = Steps({{100, 400, 0}}, 250, 3);
  EXPECT_EQ(Decide(before, slow, Params()).outcome, "worse");
}

TEST(DecideTest, AConstantLoadHasNoRate) {
  DecideParams p = Params();
  p.step_load = false;
  Phase before = Steps({{100, 300, 0}}, 250, 1);
  Phase after = Steps({{100, 20, 0}}, 250, 2);
  Verdict v = Decide(before, after, p);
  EXPECT_EQ(v.outcome, "better");
  EXPECT_EQ(v.why.find("sustainable"), std::string::npos);
  EXPECT_EQ(v.after.rate, 0);
}

}  // namespace
}  // namespace ficus::prove::internal
