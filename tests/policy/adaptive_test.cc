// The adaptive concurrency controller's windows: shrink under rising latency, recover after,
// keep the limit on an empty window and when traffic never used it.
#include "policy/internal/adaptive.h"

#include <gtest/gtest.h>

namespace ficus::policy::internal {
namespace {

constexpr int64_t kMs = 1'000'000;

config::AdaptiveConcurrency Config() {
  config::AdaptiveConcurrency c;
  c.min_limit = 4;
  c.max_limit = 200;
  c.initial_limit = 50;
  return c;
}

// One window of `n` samples of `rtt`, the limit fully used.
void Window(AdaptiveLimiter& a, int64_t rtt, int64_t n = 100) {
  a.UpdateForTest(rtt * n, n, a.limit());
}

TEST(Adaptive, GrowsWhileLatencyHolds) {
  AdaptiveLimiter a(Config());
  for (int i = 0; i < 30; ++i) Window(a, 10 * kMs);
  EXPECT_GT(a.limit(), 50);
  EXPECT_LE(a.limit(), 200);
}

TEST(Adaptive, ShrinksUnderOverloadThenRecovers) {
  AdaptiveLimiter a(Config());
  for (int i = 0; i < 10; ++i) Window(a, 10 * kMs);
  const int64_t before = a.limit();
  for (int i = 0; i < 15; ++i) Window(a, 60 * kMs);  // 6x the RTT: overload
  const int64_t low = a.limit();
  EXPECT_LT(low, before / 2);
  EXPECT_GE(low, 4);
  for (int i = 0; i < 60; ++i) Window(a, 10 * kMs);  // over: the limit comes back
  EXPECT_GT(a.limit(), before);
  EXPECT_LT(a.long_rtt_ns(), 20.0 * kMs);  // the overload is being forgotten
}

TEST(Adaptive, AnEmptyWindowOrAnIdleClusterChangesNothing) {
  AdaptiveLimiter a(Config());
  for (int i = 0; i < 5; ++i) Window(a, 10 * kMs);
  const int64_t limit = a.limit();
  for (int i = 0; i < 50; ++i) a.UpdateForTest(0, 0, 0);
  EXPECT_EQ(a.limit(), limit);
  for (int i = 0; i < 50; ++i) a.UpdateForTest(100 * 10 * kMs, 100, 2);  // app-limited
  EXPECT_EQ(a.limit(), limit);
}

TEST(Adaptive, ClassesShareTheLimit) {
  config::AdaptiveConcurrency c = Config();
  c.initial_limit = 10;
  AdaptiveLimiter a(c);
  int sheddable = 0;
  while (a.TryAcquire(config::PriorityClass::kSheddable)) ++sheddable;
  EXPECT_EQ(sheddable, 8);
  int critical = 0;
  while (a.TryAcquire(config::PriorityClass::kCritical)) ++critical;
  EXPECT_EQ(critical, 2);
  EXPECT_EQ(a.rejected[2].load(), 1u);
  for (int i = 0; i < 10; ++i) a.Release(10 * kMs, 0);
  EXPECT_EQ(a.in_flight(), 0);
}

}  // namespace
}  // namespace ficus::policy::internal
