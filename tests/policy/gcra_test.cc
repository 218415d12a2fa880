// The GCRA table alone: exactness (one thread and many), idle keys reused, a flood of unique
// keys that cannot grow memory, and the key hash.
#include "policy/internal/gcra.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ficus::policy::internal {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000 * kMs;

TEST(Gcra, BurstThenRate) {
  GcraTable t(1024);
  const int64_t interval = 10 * kMs;        // 100/s
  const int64_t tolerance = 20 * interval;  // burst 20
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += t.Take(42, 1 * kSec, interval, tolerance).allowed;
  EXPECT_EQ(allowed, 20);
  // 1 s later: 100 more.
  allowed = 0;
  for (int i = 0; i < 500; ++i) allowed += t.Take(42, 2 * kSec, interval, tolerance).allowed;
  EXPECT_EQ(allowed, 20);  // the bucket refilled to its burst, not beyond
  // Paced at the rate: every request passes.
  allowed = 0;
  for (int i = 1; i <= 1000; ++i) allowed += t.Take(7, i * interval, interval, tolerance).allowed;
  EXPECT_EQ(allowed, 1000);
}

TEST(Gcra, KeysAreIndependent) {
  GcraTable t(1024);
  EXPECT_TRUE(t.Take(1, kSec, kSec, kSec).allowed);
  EXPECT_FALSE(t.Take(1, kSec, kSec, kSec).allowed);
  EXPECT_TRUE(t.Take(2, kSec, kSec, kSec).allowed);
  EXPECT_TRUE(t.Take(1, 2 * kSec, kSec, kSec).allowed);
}

TEST(Gcra, LimitedReportsTheStateForRetryAfter) {
  GcraTable t(16);
  t.Take(5, 0 + kSec, kSec, 2 * kSec);
  t.Take(5, 0 + kSec, kSec, 2 * kSec);
  GcraTable::Result r = t.Take(5, kSec, kSec, 2 * kSec);
  EXPECT_FALSE(r.allowed);
  EXPECT_EQ(r.tat, 3 * kSec);  // next allowed at tat + interval - tolerance = 2 s
}

// Many threads hammering one key over simulated time: exactly burst + elapsed / interval pass.
TEST(Gcra, ExactAcrossThreads) {
  GcraTable t(1 << 16);
  const int64_t interval = kMs;  // 1000/s
  const int64_t tolerance = 50 * interval;
  std::atomic<int64_t> clock{kSec};
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        const int64_t now = clock.fetch_add(kMs / 100) + kMs / 100;  // 10 µs per request
        if (t.Take(99, now, interval, tolerance).allowed) allowed.fetch_add(1);
        // Other keys at the same time, so slots are claimed concurrently too.
        t.Take(1000 + (i % 64), now, interval, tolerance);
      }
    });
  }
  for (auto& th : threads) th.join();
  const int64_t elapsed = clock.load() - kSec;  // 160000 requests * 10 µs = 1.6 s
  const int64_t expected = 50 + elapsed / interval;
  // A request's clock read and its take are not one atomic step: allow the few in flight.
  EXPECT_NEAR(allowed.load(), expected, 8);
}

// A flood of unique keys only evicts: the table's memory is fixed when it is built.
TEST(Gcra, FloodOfUniqueKeysCannotGrowMemory) {
  GcraTable t(1000);
  const size_t bytes = t.bytes();
  EXPECT_EQ(t.capacity(), 2048u);
  EXPECT_LE(bytes, 2048u * 16);
  for (uint64_t k = 1; k <= 1'000'000; ++k) t.Take(k * 0x9e3779b97f4a7c15ull, kSec, kSec, kSec);
  EXPECT_EQ(t.bytes(), bytes);
  EXPECT_GT(t.evictions(), 990'000u);
  EXPECT_LE(t.ActiveKeys(kSec), t.capacity());
  // Idle keys are reused without eviction: one second later every key is idle.
  const uint64_t ev = t.evictions();
  for (uint64_t k = 1; k <= 1500; ++k) t.Take(k * 77 + 3, 3 * kSec, kSec, kSec);
  EXPECT_EQ(t.evictions(), ev);
}

TEST(Gcra, DefaultCapacityIsUnder64MiBForAMillionKeys) {
  GcraTable t(1 << 20);
  EXPECT_GE(t.capacity(), 1u << 20);
  EXPECT_LT(t.bytes(), 64u << 20);
}

TEST(KeyHash, PartsDoNotRunTogether) {
  auto h = [](std::initializer_list<std::string_view> parts) {
    KeyHash k(12345);
    for (auto p : parts) k.Add(p);
    return k.Done();
  };
  EXPECT_NE(h({"ab", "c"}), h({"a", "bc"}));
  EXPECT_NE(h({"10.0.0.1"}), h({"10.0.0.2"}));
  EXPECT_EQ(h({"0123456789abcdef0"}), h({"0123456789abcdef0"}));
  KeyHash a(1), b(2);
  a.Add("x");
  b.Add("x");
  EXPECT_NE(a.Done(), b.Done());
}

}  // namespace
}  // namespace ficus::policy::internal
