// Job ids, the tokens in them, and the Idempotency-Key fingerprint (store.h): apart from the
// store so that the id parser builds into its fuzzer alone.
#include <sys/random.h>

#include <chrono>

#include "queue/internal/store.h"

namespace ficus::queue::internal {

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewToken() {
  // One getrandom per 256 ids, not one syscall per job: the writer makes them in bursts.
  thread_local unsigned char pool[16 * 256];
  thread_local size_t used = sizeof pool;
  if (used == sizeof pool) {
    size_t got = 0;
    while (got < sizeof pool) {
      const ssize_t n = ::getrandom(pool + got, sizeof pool - got, 0);
      if (n > 0) got += static_cast<size_t>(n);
    }
    used = 0;
  }
  const unsigned char* raw = pool + used;
  used += 16;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    id[2 * i] = kHex[raw[i] >> 4];
    id[2 * i + 1] = kHex[raw[i] & 15];
  }
  return id;
}

std::string JobId(int64_t seq, std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, seq >>= 4) id[static_cast<size_t>(i)] = kHex[seq & 15];
  id.append(token);
  return id;
}

bool ParseJobId(std::string_view id, int64_t* seq, std::string_view* token) {
  if (id.size() != kJobIdSize || id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = id[i];
    v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *seq = static_cast<int64_t>(v);
  *token = id.substr(16);
  return true;
}

uint64_t Fingerprint(std::string_view method, std::string_view target, std::string_view body) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view part) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x100) * 1099511628211ull;  // closes the part: ("ab","c") != ("a","bc")
  };
  mix(method);
  mix(target);
  mix(body);
  return h;
}

}  // namespace ficus::queue::internal
