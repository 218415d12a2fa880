#include "policy/internal/gcra.h"

#include <sched.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

namespace ficus::policy::internal {

void KeyHash::Add(std::string_view part) {
  // Whole words, then the tail with the part's length, so "ab"+"c" and "a"+"bc" differ.
  while (part.size() >= 8) {
    uint64_t w;
    std::memcpy(&w, part.data(), 8);
    AddWord(w);
    part.remove_prefix(8);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, part.data(), part.size());
  AddWord(tail ^ (static_cast<uint64_t>(part.size()) << 59) ^ 0xa5);
}

GcraTable::GcraTable(uint64_t max_keys) {
  const uint64_t want = std::max<uint64_t>(kWindow, max_keys + max_keys / 4);
  const size_t n = std::bit_ceil(want);
  slots_ = static_cast<Slot*>(std::calloc(n, sizeof(Slot)));
  if (slots_ == nullptr) throw std::bad_alloc();
  mask_ = n - 1;
  std::random_device rd;
  seed_ = (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

GcraTable::~GcraTable() { std::free(slots_); }

GcraTable::Result GcraTable::Take(uint64_t key, int64_t now, int64_t interval, int64_t tolerance) {
  if (key == 0) key = 1;  // 0 marks an empty slot
  for (int attempt = 0;; ++attempt) {
    // Someone is claiming a slot of this window (a few instructions): let it finish.
    if (attempt > 0 && attempt % 64 == 0) sched_yield();
    const size_t home = key & mask_;
    Slot* idle = nullptr;
    int64_t idle_tat = 0;
    Slot* oldest = nullptr;
    int64_t oldest_tat = kClaiming;
    bool busy = false;
    for (size_t i = 0; i < kWindow; ++i) {
      Slot* s = &slots_[(home + i) & mask_];
      int64_t tat = std::atomic_ref(s->tat).load(std::memory_order_acquire);
      if (tat == kClaiming) {
        busy = true;
        continue;
      }
      if (std::atomic_ref(s->key).load(std::memory_order_acquire) == key) {
        for (;;) {
          const int64_t next = std::max(tat, now) + interval;
          if (next - now > tolerance) return {false, tat};
          if (std::atomic_ref(s->tat).compare_exchange_weak(tat, next, std::memory_order_acq_rel))
            return {true, next};
          // Changed: another request of this key, or the slot was taken for another key.
          if (tat == kClaiming || std::atomic_ref(s->key).load(std::memory_order_acquire) != key)
            break;
        }
        busy = true;  // look again from the start
        break;
      }
      if (tat <= now) {
        if (idle == nullptr) {
          idle = s;
          idle_tat = tat;
        }
      } else if (tat < oldest_tat) {
        oldest = s;
        oldest_tat = tat;
      }
    }
    // A claim in progress may be this key's: wait for it rather than claim a second slot.
    if (busy) continue;
    Slot* victim = idle != nullptr ? idle : oldest;
    int64_t expected = idle != nullptr ? idle_tat : oldest_tat;
    if (victim == nullptr) continue;  // cannot happen: kWindow >= 1 slots, none claiming
    if (!std::atomic_ref(victim->tat)
             .compare_exchange_strong(expected, kClaiming, std::memory_order_acq_rel))
      continue;
    if (idle == nullptr) evictions_.fetch_add(1, std::memory_order_relaxed);
    std::atomic_ref(victim->key).store(key, std::memory_order_relaxed);
    const int64_t next = now + interval;  // tolerance >= interval: a new key always passes
    std::atomic_ref(victim->tat).store(next, std::memory_order_release);
    return {true, next};
  }
}

size_t GcraTable::ActiveKeys(int64_t now) const {
  size_t n = 0;
  for (size_t i = 0; i <= mask_; ++i) {
    const int64_t tat = std::atomic_ref(slots_[i].tat).load(std::memory_order_relaxed);
    if (tat > now) ++n;
  }
  return n;
}

}  // namespace ficus::policy::internal
