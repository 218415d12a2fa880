#include "base/outcome.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace ficus {
namespace {

Outcome<int> Half(int n) {
  if (n % 2 != 0) return Failed(std::to_string(n) + " is odd");
  return n / 2;
}

TEST(OutcomeTest, HoldsAValueOrAnOwnedMessage) {
  Outcome<int> ok = Half(8);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 4);
  EXPECT_EQ(ok.message(), "");
  Outcome<int> odd = Half(7);
  EXPECT_FALSE(odd.ok());
  EXPECT_EQ(odd.message(), "7 is odd");
}

TEST(OutcomeTest, MovesOutMoveOnlyValues) {
  Outcome<std::unique_ptr<int>> p = std::make_unique<int>(3);
  ASSERT_TRUE(p);
  std::unique_ptr<int> taken = std::move(p).value();
  EXPECT_EQ(*taken, 3);
  Outcome<std::string> s = "text";
  EXPECT_EQ(s->size(), 4u);
}

TEST(OutcomeTest, VoidIsOkUnlessFailed) {
  Outcome<> done;
  EXPECT_TRUE(done);
  Outcome<> failed = Failed("cannot listen");
  EXPECT_FALSE(failed);
  EXPECT_EQ(failed.message(), "cannot listen");
}

}  // namespace
}  // namespace ficus
