// ficus::observe — what the gateway tells about itself: metrics with per-worker shards, the
// access log and request tracing.
//
// Metrics: a worker writes only its own cell (plain relaxed loads/stores, no RMW, no lock); a
// scrape merges the cells of every worker into a MetricsSnapshot. Stats objects are created
// at config load and never freed, so their addresses stay valid across reloads and counters
// stay monotonic (Prometheus requires it).
//
// Access log and traces: the worker copies a fixed-size POD ExchangeRecord into its own
// bounded single-producer ring (a full ring drops the record and counts it, never waits); one
// background thread per sink formats and writes (JSON Lines to a file) or exports (OTLP/HTTP
// JSON in batches). Nothing is formatted or allocated on the worker.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/latency_buckets.h"

namespace ficus::client {
class Client;  // client/client.h: the tracer's exporter connection
}  // namespace ficus::client

namespace ficus::observe {

constexpr int kMaxWorkers = 64;

// A counter written by one thread, read by any. On x86-64 a relaxed load+store is a plain mov.
class Counter {
 public:
  void Add(uint64_t n = 1) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// A gauge written by one thread (its worker's share of a process-wide value).
class Gauge {
 public:
  void Add(int64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  int64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Log-linear histogram of durations in microseconds: each power-of-ten decade from 1 µs to
// 1000 s is split into the buckets {1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k, so any recorded
// value is known within one bucket (<= 50 % relative width) and the decimal bounds Prometheus
// users expect (1ms, 5ms, 10ms, 25ms, 100ms, 250ms, 1s, ...) are exact bucket edges.
// Single writer (its worker), any number of readers.
//
// Bucket 10*k + j (k = 0..8, j = 0..9) covers (lo, hi] with hi = {1.5, 2, 2.5, 3, 4, 5, 6, 7,
// 8, 10}[j] x 10^k µs, Prometheus `le` semantics; bucket 0 also takes 0 and 1 µs, bucket 89
// ends at exactly 1000 s and bucket 90 is everything above (+Inf).
class Histogram {
 public:
  static constexpr int kDecades = latency_buckets::kDecades;  // 1 µs .. 1000 s
  static constexpr int kPerDecade = latency_buckets::kPerDecade;
  static constexpr int kBuckets = kDecades * kPerDecade + 1;  // + overflow bucket
  // Upper bound (inclusive, in µs) of bucket i; the last bucket is +Inf (UINT64_MAX). Values
  // are whole microseconds, so the two fractional bounds (1.5 µs and 2.5 µs) are given rounded
  // down (1 and 2), which classifies every integer exactly. REQUIRES: 0 <= i < kBuckets.
  static uint64_t UpperBoundMicros(int i);
  // The exact upper bound of bucket i in seconds (1.5e-6, 2e-6, ...); +Inf for the last.
  static double UpperBoundSeconds(int i);
  // The smallest i with micros <= UpperBoundMicros(i). A few integer operations, no division
  // and no floating point (bench/observe_bench.cc).
  static constexpr int BucketFor(uint64_t micros);

  void Record(uint64_t micros) { RecordInBucket(BucketFor(micros), micros); }
  // For one value recorded in several histograms: the bucket is computed once by the caller.
  // REQUIRES: bucket == BucketFor(micros).
  void RecordInBucket(int bucket, uint64_t micros) {
    buckets_[bucket].Add(1);
    sum_micros_.Add(micros);
  }
  uint64_t Bucket(int i) const { return buckets_[i].Get(); }
  uint64_t SumMicros() const { return sum_micros_.Get(); }
  uint64_t Count() const;

 private:
  std::array<Counter, kBuckets> buckets_{};
  Counter sum_micros_;
};

namespace internal {
// The layout's tables live in base (the config reader checks SLO thresholds against them).
using latency_buckets::kDecadeBounds;
using latency_buckets::kPow10;
using latency_buckets::kTwiceMantissa;
}  // namespace internal

constexpr int Histogram::BucketFor(uint64_t micros) {
  if (micros > internal::kPow10[kDecades]) [[unlikely]] {
    return kBuckets - 1;  // over 1000 s
  }
  // Decade k holds (10^k, 10^(k+1)] µs, so k = floor(log10(micros - 1)) (0 for 0 and 1 µs).
  // `| 1` keeps x >= 1 and never changes its digit count (10^n - 1 is odd). floor(log10) from
  // the bit width: 1233 / 4096 ~ log10(2), corrected by one power-of-ten comparison.
  uint64_t x = (micros - (micros != 0)) | 1;
  int t = (std::bit_width(x) * 1233) >> 12;
  int k = t - (x < internal::kPow10[t]);
  // Within the decade: count the bounds below micros. Nine independent compares, written out
  // because g++ -O2 does not unroll the loop form (measured slower).
  const auto& b = internal::kDecadeBounds[k];
  int j = (b[0] < micros) + (b[1] < micros) + (b[2] < micros) + (b[3] < micros) + (b[4] < micros) +
          (b[5] < micros) + (b[6] < micros) + (b[7] < micros) + (b[8] < micros);
  return k * kPerDecade + j;
}

// Status classes 1xx..5xx -> 0..4.
inline int StatusClassIndex(int status) {
  int c = status / 100 - 1;
  return c < 0 ? 0 : (c > 4 ? 4 : c);
}

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

// Requests of a route that carried the valid `ficus assess` secret (SyntheticKey), in one
// worker; also counted in the cell's ordinary counters.
struct SyntheticCounts {
  Counter requests;
  Counter errors;          // 5xx sent downstream
  Histogram duration;      // request start -> response complete
  Counter response_bytes;  // body bytes sent to the client
};

// Traffic seen by a route, a cluster or an endpoint, in one worker. Recorded in the proxy's
// record phase (in_flight when the exchange reaches the route/cluster/endpoint).
struct alignas(64) TrafficCell {
  Counter requests;
  Gauge in_flight;
  std::array<Counter, 5> responses;  // by status class of the response sent downstream
  CodeCounters codes;                // by status code
  Counter request_bytes;             // body bytes received from the client
  Counter response_bytes;            // body bytes sent to the client
  Histogram duration;                // request start -> response complete
  Histogram upstream_connect;        // per new upstream connection: connect() time
  Histogram upstream_first_byte;     // request head sent upstream -> first response byte
  ClientSketch clients;              // distinct client keys (routes only; telemetry)
  KeySketch keys;                    // heaviest client keys (routes only; telemetry)
  KeySketch limited;                 // keys a rate/concurrency limit refused (routes; telemetry)
  RepeatSketch repeats;              // sampled GET 200 body repeats (routes only; telemetry)
  SyntheticCounts synthetic;         // `ficus assess` requests (routes only; kept out of SLOs)
};
using RouteCell = TrafficCell;

// A route's, cluster's or endpoint's cells (one per worker). `name` is the route or cluster
// name, or the endpoint's address (then `cluster` names its cluster).
struct TrafficStats {
  TrafficStats(std::string name, std::string cluster, int workers);
  std::string name;
  std::string cluster;
  std::unique_ptr<TrafficCell[]> cells;
  bool configured = true;  // in the running config (Registry::SetConfigured; under its lock)
  TrafficCell& Cell(int worker) { return cells[worker]; }
};
using RouteStats = TrafficStats;

struct alignas(64) ClusterCell {
  Counter requests;                  // upstream attempts
  std::array<Counter, 5> responses;  // by status class of the upstream response
  Counter connect_failures;
  Counter timeouts;  // upstream response timeouts
  Counter connections_opened;
  Counter connections_reused;  // requests sent on a pooled connection
  Gauge idle_connections;      // in this worker's pools
};

struct ClusterStats {
  ClusterStats(std::string name, int workers);
  std::string name;
  std::unique_ptr<ClusterCell[]> cells;
  TrafficStats traffic;  // the requests routed to the cluster, as TrafficStats
  ClusterCell& Cell(int worker) { return cells[worker]; }
};

struct alignas(64) ServerCell {
  Gauge active_connections;  // downstream
  Counter connections_accepted;
  Counter connections_rejected;  // over limits.max_connections
  Counter requests;              // every request head parsed or rejected
  std::array<Counter, 5> responses;
  Counter parse_errors;   // 4xx/5xx answered before routing
  Counter head_timeouts;  // 408
  Counter no_route;       // 404 from the router
};

// --- snapshots: every worker's cells merged (what a scrape, or the telemetry store, reads) ---

struct HistogramTotals {
  std::array<uint64_t, Histogram::kBuckets> buckets{};  // per bucket, not cumulative
  uint64_t sum_micros = 0;
  uint64_t Count() const;
  void Add(const Histogram& h);
};

struct TrafficTotals {
  std::string name;
  std::string cluster;  // endpoints only
  uint64_t requests = 0;
  int64_t in_flight = 0;
  std::array<uint64_t, 5> responses{};
  std::vector<std::pair<int, uint64_t>> codes;  // ascending; code 0 = other (past the slots)
  uint64_t request_bytes = 0;
  uint64_t response_bytes = 0;
  HistogramTotals duration, upstream_connect, upstream_first_byte;
};

struct ClusterTotals {
  TrafficTotals traffic;
  uint64_t upstream_requests = 0;
  std::array<uint64_t, 5> upstream_responses{};
  uint64_t connect_failures = 0;
  uint64_t timeouts = 0;
  uint64_t connections_opened = 0;
  uint64_t connections_reused = 0;
  int64_t idle_connections = 0;
};

struct ServerTotals {
  int64_t active_connections = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;
  uint64_t requests = 0;
  std::array<uint64_t, 5> responses{};
  uint64_t parse_errors = 0;
  uint64_t head_timeouts = 0;
  uint64_t no_route = 0;
};

struct MetricsSnapshot {
  ServerTotals server;
  std::vector<TrafficTotals> routes;     // in registration order
  std::vector<ClusterTotals> clusters;   // in registration order
  std::vector<TrafficTotals> endpoints;  // in registration order (cluster, address)
};

// The process as the kernel sees it (read from /proc at scrape time).
struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;
  double start_time_seconds = 0;  // since the Unix epoch
};
ProcessStats ReadProcessStats();

// --- Prometheus text exposition (format 0.0.4) -----------------------------------------------

struct Label {
  std::string_view name;
  std::string_view value;
};

// Writes families and samples into `out`. Each family: Family() once, then its samples.
// Used by the registry and by collectors other modules register (AddCollector).
class MetricWriter {
 public:
  explicit MetricWriter(std::string& out) : out_(out) {}
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, std::initializer_list<Label> labels, uint64_t v);
  void GaugeSample(std::string_view name, std::initializer_list<Label> labels, int64_t v);
  void DoubleSample(std::string_view name, std::initializer_list<Label> labels, double v);
  // One histogram series: cumulative buckets at the exported bounds (and at `extra_le`, bucket
  // edges in µs, ascending: the SLO latency thresholds) and +Inf, _sum (s), _count. `labels`
  // must not contain "le".
  void HistogramSeries(std::string_view name, std::initializer_list<Label> labels,
                       const HistogramTotals& h, std::span<const uint64_t> extra_le = {});

