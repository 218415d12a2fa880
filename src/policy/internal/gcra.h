// The rate limiter's shared state: a fixed-capacity table of theoretical arrival times (GCRA),
// one per key, updated by every worker thread with compare-and-swap: exact within the process,
// no lock, no allocation per request, memory fixed when the limit is built.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ficus::policy::internal {

// A key's parts are fed to a KeyHash one by one; the result names the key in a GcraTable. The
// seed is random per table so a client cannot pick two keys that collide (the mix is not a
// cryptographic MAC: it resists guessing, not an attacker who can observe hash values, which
// nothing exposes).
class KeyHash {
 public:
  explicit KeyHash(uint64_t seed) : h_(Mix(seed + 0x9e3779b97f4a7c15ull)), seed_(seed) {}
  void Add(std::string_view part);
  void AddWord(uint64_t w) { h_ = Mix(h_ ^ w) + seed_; }
  uint64_t Done() const { return h_ == 0 ? 1 : h_; }  // 0 marks an empty slot

 private:
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  }
  uint64_t h_;
  uint64_t seed_;
};

// GCRA (the generic cell rate algorithm, as in ATM and redis-cell): a key's state is one time,
// its theoretical arrival time (TAT). A request at `now` is allowed when
// max(TAT, now) + interval - now <= tolerance, where interval = period / count and tolerance =
// burst * interval; it then moves TAT to max(TAT, now) + interval. Over a time D a key gets
// burst + D / interval requests through, whoever sends them and on whatever thread.
//
// Slots are 16 bytes: {key hash, TAT}. A key lives in one of kWindow slots after its hash's
// home slot. A slot whose TAT has passed is idle: its key would be allowed a full burst, just as
// an unknown key is, so forgetting it loses nothing, and a new key takes the first idle slot.
// With none idle in the window, the slot closest to idle is evicted (counted): that key starts
// over with a full burst. Memory is capacity * 16 bytes, whatever the keys (a flood of unique
// keys only evicts); calloc'd, so untouched pages cost nothing.
//
// Concurrency: a slot's TAT only ever grows (an update sets max(TAT, now) + interval, a new key
// claims a slot whose TAT <= now and sets now + interval), so a CAS on the TAT word that
// succeeds proves nothing changed since it was read, the key word included: a slot changes key
// only through a CAS of its TAT to kClaiming, then the key, then the new TAT.
class GcraTable {
 public:
  static constexpr size_t kWindow = 8;
  // Room for `max_keys` keys: the next power of two >= max_keys * 5 / 4, at least kWindow.
  explicit GcraTable(uint64_t max_keys);
  ~GcraTable();
  GcraTable(const GcraTable&) = delete;
  GcraTable& operator=(const GcraTable&) = delete;

  struct Result {
    bool allowed = false;
    int64_t tat = 0;  // the key's TAT after this request (allowed) or as it stands (limited)
  };
  // Times in ns on one monotonic clock; `interval` > 0, `tolerance` >= interval.
  Result Take(uint64_t key, int64_t now, int64_t interval, int64_t tolerance);

  size_t capacity() const { return mask_ + 1; }
  size_t bytes() const { return capacity() * sizeof(Slot); }
  uint64_t evictions() const { return evictions_.load(std::memory_order_relaxed); }
  uint64_t seed() const { return seed_; }
  // Slots holding a key that is not idle at `now` (a scan: for tests and /metrics).
  size_t ActiveKeys(int64_t now) const;

 private:
  struct Slot {
    uint64_t key;
    int64_t tat;
  };
  static constexpr int64_t kClaiming = INT64_MAX;
  Slot* slots_ = nullptr;
  size_t mask_ = 0;
  uint64_t seed_ = 0;
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace ficus::policy::internal
