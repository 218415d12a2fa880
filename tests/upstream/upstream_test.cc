#include "upstream/upstream.h"

#include <gtest/gtest.h>

#include <map>

namespace ficus::upstream {
namespace {

TEST(WeightedRoundRobinTest, EqualWeightsCycle) {
  WeightedRoundRobin rr({1, 1, 1});
  EXPECT_EQ(rr.Pick(), 0u);
  EXPECT_EQ(rr.Pick(), 1u);
  EXPECT_EQ(rr.Pick(), 2u);
  EXPECT_EQ(rr.Pick(), 0u);
}

TEST(WeightedRoundRobinTest, WeightsAreExactPerWindowAndSmooth) {
  WeightedRoundRobin rr({5, 1, 1});
  std::map<size_t, int> counts;
  std::string order;
  for (int i = 0; i < 7; ++i) {
    size_t p = rr.Pick();
    ++counts[p];
    order += static_cast<char>('a' + p);
  }
  EXPECT_EQ(counts[0], 5);
  EXPECT_EQ(counts[1], 1);
  EXPECT_EQ(counts[2], 1);
  EXPECT_EQ(order, "aabacaa");  // nginx's smooth sequence, not "aaaaabc"
}

TEST(EndpointPoolTest, TakesMostRecentAndExpiresOld) {
  EndpointPool pool;
  auto a = std::make_unique<Connection>(0);
  auto b = std::make_unique<Connection>(0);
  Connection* pb = b.get();
  pool.Put(std::move(a), /*now_ms=*/1000, /*max_idle=*/8);
  pool.Put(std::move(b), 2000, 8);
  EXPECT_EQ(pool.size(), 2u);
  auto got = pool.Take(2500, /*idle_timeout_ms=*/4000);
  EXPECT_EQ(got.get(), pb);  // LIFO: the warmest socket
  EXPECT_EQ(pool.CloseExpired(6000, 4000), 1u);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(EndpointPoolTest, RespectsMaxIdleAndSkipsExpiredOnTake) {
  EndpointPool pool;
  pool.Put(std::make_unique<Connection>(0), 0, 1);
  pool.Put(std::make_unique<Connection>(0), 0, 1);  // over max_idle: closed
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(pool.Take(10'000, 4000), nullptr);  // expired
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace
}  // namespace ficus::upstream