 private:
  void Begin(std::string_view name, std::initializer_list<Label> labels, std::string_view suffix,
             const Label* extra = nullptr);
  std::string& out_;
};

// The `le` label value of a bucket bound in µs, as /metrics writes it: 2'000'000 -> "2",
// 300'000 -> "0.3", 2'500 -> "0.0025" (exact decimal seconds). What rules must match.
std::string PrometheusLe(uint64_t micros);

// Owns every stats object. Route()/Cluster()/Endpoint() are called at config load (any
// thread, locked); the returned pointers stay valid for the registry's life. Collect() and
// Render() may run concurrently with workers writing their cells.
class Registry {
 public:
  explicit Registry(int workers);
  ~Registry();
  int workers() const { return workers_; }
  RouteStats* Route(std::string_view name);
  ClusterStats* Cluster(std::string_view name);
  TrafficStats* Endpoint(std::string_view cluster, std::string_view address);
  ServerCell& Server(int worker) { return server_[worker]; }
  // The running assessment's secret (admin thread writes, workers read).
  SyntheticKey& synthetic() { return synthetic_; }

  // Calls `f` for every registered route / cluster, under the registry's lock (so `f` must
  // not call Route() or Cluster()). For readers that fold the cells themselves (telemetry).
  void ForEachRoute(const std::function<void(RouteStats&)>& f);
  void ForEachCluster(const std::function<void(ClusterStats&)>& f);
  void ForEachEndpoint(const std::function<void(TrafficStats&)>& f);

