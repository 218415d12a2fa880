// The cacheability feed's building blocks: BodyHasher (a streaming body hash) and RepeatSketch
// (per-route, per-worker repeats by request key).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "observe/observe.h"

namespace ficus::observe {
namespace {

uint64_t HashWhole(std::string_view s) {
  BodyHasher h;
  h.Update(s.data(), s.size());
  return h.Finish();
}

uint64_t HashInPieces(std::string_view s, const std::vector<size_t>& cuts) {
  BodyHasher h;
  size_t at = 0;
  for (size_t cut : cuts) {
    h.Update(s.data() + at, cut - at);
    at = cut;
  }
  h.Update(s.data() + at, s.size() - at);
  return h.Finish();
}

TEST(BodyHasherTest, SameBodyInAnyPiecesHashesTheSame) {
  std::string body;
  for (int i = 0; i < 1000; ++i) body += static_cast<char>('a' + i * 7 % 26);
  const uint64_t whole = HashWhole(body);
  EXPECT_EQ(HashInPieces(body, {1}), whole);
  EXPECT_EQ(HashInPieces(body, {3, 4, 5, 13, 100, 101, 999}), whole);
  for (size_t cut = 0; cut <= 17; ++cut) EXPECT_EQ(HashInPieces(body, {cut}), whole) << cut;
}

TEST(BodyHasherTest, DifferentBodiesDiffer) {
  EXPECT_NE(HashWhole(""), HashWhole(std::string(1, '\0')));
  EXPECT_NE(HashWhole("ab"), HashWhole(std::string("ab\0", 3)));
  EXPECT_NE(HashWhole("{\"n\":1}"), HashWhole("{\"n\":2}"));
  EXPECT_NE(HashWhole("12345678"), HashWhole("12345679"));
  std::string a(5000, 'x'), b = a;
  b[4321] = 'y';
  EXPECT_NE(HashWhole(a), HashWhole(b));
}

TEST(BodyHasherTest, OnlyTheFirst64KiBAndTheLengthCount) {
  std::string a(BodyHasher::kMaxBytes + 100, 'x'), b = a;
  b[BodyHasher::kMaxBytes + 50] = 'y';  // past the cap: not seen
  EXPECT_EQ(HashWhole(a), HashWhole(b));
  EXPECT_EQ(HashInPieces(a, {BodyHasher::kMaxBytes - 3, BodyHasher::kMaxBytes + 9}), HashWhole(a));
  std::string c = a + "z";  // the length still counts
  EXPECT_NE(HashWhole(a), HashWhole(c));
  BodyHasher h;
  h.Update(a.data(), a.size());
  EXPECT_EQ(h.length(), a.size());
}

TEST(RepeatSketchTest, CountsRepeatsAndChangesPerKey) {
  RepeatSketch s;
  s.Add(10, 100);  // first sight: sampled only
  s.Add(10, 100);  // repeated
  s.Add(10, 100);  // repeated
  s.Add(10, 200);  // changed
  s.Add(10, 200);  // repeated (the slot took the new body)
  s.Add(12, 300);  // another key (another slot), first sight
  const RepeatSketch::Counts c = s.Totals();
  EXPECT_EQ(c.sampled, 6u);
  EXPECT_EQ(c.repeated, 3u);
  EXPECT_EQ(c.changed, 1u);
}

TEST(RepeatSketchTest, ACollidingKeyReplacesTheSlot) {
  RepeatSketch s;
  const uint64_t a = 1, b = 1 + RepeatSketch::kSlots;  // same slot (direct-mapped)
  s.Add(a, 7);
  s.Add(b, 7);  // evicts a: a first sight, not a repeat (bodies are per key)
  s.Add(a, 7);  // a again: evicted, so a first sight again
  RepeatSketch::Counts c = s.Totals();
  EXPECT_EQ(c.sampled, 3u);
  EXPECT_EQ(c.repeated, 0u);
  EXPECT_EQ(c.changed, 0u);
  s.Add(a, 7);
  c = s.Totals();
  EXPECT_EQ(c.repeated, 1u);
  // Keys in different slots do not disturb each other.
  for (uint64_t k = 2; k < RepeatSketch::kSlots; ++k) s.Add(k, k);
  s.Add(a, 7);
  EXPECT_EQ(s.Totals().repeated, 2u);
}

TEST(RepeatSketchTest, TakeReturnsTheCountsSinceThePreviousTake) {
  RepeatSketch s;
  s.Add(5, 1);
  s.Add(5, 1);
  RepeatSketch::Counts t = s.Take();
  EXPECT_EQ(t.sampled, 2u);
  EXPECT_EQ(t.repeated, 1u);
  t = s.Take();
  EXPECT_EQ(t.sampled, 0u);
  EXPECT_EQ(t.repeated, 0u);
  // The slots survive a take: the next response to the same key is still a repeat.
  s.Add(5, 1);
  s.Add(5, 2);
  t = s.Take();
  EXPECT_EQ(t.sampled, 2u);
  EXPECT_EQ(t.repeated, 1u);
  EXPECT_EQ(t.changed, 1u);
  EXPECT_EQ(s.Totals().sampled, 4u);  // cumulative counts are untouched by takes
}

TEST(RepeatSketchTest, WorkersWriteTheirOwnSketchAndTheReaderSums) {
  // One sketch per worker (as in the route's cells), written concurrently with takes.
  constexpr int kWorkers = 4, kRounds = 20000;
  std::vector<RepeatSketch> sketches(kWorkers);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) {
    threads.emplace_back([&, w] {
      while (!go.load()) {
      }
      for (int i = 0; i < kRounds; ++i) {
        // key i % 8 always has body 42 (repeats); key 100 changes every time.
        sketches[w].Add(static_cast<uint64_t>(10 + i % 8), 42);
        sketches[w].Add(100, static_cast<uint64_t>(i));
      }
    });
  }
  RepeatSketch::Counts sum;
  go = true;
  for (int t = 0; t < 50; ++t) {
    for (auto& s : sketches) {
      const RepeatSketch::Counts c = s.Take();
      sum.sampled += c.sampled;
      sum.repeated += c.repeated;
      sum.changed += c.changed;
    }
  }
  for (auto& th : threads) th.join();
  for (auto& s : sketches) {
    const RepeatSketch::Counts c = s.Take();
    sum.sampled += c.sampled;
    sum.repeated += c.repeated;
    sum.changed += c.changed;
  }
  EXPECT_EQ(sum.sampled, uint64_t{kWorkers} * kRounds * 2);
  EXPECT_EQ(sum.repeated, uint64_t{kWorkers} * (kRounds - 8));
  EXPECT_EQ(sum.changed, uint64_t{kWorkers} * (kRounds - 1));
}

}  // namespace
}  // namespace ficus::observe
