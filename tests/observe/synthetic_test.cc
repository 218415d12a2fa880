// SyntheticKey: the running `ficus assess` secret the proxy matches X-Ficus-Synthetic against.
#include <gtest/gtest.h>

#include "observe/observe.h"

namespace ficus::observe {
namespace {

constexpr std::string_view kKey = "00112233445566778899aabbccddeeff";

TEST(SyntheticKeyTest, MatchesOnlyTheRegisteredKeyBeforeItExpires) {
  SyntheticKey k;
  EXPECT_FALSE(k.Matches(kKey, 0));  // nothing registered
  EXPECT_FALSE(k.active(0));
  ASSERT_TRUE(k.Set(kKey, 1000));
  EXPECT_TRUE(k.active(999));
  EXPECT_TRUE(k.Matches(kKey, 999));
  EXPECT_TRUE(k.Matches("00112233445566778899AABBCCDDEEFF", 999));  // hex digits, any case
  EXPECT_FALSE(k.Matches(kKey, 1000));                              // expired
  EXPECT_FALSE(k.Matches("00112233445566778899aabbccddeefe", 5));   // last digit differs
  EXPECT_FALSE(k.Matches("10112233445566778899aabbccddeeff", 5));   // first digit differs
  EXPECT_FALSE(k.Matches("00112233445566778899aabbccddeef", 5));    // too short
  EXPECT_FALSE(k.Matches("00112233445566778899aabbccddeeff0", 5));  // too long
  EXPECT_FALSE(k.Matches("", 5));
  k.Clear();
  EXPECT_FALSE(k.Matches(kKey, 5));
}

TEST(SyntheticKeyTest, RefusesAnythingButThirtyTwoHexDigits) {
  SyntheticKey k;
  EXPECT_FALSE(k.Set("short", 1000));
  EXPECT_FALSE(k.Set("00112233445566778899aabbccddeefg", 1000));
  EXPECT_FALSE(k.Set("", 1000));
  EXPECT_FALSE(k.active(0));
  // An all-zero key is a key like any other, but a request cannot match before it is set.
  EXPECT_FALSE(k.Matches("00000000000000000000000000000000", 0));
  ASSERT_TRUE(k.Set("00000000000000000000000000000000", 10));
  EXPECT_TRUE(k.Matches("00000000000000000000000000000000", 0));
}

}  // namespace
}  // namespace ficus::observe
