// Bounded, single-writer sketches a worker fills per request: distinct clients (HyperLogLog),
// per-code counts, heavy keys, repeated bodies, and the synthetic-traffic key. Part of observe.h,
// the module's interface; include that.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "observe/metric_cells.h"

namespace ficus::observe {

// A HyperLogLog register set (2^10 registers, ~3.3 % standard error) of the clients seen, for
// the telemetry store's distinct-client estimate. Single writer (its worker): a register is
// raised with a relaxed load and store, no RMW. The reader (the telemetry thread) takes and
// zeroes the registers every interval; a raise that lands between the reader's load and its
// zeroing is lost for that interval, an error far inside the sketch's own.
class ClientSketch {
 public:
  static constexpr int kPrecision = 10;
  static constexpr int kRegisters = 1 << kPrecision;
  // `hash`: a well-mixed 64-bit hash of the client (HashClient).
  void Add(uint64_t hash) {
    const uint32_t index = static_cast<uint32_t>(hash >> (64 - kPrecision));
    // Rank = position of the first 1 bit after the index bits (1-based); the sentinel bit
    // bounds it at 64 - kPrecision + 1.
    const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
    const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
    if (registers_[index].load(std::memory_order_relaxed) < rank) {
      registers_[index].store(rank, std::memory_order_relaxed);
    }
  }
  uint8_t Register(int i) const { return registers_[i].load(std::memory_order_relaxed); }
  // Reader side: the register's value, then zero.
  uint8_t Take(int i) {
    uint8_t v = registers_[i].load(std::memory_order_relaxed);
    if (v != 0) registers_[i].store(0, std::memory_order_relaxed);
    return v;
  }

 private:
  std::array<std::atomic<uint8_t>, kRegisters> registers_{};
};

// A 64-bit hash of a client key ("key:...", "user:...", "addr:..."), mixed well enough for
// ClientSketch and KeySketch.
uint64_t HashClient(std::string_view key);

// Responses by exact status code with bounded cardinality: the first kSlots distinct codes a
// cell sees get their own counter, later ones count as "other" (code 0 in snapshots). Codes
// are published after their first count, so a reader that sees a code sees a count >= 1.
// Single writer; the scan usually stops at the first slot (200).
class CodeCounters {
 public:
  static constexpr int kSlots = 16;
  void Add(int status) {
    if (status < 100 || status > 999) return;  // no response (client gone)
    for (int i = 0; i < kSlots; ++i) {
      const uint16_t c = codes_[i].load(std::memory_order_relaxed);
      if (c == status) {
        counts_[i].Add();
        return;
      }
      if (c == 0) {
        counts_[i].Add();
        codes_[i].store(static_cast<uint16_t>(status), std::memory_order_release);
        return;
      }
    }
    other_.Add();
  }
  // Calls f(code, count) for each code seen, then f(0, other) when other > 0.
  template <class F>
  void ForEach(F&& f) const {
    for (int i = 0; i < kSlots; ++i) {
      const uint16_t c = codes_[i].load(std::memory_order_acquire);
      if (c == 0) break;
      f(int{c}, counts_[i].Get());
    }
    if (uint64_t o = other_.Get()) f(0, o);
  }

