// Verified JWTs one worker remembers, so a client that sends the same token on every request
// pays for one signature check (an RS256 verify is tens of microseconds) and then a hash and a
// compare. Direct-mapped and owned by one worker thread: no lock, no atomic. Bounded: `capacity`
// entries (rounded up to a power of two), tokens over kMaxTokenBytes are never kept. A verdict
// is used only while the token's exp (plus the leeway) has not passed and only for the key set
// generation that verified it, so a rotated-out key stops being trusted at the next fetch.
#pragma once

#include <bit>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ficus::policy::internal {

class TokenCache {
 public:
  static constexpr size_t kMaxTokenBytes = 4096;

  explicit TokenCache(size_t capacity) : slots_(std::bit_ceil(std::max<size_t>(capacity, 1))) {}

  // The consumer a still-valid verdict named, or null.
  const std::string* Find(std::string_view token, uint64_t generation, int64_t now_s) const {
    const Slot& s = slots_[Index(token)];
    if (s.valid_until_s < now_s || s.generation != generation || s.token != token) return nullptr;
    return &s.consumer;
  }
  // Remembers a verified token until `valid_until_s` (exp + leeway).
  void Put(std::string_view token, uint64_t generation, int64_t valid_until_s,
           std::string_view consumer) {
    if (token.size() > kMaxTokenBytes) return;
    Slot& s = slots_[Index(token)];
    s.token.assign(token);
    s.consumer.assign(consumer);
    s.generation = generation;
    s.valid_until_s = valid_until_s;
  }
  size_t capacity() const { return slots_.size(); }

 private:
  struct Slot {
    std::string token;
    std::string consumer;
    uint64_t generation = 0;
    int64_t valid_until_s = INT64_MIN;
  };
  size_t Index(std::string_view token) const {
    return std::hash<std::string_view>()(token) & (slots_.size() - 1);
  }
  std::vector<Slot> slots_;
};

}  // namespace ficus::policy::internal