  // Which registered series the running config has: the listed ones. Collect() leaves the
  // others out, so a route, cluster or endpoint a reload removed stops being exported. Its
  // objects stay (workers still on the previous snapshot may write to them) and are exported
  // again, counters continuing, if a later config brings the name back. The telemetry store's
  // readers (ForEach*) still see every series: its windows age out by themselves.
  void SetConfigured(std::span<const RouteStats* const> routes,
                     std::span<const ClusterStats* const> clusters,
                     std::span<const TrafficStats* const> endpoints);
  // Extra `le` bounds (µs; bucket edges: see base/latency_buckets.h) of every route's
  // ficus_route_request_duration_seconds: the running config's SLO latency thresholds, so
  // PromQL over /metrics counts them exactly. Set at each config apply.
  void SetRouteLatencyBounds(std::vector<uint64_t> micros);

  // Every worker's cells merged, for the series in the running config.
  MetricsSnapshot Collect() const;

  // Extra families rendered after the built-in ones, in registration order (other modules'
  // counters: health, retries, breakers; the access log's and tracer's own counters). The
  // function runs on the scraping thread and must only read.
  void AddCollector(std::function<void(MetricWriter&)> collector);

  // Prometheus text exposition format 0.0.4 for everything registered, plus process metrics
  // and ficus_build_info.
  std::string RenderPrometheus() const;

