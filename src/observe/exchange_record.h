// The exchange record (what the access log and a trace span are made of) and the bounded
// single-producer rings that carry it from a worker to a sink thread. Part of observe.h, the
// module's interface; include that.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "observe/metric_cells.h"

namespace ficus::observe {

// W3C trace ids of one exchange. All zero when tracing is off.
struct TraceIds {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};          // the server span (this exchange)
  std::array<uint8_t, 8> parent_span_id{};   // from the incoming traceparent; zero = root
  std::array<uint8_t, 8> attempt_span_id{};  // the upstream attempt (child span)
  bool sampled = false;
};

// How an exchange ended, as HAProxy's termination codes and Envoy's response flags tell it:
// who ended it and whether the client got the whole response. The access log's `termination`.
enum class Termination : uint8_t {
  kComplete,          // the whole response went out (`error` says why when ficus answered itself)
  kClientClosed,      // the client closed or reset the connection before the response was whole
  kClientStalled,     // the client stopped reading: no write progress within timeouts.idle
  kUpstreamClosed,    // the upstream closed or reset mid-response: the client's response is cut
  kUpstreamTimeout,   // the upstream stalled mid-response past its timeout: cut
  kUpstreamProtocol,  // the upstream's response turned malformed mid-body: cut
  kDrain,             // ficus closed the connection at the drain deadline (stop, or a reload)
};
// "complete", "client_closed", "client_stalled", "upstream_closed", "upstream_timeout",
// "upstream_protocol", "drain".
std::string_view TerminationName(Termination t);

// A fixed-size POD copied into a ring: strings truncated to their arrays. Times are
// monotonic nanoseconds; a phase that did not happen is 0.
struct ExchangeRecord {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int64_t upstream_start_ns = 0;  // endpoint picked
  int64_t connect_start_ns = 0;   // a new connection was opened (0 = reused or none)
  int64_t connected_ns = 0;
  int64_t sent_ns = 0;  // request head written upstream
  int64_t first_byte_ns = 0;
  uint64_t bytes_in = 0;   // request body bytes
  uint64_t bytes_out = 0;  // response body bytes
  uint16_t status = 0;
  uint16_t upstream_status = 0;  // 0 = no upstream response
  uint8_t retries = 0;
  bool upstream_failed = false;
  Termination termination = Termination::kComplete;
  const std::string* route = nullptr;  // registry-owned names: valid for the process' life
  const std::string* cluster = nullptr;
  const std::string* endpoint = nullptr;
  const char* error = nullptr;  // static text when ficus answered with an error
  TraceIds trace;
  uint8_t method_len = 0;
  uint8_t request_id_len = 0;
  uint8_t client_len = 0;
  uint8_t host_len = 0;
  uint16_t path_len = 0;
  uint8_t user_agent_len = 0;
  uint8_t consumer_len = 0;  // who asked, once an auth policy knows; 0 = unknown
  char method[24];
  char request_id[64];
  char client[48];
  char host[128];
  char path[512];
  char user_agent[192];
  char consumer[64];

  std::string_view Method() const { return {method, method_len}; }
  std::string_view RequestId() const { return {request_id, request_id_len}; }
  std::string_view Client() const { return {client, client_len}; }
  std::string_view Host() const { return {host, host_len}; }
  std::string_view Path() const { return {path, path_len}; }
  std::string_view UserAgent() const { return {user_agent, user_agent_len}; }
  std::string_view Consumer() const { return {consumer, consumer_len}; }
  void SetConsumer(std::string_view name);  // truncated to the array
  // Copies the request's strings (truncating) and clears every other field.
  void Begin(int64_t start, std::string_view method, std::string_view request_id,
             std::string_view client, std::string_view host, std::string_view path,
             std::string_view user_agent);
};

// A single-producer single-consumer ring of records per worker. Push never blocks: a full ring
// drops and counts. Capacity is a power of two.
class RecordRings {
 public:
  RecordRings(int workers, size_t capacity_per_worker);
  ~RecordRings();
  // Worker `w` only.
  bool Push(int w, const ExchangeRecord& r);
  // The consumer only: up to `max` records of worker w, oldest first, passed to f(record).
  template <class F>
  size_t Drain(int w, size_t max, F&& f);
  uint64_t dropped() const;
  uint64_t pushed() const;
  int workers() const { return workers_; }

