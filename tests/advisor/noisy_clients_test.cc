// The noisy-client rule on the store's per-minute client keys: rates over the minutes a key was
// seen, so a short flood in a long report is sized at its own rate.
#include <gtest/gtest.h>

#include "advisor/internal/limits.h"

namespace ficus::advisor::internal {
namespace {

constexpr int64_t kMinute = 60'000;

telemetry::ClientKeyCount Row(int minute, const std::string& key, uint64_t count,
                              const std::string& route = "api") {
  return {minute * kMinute, route, key, count};
}

// An hour's report: ten ordinary keys at 5 req/s all hour, one key that sent 600 req/s for two
// minutes. Over the hour it averages 40 req/s; while it was active it sent 600.
TEST(NoisyClientsTest, ARateIsTakenOverTheMinutesTheKeyWasSeen) {
  std::vector<telemetry::ClientKeyCount> rows;
  uint64_t total = 0;
  for (int m = 0; m < 60; ++m) {
    for (int k = 0; k < 10; ++k) {
      rows.push_back(Row(m, "key:user" + std::to_string(k), 300));
      total += 300;
    }
  }
  rows.push_back(Row(10, "key:flood", 36'000));
  rows.push_back(Row(11, "key:flood", 36'000, "other"));
  rows.push_back(Row(11, "key:flood", 0));  // a second route in the same minute: one minute
  total += 72'000;
  const std::vector<NoisyClient> noisy = FindNoisyClients(rows, total, 3600);
  ASSERT_EQ(noisy.size(), 1u);
  EXPECT_EQ(noisy[0].key, "key:flood");
  EXPECT_EQ(noisy[0].requests, 72'000u);
  EXPECT_DOUBLE_EQ(noisy[0].rps, 600);
  // 5x the typical key's 5 req/s would be 25; a quarter of the flood's own rate is 150. Either
  // way over the ordinary keys' 5 req/s; over the hour's average (40/4 = 10) it was not by much.
  EXPECT_DOUBLE_EQ(noisy[0].suggested_rate, 150);
}

// A period shorter than a minute: the rate is over the period, not over a whole minute.
TEST(NoisyClientsTest, AShortPeriodBoundsTheActiveTime) {
  std::vector<telemetry::ClientKeyCount> rows = {Row(0, "key:a", 300), Row(0, "key:b", 10),
                                                 Row(0, "key:c", 10)};
  const std::vector<NoisyClient> noisy = FindNoisyClients(rows, 320, 30);
  ASSERT_EQ(noisy.size(), 1u);
  EXPECT_DOUBLE_EQ(noisy[0].rps, 10);
}

// ficus's own assess traffic and a sole client are never noisy.
TEST(NoisyClientsTest, AssessTrafficAndASoleClientAreNot) {
  std::vector<telemetry::ClientKeyCount> rows = {Row(0, "key:ficus-assess", 5000),
                                                 Row(0, "key:only", 300)};
  EXPECT_TRUE(FindNoisyClients(rows, 5300, 60).empty());
}

}  // namespace
}  // namespace ficus::advisor::internal
