// RetryBudget: retries as a rate over a sliding window, with a floor, and connect-failure
// retries allowed beyond the ratio up to the floor.
#include "upstream/internal/retry_budget.h"

#include <gtest/gtest.h>

namespace ficus::upstream {
namespace {

config::RetryPolicy Policy(double ratio, uint32_t per_second, int64_t window_ms = 10'000) {
  config::RetryPolicy p;
  p.max_tries = 3;
  p.budget_ratio = ratio;
  p.budget_min_per_second = per_second;
  p.budget_window = config::Duration{window_ms};
  return p;
}

int Drain(RetryBudget& b, bool connect_failure) {
  int n = 0;
  while (n < 1'000'000 && b.TryRetry(connect_failure)) ++n;
  return n;
}

TEST(RetryBudgetTest, RatioOfTheWindowsRequestsPlusTheFloor) {
  RetryBudget b(Policy(0.2, 1), 0);
  for (int i = 0; i < 100; ++i) b.RequestStarted();
  EXPECT_EQ(b.requests(), 100u);
  EXPECT_DOUBLE_EQ(b.allowed(), 30.0);  // 0.2 x 100 + 1/s x 10 s
  EXPECT_EQ(Drain(b, false), 30);
  // Connect failures may go beyond the ratio, up to the floor again.
  EXPECT_EQ(Drain(b, true), 10);
  EXPECT_FALSE(b.TryRetry(false));
  EXPECT_EQ(b.retries(), 30u);
  EXPECT_EQ(b.connect_retries_beyond_ratio(), 10u);
}

TEST(RetryBudgetTest, ABurstOfFailuresInSteadyTrafficIsAllRetried) {
  // 1,000 requests a second for 10 s, then 20 requests in flight fail together (an endpoint
  // died): all 20 are retried, whatever the concurrency.
  RetryBudget b(Policy(0.2, 10), 0);
  for (int64_t ms = 0; ms < 10'000; ++ms) {
    b.Advance(ms);
    b.RequestStarted();
  }
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(b.TryRetry(false)) << i;
}

TEST(RetryBudgetTest, AStormIsCappedAtTheRatio) {
  // Every request fails and wants 2 retries: over 30 s, retries stay within 20 % of requests
  // plus the floor of each window.
  RetryBudget b(Policy(0.2, 10), 0);
  uint64_t requests = 0, retries = 0;
  for (int64_t ms = 0; ms < 30'000; ++ms) {
    b.Advance(ms);
    b.RequestStarted();
    ++requests;
    for (int k = 0; k < 2; ++k) retries += b.TryRetry(false) ? 1 : 0;
    if (ms % 1000 == 999) {
      EXPECT_LE(static_cast<double>(b.retries()), b.allowed()) << ms;
    }
  }
  // Three windows: at most 0.2 x requests + 3 x 100.
  EXPECT_LE(retries, requests / 5 + 300);
  EXPECT_GE(retries, requests / 5);
}

TEST(RetryBudgetTest, TheWindowSlidesOldRequestsOut) {
  RetryBudget b(Policy(0.5, 0, 1000), 0);  // slots of 100 ms
  for (int i = 0; i < 100; ++i) b.RequestStarted();
  b.Advance(500);
  for (int i = 0; i < 100; ++i) b.RequestStarted();
  EXPECT_EQ(b.requests(), 200u);
  b.Advance(1000);  // the first slot left the window
  EXPECT_EQ(b.requests(), 100u);
  EXPECT_EQ(Drain(b, false), 50);
  b.Advance(1600);  // the second hundred left too; the retries (taken at 1000) have not
  EXPECT_EQ(b.requests(), 0u);
  EXPECT_EQ(b.retries(), 50u);
  EXPECT_FALSE(b.TryRetry(false));
  EXPECT_FALSE(b.TryRetry(true));  // no floor configured
  b.Advance(1'000'000);            // long idle: everything forgotten
  for (int i = 0; i < 10; ++i) b.RequestStarted();
  EXPECT_EQ(b.requests(), 10u);
}

TEST(RetryBudgetTest, TheFloorAloneAllowsRetriesWithoutTraffic) {
  RetryBudget b(Policy(0.2, 3, 2000), 0);
  EXPECT_EQ(Drain(b, false), 6);  // 3/s x 2 s
}

}  // namespace
}  // namespace ficus::upstream
