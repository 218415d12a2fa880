#include "base/base.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ficus {
namespace {

Result<int> Half(int n) {
  if (n % 2 != 0) return Fail(ErrorKind::kBadRequest, Side::kDownstream, "odd");
  return n / 2;
}

TEST(ResultTest, HoldsValueOrError) {
  auto ok = Half(4);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kBadRequest);
  EXPECT_EQ(bad.error().side, Side::kDownstream);
  EXPECT_STREQ(bad.error().context, "odd");
}

TEST(ResultTest, NonTrivialValuesAreCopiedMovedAndDestroyed) {
  auto counter = std::make_shared<int>(0);
  {
    Result<std::shared_ptr<int>> a = counter;
    EXPECT_EQ(counter.use_count(), 2);
    Result<std::shared_ptr<int>> b = a;
    EXPECT_EQ(counter.use_count(), 3);
    Result<std::shared_ptr<int>> c = std::move(b);
    EXPECT_EQ(counter.use_count(), 3);
    c = Result<std::shared_ptr<int>>(Fail(ErrorKind::kInternal, Side::kInternal, "x"));
    EXPECT_EQ(counter.use_count(), 2);
  }
  EXPECT_EQ(counter.use_count(), 1);
}

TEST(ResultTest, ConvertsFromCompatibleValues) {
  Result<std::string> s = "text";
  EXPECT_EQ(*s, "text");
  Status ok;
  EXPECT_TRUE(ok);
  Status failed = Fail(ErrorKind::kConfig, Side::kInternal, "bad");
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, ErrorKind::kConfig);
}

TEST(ErrorKindTest, EveryKindHasAName) {
  for (int k = 0; k <= static_cast<int>(ErrorKind::kConfig); ++k) {
    EXPECT_NE(ErrorKindName(static_cast<ErrorKind>(k)), "unknown") << k;
  }
}

TEST(ClockTest, MonotonicClocksAdvance) {
  int64_t a = MonotonicNanos();
  int64_t b = MonotonicNanos();
  EXPECT_LE(a, b);
  EXPECT_GT(CoarseMonotonicMillis(), 0);
  EXPECT_GT(WallMicros(), 1'600'000'000'000'000);
}

}  // namespace
}  // namespace ficus
