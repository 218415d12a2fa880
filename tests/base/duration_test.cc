#include "base/duration.h"

#include <gtest/gtest.h>

namespace ficus {
namespace {

TEST(ParseDurationNs, UnitsAndSegments) {
  const std::pair<const char*, int64_t> cases[] = {
      {"0", 0},
      {"0s", 0},
      {"7ns", 7},
      {"500us", 500'000},
      {"500\xC2\xB5s", 500'000},
      {"250ms", 250'000'000},
      {"1.5s", 1'500'000'000},
      {"2m", 120'000'000'000},
      {"1h30m", 5'400'000'000'000},
      {"1d", 86'400'000'000'000},
      {"1m30s250ms", 90'250'000'000},
      {"0.000000001s", 1},
  };
  for (const auto& [text, ns] : cases) {
    std::string error;
    std::optional<int64_t> d = ParseDurationNs(text, &error);
    ASSERT_TRUE(d.has_value()) << text << ": " << error;
    EXPECT_EQ(*d, ns) << text;
  }
}

TEST(ParseDurationNs, ABareNumberNeedsAUnit) {
  for (const char* text : {"90", "1", "1.5", "007"}) {
    std::string error;
    EXPECT_FALSE(ParseDurationNs(text, &error).has_value()) << text;
    EXPECT_NE(error.find("has no unit"), std::string::npos) << error;
  }
  std::string error;
  ParseDurationNs("90", &error);
  EXPECT_EQ(error, "'90' has no unit: write 90s or 90ms (units ns, us, ms, s, m, h, d)");
}

TEST(ParseDurationNs, Rejects) {
  for (const char* text : {"",
                           "fast",
                           "s",
                           "-1s",
                           "+1s",
                           "1 s",
                           " 1s",
                           "1s ",
                           "1.s",
                           ".5s",
                           "1S",
                           "1sec",
                           "1e3ms",
                           "1,5s",
                           "1.5.s",
                           "0.1ns",
                           "1m30",
                           "99999999999999999999s",
                           "1000000000d",
                           "12751d"}) {
    std::string error;
    EXPECT_FALSE(ParseDurationNs(text, &error).has_value()) << text;
    EXPECT_FALSE(error.empty()) << text;
  }
  std::string error;
  ParseDurationNs("fast", &error);
  EXPECT_EQ(error,
            "expected a number with a unit (ns, us, ms, s, m, h, d), such as 250ms, 1.5s or "
            "1h30m, got 'fast'");
  EXPECT_TRUE(ParseDurationNs("12725d").has_value());  // ~34.8 years is the most
}

}  // namespace
}  // namespace ficus