 private:
  int workers_;
  mutable std::mutex mu_;  // guards the deques' structure (not the cells) and collectors_
  std::deque<RouteStats> routes_;
  std::deque<ClusterStats> clusters_;
  std::deque<TrafficStats> endpoints_;
  std::vector<std::function<void(MetricWriter&)>> collectors_;
  std::vector<uint64_t> route_latency_bounds_;  // guarded by mu_; ascending, unique
  std::array<ServerCell, kMaxWorkers> server_{};
  SyntheticKey synthetic_;
};

// --- the exchange record: what the access log and a trace span are made of ------------------

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

// --- access log ------------------------------------------------------------------------------

// The fields a line may carry, in the order they are written.
enum class LogField : uint8_t {
  kTime,
  kRequestId,
  kTraceId,
  kClient,
  kMethod,
  kHost,
  kPath,
  kRoute,
  kCluster,
  kEndpoint,
  kStatus,
  kBytesIn,
  kBytesOut,
  kDurationUs,
  kConnectUs,
  kFirstByteUs,
  kRetries,
  kUserAgent,
  kError,
  kConsumer,
  kTermination,
};
inline constexpr int kLogFieldCount = 21;
// The field's JSON key ("time", "request_id", ...); LogFieldByName is its inverse.
std::string_view LogFieldName(LogField f);
bool LogFieldByName(std::string_view name, LogField* out);

struct AccessLogOptions {
  std::string path;              // a file (appended to), or "stdout"
  std::vector<LogField> fields;  // empty = all, in declaration order
  double sample = 1.0;           // share of exchanges logged, 0..1
  size_t ring_capacity = 2048;   // records per worker (power of two)
};

// JSON Lines access log. Workers call Sample() then Submit(); a background thread formats and
// writes. Reopen() (SIGUSR1) makes the writer close and reopen the path: rotate by renaming the
// file, then signal. Only the fields above are written: no header other than Host and
// User-Agent is ever read, so credentials (Authorization, Cookie) cannot leak into it.
class AccessLog {
 public:
  // Opens the file (error text on failure) and starts the writer thread.
  static std::unique_ptr<AccessLog> Open(const AccessLogOptions& options, int workers,
                                         std::string* error);
  ~AccessLog();  // stops the writer after writing what is queued
  bool Sample(int worker) { return rng_[worker].value.Chance(options_.sample); }
  void Submit(int worker, const ExchangeRecord& r) { rings_.Push(worker, r); }
  void Reopen() { reopen_.store(true, std::memory_order_release); }
  // Waits until every record submitted before the call is written (tests, shutdown).
  void Flush();
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return rings_.dropped(); }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t reopens() const { return reopens_.load(std::memory_order_relaxed); }
  // Formats one record as a line (with '\n') per the options; the writer's formatter.
  static void FormatLine(const ExchangeRecord& r, const std::vector<LogField>& fields,
                         int64_t unix_offset_ns, std::string& out);
  // The most bytes FormatLine writes for `r`: it sizes the line once with this.
  static size_t MaxLineBytes(const ExchangeRecord& r, const std::vector<LogField>& fields);
  // ficus_access_log_* families.
  void Collect(MetricWriter& w) const;