 private:
  struct alignas(64) Ring {
    std::atomic<uint64_t> tail{0};  // written by the producer
    Counter dropped;
    Counter pushed;
    alignas(64) std::atomic<uint64_t> head{0};  // written by the consumer
    ExchangeRecord* slots = nullptr;
  };
  int workers_;
  size_t mask_;
  std::unique_ptr<Ring[]> rings_;
};

template <class F>
size_t RecordRings::Drain(int w, size_t max, F&& f) {
  Ring& r = rings_[w];
  const uint64_t head = r.head.load(std::memory_order_relaxed);
  const uint64_t tail = r.tail.load(std::memory_order_acquire);
  size_t n = 0;
  for (uint64_t i = head; i != tail && n < max; ++i, ++n) f(r.slots[i & mask_]);
  r.head.store(head + n, std::memory_order_release);
  return n;
}

// Single-producer single-consumer rings of small trivially copyable items, one per worker:
// Push (worker `w` only) never blocks or allocates, a full ring drops and counts; Drain (one
// consumer thread) takes what is there, oldest first. Capacity per worker is a power of two.
template <class T>
class SpscRings {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  SpscRings(int workers, size_t capacity) : mask_(capacity - 1), rings_(workers) {
    for (Ring& r : rings_) r.slots.reset(new T[capacity]);
  }
  bool Push(int w, const T& item) {
    Ring& r = rings_[static_cast<size_t>(w)];
    const uint64_t tail = r.tail.load(std::memory_order_relaxed);
    if (tail - r.head.load(std::memory_order_acquire) > mask_) {
      r.dropped.Add();
      return false;
    }
    r.slots[tail & mask_] = item;
    r.tail.store(tail + 1, std::memory_order_release);
    return true;
  }
  template <class F>
  size_t Drain(int w, F&& f) {
    Ring& r = rings_[static_cast<size_t>(w)];
    const uint64_t head = r.head.load(std::memory_order_relaxed);
    const uint64_t tail = r.tail.load(std::memory_order_acquire);
    for (uint64_t i = head; i != tail; ++i) f(r.slots[i & mask_]);
    r.head.store(tail, std::memory_order_release);
    return static_cast<size_t>(tail - head);
  }
  int workers() const { return static_cast<int>(rings_.size()); }
  uint64_t dropped() const {
    uint64_t n = 0;
    for (const Ring& r : rings_) n += r.dropped.Get();
    return n;
  }

 private:
  struct alignas(64) Ring {
    std::atomic<uint64_t> tail{0};  // written by the producer
    Counter dropped;
    alignas(64) std::atomic<uint64_t> head{0};  // written by the consumer
    std::unique_ptr<T[]> slots;
  };
  size_t mask_;
  std::vector<Ring> rings_;
};

// One traced HTTP exchange as the PostgreSQL proxy joins it to the queries that carried its
// trace id (sqlcommenter `traceparent` comments): the trace id (lower-case hex, as on the
// wire), the route (a registry name: lives as long as the process) and how long the exchange
// took. Pushed by the worker at the record phase; drained by the pg join thread.
struct RouteTrace {
  char trace_id[32];
  const std::string* route;
  uint64_t duration_us;
};
// Only filled while a consumer wants it (`wanted`): a gateway without a postgres listener
// pays one relaxed load per traced exchange.
struct RouteTraceLog {
  RouteTraceLog(int workers, size_t capacity) : rings(workers, capacity) {}
  std::atomic<bool> wanted{false};
  SpscRings<RouteTrace> rings;
};

// A fast per-worker random source (xorshift128+), for sampling and ids; not for secrets.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed);
  uint64_t Next() {
    uint64_t x = s0_;
    const uint64_t y = s1_;
    s0_ = y;
    x ^= x << 23;
    s1_ = x ^ y ^ (x >> 17) ^ (y >> 26);
    return s1_ + y;
  }
  // True with probability `ratio` (0..1).
  bool Chance(double ratio) {
    if (ratio >= 1.0) return true;
    if (ratio <= 0.0) return false;
    return static_cast<double>(Next() >> 11) * 0x1.0p-53 < ratio;
  }

 private:
  uint64_t s0_, s1_;
};

}  // namespace ficus::observe