 private:
  std::array<std::atomic<uint16_t>, kSlots> codes_{};
  std::array<Counter, kSlots> counts_{};
  Counter other_;
};

// The heaviest client keys of one route in one worker (Space-Saving, Metwally et al. 2005):
// kSlots counters; a tracked key's count grows, an untracked key takes the slot with the
// smallest count and inherits it (+1), so any key with more than 1/kSlots of the requests is
// tracked and counts overestimate by at most the inherited minimum. The worker is the only
// writer (relaxed atomics: no locks, no allocation, ~20 ns for a short key); the telemetry
// thread reads a snapshot, dropping slots torn by a concurrent replacement (text and hash
// disagree), then asks the worker to start over at its next Add.
class KeySketch {
 public:
  static constexpr int kSlots = 16;
  static constexpr size_t kKeyBytes = 48;  // longer keys are cut
  struct Entry {
    std::string key;
    uint64_t count = 0;
  };
  // Worker only. `hash` = HashClient(key) (after cutting to kKeyBytes).
  void Add(uint64_t hash, std::string_view key) {
    if (reset_.load(std::memory_order_acquire)) {
      for (auto& s : slots_) {
        s.count.store(0, std::memory_order_relaxed);
        s.hash.store(0, std::memory_order_relaxed);
      }
      reset_.store(false, std::memory_order_release);
    }
    if (key.size() > kKeyBytes) key = key.substr(0, kKeyBytes);
    int min_i = 0;
    uint64_t min_c = UINT64_MAX;
    for (int i = 0; i < kSlots; ++i) {
      const uint64_t c = slots_[i].count.load(std::memory_order_relaxed);
      if (c != 0 && slots_[i].hash.load(std::memory_order_relaxed) == hash) {
        slots_[i].count.store(c + 1, std::memory_order_relaxed);
        return;
      }
      if (c < min_c) {
        min_c = c;
        min_i = i;
      }
    }
    Slot& s = slots_[min_i];
    s.hash.store(hash, std::memory_order_relaxed);
    std::array<uint64_t, kKeyBytes / 8> words{};
    std::memcpy(words.data(), key.data(), key.size());
    for (size_t w = 0; w < words.size(); ++w) s.text[w].store(words[w], std::memory_order_relaxed);
    s.length.store(static_cast<uint8_t>(key.size()), std::memory_order_relaxed);
    s.count.store(min_c + 1, std::memory_order_relaxed);
  }
  // Reader: the tracked keys and counts since the last Take (keys are checked against their
  // hash), then a request to the worker to clear. With `reset` false it only reads.
  std::vector<Entry> Take(bool reset) {
    std::vector<Entry> out;
    if (reset_.load(std::memory_order_acquire)) return out;  // not cleared since the last Take
    for (auto& s : slots_) {
      const uint64_t c = s.count.load(std::memory_order_relaxed);
      if (c == 0) continue;
      const uint64_t h = s.hash.load(std::memory_order_relaxed);
      std::array<uint64_t, kKeyBytes / 8> words;
      for (size_t w = 0; w < words.size(); ++w)
        words[w] = s.text[w].load(std::memory_order_relaxed);
      const size_t n = std::min<size_t>(s.length.load(std::memory_order_relaxed), kKeyBytes);
      std::string key(reinterpret_cast<const char*>(words.data()), n);
      if (HashClientKey(key) != h) continue;  // torn by a replacement in progress
      out.push_back({std::move(key), c});
    }
    if (reset) reset_.store(true, std::memory_order_release);
    return out;
  }
  static uint64_t HashClientKey(std::string_view key);  // = HashClient

 private:
  struct Slot {
    std::atomic<uint64_t> hash{0};
    std::atomic<uint64_t> count{0};
    std::array<std::atomic<uint64_t>, kKeyBytes / 8> text{};
    std::atomic<uint8_t> length{0};
  };
  std::array<Slot, kSlots> slots_{};
  std::atomic<bool> reset_{false};
};

// A streaming 64-bit hash of a response body (non-cryptographic: it only has to tell "same
// body" from "different body" for the report's cacheability estimate). Update() takes the body
// in the pieces ficus forwards, 8 bytes at a time (multiply-rotate), carrying a partial word
// between pieces; only the first kMaxBytes are hashed, the total length is mixed in at the end,
// so two bodies that differ only past 64 KiB and have the same length hash the same.
class BodyHasher {
 public:
  static constexpr uint64_t kMaxBytes = 64 * 1024;
  void Reset() { *this = BodyHasher(); }
  void Update(const char* data, size_t n);
  // PayloadFn-compatible (http::ChunkedScanner): `self` is a BodyHasher.
  static void TakePiece(void* self, std::string_view piece) {
    static_cast<BodyHasher*>(self)->Update(piece.data(), piece.size());
  }
  uint64_t Finish() const;
  uint64_t length() const { return length_; }