 private:
  AccessLog(const AccessLogOptions& options, int workers, int fd);
  void Run();
  bool OpenFile(std::string* error);
  struct alignas(64) PaddedRandom {
    FastRandom value{0};
  };
  AccessLogOptions options_;
  RecordRings rings_;
  std::unique_ptr<PaddedRandom[]> rng_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> reopens_{0};
  std::atomic<uint64_t> consumed_{0};
  std::atomic<int> flush_{0};  // Flush() callers waiting: write without delay
  std::thread thread_;
};

// --- tracing ---------------------------------------------------------------------------------

struct TracerOptions {
  std::string endpoint;  // http(s)://host:port/path (OTLP/HTTP JSON, e.g. /v1/traces)
  std::string ca_file;   // https: CAs to trust instead of the system store
  double sample = 0.01;  // ratio for traces ficus starts (parent-based otherwise)
  std::string service_name = "ficus";
  size_t batch_size = 512;           // spans per export request at most
  int64_t flush_interval_ms = 1000;  // a partial batch waits at most this long
  int64_t timeout_ms = 2000;         // per export request (connect + send + response)
  size_t ring_capacity = 1024;       // records per worker (power of two)
};

// Spans for sampled exchanges: one server span per exchange with its phases as events and the
// upstream attempt as a child (client) span, exported as OTLP/HTTP JSON by a background thread.
// When the collector is down or slow, batches are dropped and counted; workers never wait.
class Tracer {
 public:
  // Validates the endpoint URL and starts the exporter thread.
  static std::unique_ptr<Tracer> Start(const TracerOptions& options, int workers,
                                       std::string* error);
  ~Tracer();  // exports what is queued (one attempt) and stops

  // New ids for an exchange: continues `parent` (trace id + span id) when given, else starts a
  // trace. Parent-based sampling: a parent's sampled flag decides; a new trace is sampled with
  // probability options.sample, decided from the trace id (so every hop agrees).
  void Begin(int worker, const uint8_t* parent_trace_id, const uint8_t* parent_span_id,
             bool parent_sampled, TraceIds* out);
  void Submit(int worker, const ExchangeRecord& r) { rings_.Push(worker, r); }
  void Flush();  // waits until what was submitted before has been exported or dropped
  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t dropped() const {
    return rings_.dropped() + export_dropped_.load(std::memory_order_relaxed);
  }
  // The OTLP JSON body for a batch (ExportTraceServiceRequest).
  static void FormatBatch(const std::vector<ExchangeRecord>& batch, std::string_view service,
                          int64_t unix_offset_ns, std::string& out);
  // ficus_trace_* families.
  void Collect(MetricWriter& w) const;
  // Traced exchanges' routes, for the PostgreSQL proxy's query-to-route join (pg/). Shared:
  // the join may outlive the tracer by a moment at shutdown.
  const std::shared_ptr<RouteTraceLog>& route_log() const { return route_log_; }
  void NoteRoute(int worker, const char* trace_hex, const std::string* route, uint64_t micros) {
    if (!route_log_->wanted.load(std::memory_order_relaxed)) return;
    RouteTrace t;
    std::memcpy(t.trace_id, trace_hex, sizeof t.trace_id);
    t.route = route;
    t.duration_us = micros;
    route_log_->rings.Push(worker, t);
  }

 private:
  Tracer(const TracerOptions& options, int workers);
  void Run();
  // One POST on the client's kept-alive connection. True when the collector answered 2xx.
  bool Export(const std::string& body);
  struct alignas(64) PaddedRandom {
    FastRandom value{0};
  };
  TracerOptions options_;
  std::unique_ptr<client::Client> client_;  // the exporter thread's only
  uint64_t threshold_ = 0;  // sample a new trace when its low 64 bits are below this
  RecordRings rings_;
  std::unique_ptr<PaddedRandom[]> rng_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> export_dropped_{0};
  std::atomic<uint64_t> export_failures_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> connections_{0};  // connections opened to the collector
  std::shared_ptr<RouteTraceLog> route_log_;
  std::thread thread_;
};

}  // namespace ficus::observe
