// The exchange record, its per-worker rings, and the small helpers both sinks share.
#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "base/base.h"
#include "observe/observe.h"

namespace ficus::observe {
namespace {

template <size_t N, class Len>
void CopyTruncated(char (&dst)[N], Len* len, std::string_view src) {
  const size_t n = std::min(src.size(), N);
  if (n != 0) std::memcpy(dst, src.data(), n);  // an empty view may have a null data()
  *len = static_cast<Len>(n);
}

}  // namespace

void ExchangeRecord::Begin(int64_t start, std::string_view m, std::string_view id,
                           std::string_view c, std::string_view h, std::string_view p,
                           std::string_view ua) {
  // Every scalar back to its default; the char arrays are only read up to their lengths.
  start_ns = start;
  end_ns = upstream_start_ns = connect_start_ns = connected_ns = sent_ns = first_byte_ns = 0;
  bytes_in = bytes_out = 0;
  status = upstream_status = 0;
  retries = 0;
  upstream_failed = false;
  termination = Termination::kComplete;
  route = cluster = endpoint = nullptr;
  error = nullptr;
  trace = TraceIds{};
  static_assert(sizeof method < 256 && sizeof request_id < 256 && sizeof client < 256 &&
                sizeof host < 256 && sizeof user_agent < 256);
  CopyTruncated(method, &method_len, m);
  CopyTruncated(request_id, &request_id_len, id);
  CopyTruncated(client, &client_len, c);
  CopyTruncated(host, &host_len, h);
  CopyTruncated(path, &path_len, p);
  CopyTruncated(user_agent, &user_agent_len, ua);
  consumer_len = 0;
}

void ExchangeRecord::SetConsumer(std::string_view name) {
  static_assert(sizeof consumer < 256);
  CopyTruncated(consumer, &consumer_len, name);
}

RecordRings::RecordRings(int workers, size_t capacity)
    : workers_(workers), mask_(capacity - 1), rings_(new Ring[workers]) {
  FICUS_CHECK(std::has_single_bit(capacity));
  for (int w = 0; w < workers; ++w) {
    // mmap: the ring's pages are only backed once used.
    void* p = ::mmap(nullptr, capacity * sizeof(ExchangeRecord), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    rings_[w].slots = static_cast<ExchangeRecord*>(p);
  }
}

RecordRings::~RecordRings() {
  for (int w = 0; w < workers_; ++w) {
    ::munmap(rings_[w].slots, (mask_ + 1) * sizeof(ExchangeRecord));
  }
}

bool RecordRings::Push(int w, const ExchangeRecord& rec) {
  Ring& r = rings_[w];
  const uint64_t tail = r.tail.load(std::memory_order_relaxed);
  if (tail - r.head.load(std::memory_order_acquire) > mask_) {
    r.dropped.Add();
    return false;
  }
  std::memcpy(static_cast<void*>(&r.slots[tail & mask_]), &rec, sizeof rec);
  r.tail.store(tail + 1, std::memory_order_release);
  r.pushed.Add();
  return true;
}

uint64_t RecordRings::dropped() const {
  uint64_t n = 0;
  for (int w = 0; w < workers_; ++w) n += rings_[w].dropped.Get();
  return n;
}

uint64_t RecordRings::pushed() const {
  uint64_t n = 0;
  for (int w = 0; w < workers_; ++w) n += rings_[w].pushed.Get();
  return n;
}

FastRandom::FastRandom(uint64_t seed) {
  // splitmix64 spreads any seed (0 included) over both words.
  auto mix = [&seed] {
    uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  s0_ = mix();
  s1_ = mix();
}

}  // namespace ficus::observe