 private:
  uint64_t acc_ = 0x9e3779b97f4a7c15ull;
  uint64_t length_ = 0;  // every byte seen, hashed or not
  uint64_t carry_ = 0;   // a partial word (carry_bytes_ bytes, little-endian)
  uint32_t carry_bytes_ = 0;
};

// Whether responses of a route repeat, in one worker: for sampled GET/HEAD 200 responses,
// {request key hash, body hash} in kSlots direct-mapped slots (a colliding or new key replaces
// the slot's entry; no allocation). A response whose key is in its slot counts as `repeated`
// when its body hash equals the stored one, else `changed` (and the slot takes the new hash);
// every response counts as `sampled`. The worker is the only writer of the slots and counters
// (relaxed atomics, as Counter); the telemetry thread takes the counts as differences against
// what it took before (its own baseline), so the worker never has to be told to reset.
class RepeatSketch {
 public:
  static constexpr int kSlots = 128;
  struct Counts {
    uint64_t sampled = 0;
    uint64_t repeated = 0;
    uint64_t changed = 0;
  };
  // Worker only.
  void Add(uint64_t key_hash, uint64_t body_hash) {
    if (key_hash == 0) key_hash = 1;  // 0 marks an empty slot
    Slot& s = slots_[key_hash % kSlots];
    sampled_.Add();
    if (s.key.load(std::memory_order_relaxed) == key_hash) {
      if (s.body.load(std::memory_order_relaxed) == body_hash) {
        repeated_.Add();
        return;
      }
      changed_.Add();
    } else {
      s.key.store(key_hash, std::memory_order_relaxed);
    }
    s.body.store(body_hash, std::memory_order_relaxed);
  }
  // Reader: the counts since the previous Take (one reader at a time: the telemetry tick).
  Counts Take() {
    Counts now{sampled_.Get(), repeated_.Get(), changed_.Get()};
    Counts d{now.sampled - taken_.sampled, now.repeated - taken_.repeated,
             now.changed - taken_.changed};
    taken_ = now;
    return d;
  }
  // Reader: the cumulative counts (metrics, tests).
  Counts Totals() const { return {sampled_.Get(), repeated_.Get(), changed_.Get()}; }

 private:
  struct Slot {
    std::atomic<uint64_t> key{0};
    std::atomic<uint64_t> body{0};
  };
  std::array<Slot, kSlots> slots_{};
  Counter sampled_, repeated_, changed_;
  Counts taken_;  // reader-owned
};

// The secret of the running `ficus assess`, whose requests carry it in `X-Ficus-Synthetic`:
// they count in their route's cells like any request and, besides, in the cell's `synthetic`
// counts, which the SLOs subtract. Set only through the authenticated admin API
// (POST /synthetic-key), so nobody on the network can take their own traffic out of the SLOs.
// 128 bits (32 hex digits) with an expiry; the admin thread writes, workers read (relaxed
// halves behind a release/acquire expiry: a read torn by a concurrent Set just fails to match).
class SyntheticKey {
 public:
  // `hex`: 32 hex digits; false (and nothing changes) otherwise. Valid until `until_ns`
  // (MonotonicNanos clock).
  bool Set(std::string_view hex, int64_t until_ns);
  void Clear() { until_ns_.store(0, std::memory_order_release); }
  // Worker: `value` is the registered secret and `now_ns` is before its expiry. Only called for
  // a request that carries the header. Compares every byte whatever the first difference.
  bool Matches(std::string_view value, int64_t now_ns) const;
  bool active(int64_t now_ns) const { return now_ns < until_ns_.load(std::memory_order_acquire); }

 private:
  std::atomic<uint64_t> hi_{0}, lo_{0};
  std::atomic<int64_t> until_ns_{0};
};

}  // namespace ficus::observe
