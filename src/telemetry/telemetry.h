// ficus::telemetry — the memory that SLOs and reports are computed from: per-route and
// per-cluster rollups (10 s kept a day, 1 min kept 30 days), the event timeline, error samples
// and the admin audit trail, in one SQLite database (WAL) in the data directory. One
// background thread writes it; workers only ever touch lock-free bounded queues that drop and
// count rather than block.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/redact.h"
#include "observe/observe.h"

struct sqlite3;

namespace ficus::telemetry {

// ---------------------------------------------------------------------------------------------
// Sketches

// Per-bucket counts of observe::Histogram's log-linear buckets: merged by adding, stored as
// (gap, count) varint pairs of the non-empty buckets (a typical row is a few dozen bytes).
struct LatencyHistogram {
  static constexpr int kBuckets = observe::Histogram::kBuckets;
  std::array<uint64_t, kBuckets> buckets{};

  void Merge(const LatencyHistogram& o);
  uint64_t Count() const;
  bool Empty() const { return Count() == 0; }
  // The q-quantile (0 <= q <= 1) in microseconds, interpolated linearly inside its bucket
  // (so it is within one bucket, <= 50 % relative width, of the truth); 0 when empty. The
  // overflow bucket (> 1000 s) reports 1000 s.
  double PercentileMicros(double q) const;
  // Requests that took at most `micros` (latency SLOs: good events). Exact when `micros` is a
  // bucket edge ({1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8} x 10^k µs: 300 ms is); otherwise the
  // buckets entirely at or below it (an undercount within one bucket).
  uint64_t CountAtOrBelow(uint64_t micros) const;
  std::string Encode() const;
  // nullopt for bytes Encode could not have produced.
  static std::optional<LatencyHistogram> Decode(std::string_view bytes);
};

// HyperLogLog with 2^10 registers (observe::ClientSketch's layout): distinct-client estimates,
// mergeable across workers, intervals and routes. Standard error ~3.3 %; small counts use
// linear counting (exact-ish below a few hundred).
struct Hll {
  static constexpr int kPrecision = observe::ClientSketch::kPrecision;
  static constexpr int kRegisters = observe::ClientSketch::kRegisters;
  std::array<uint8_t, kRegisters> registers{};

  void AddHash(uint64_t hash);
  void Merge(const Hll& o);
  double Estimate() const;
  bool Empty() const;
  // Sparse ((gap, rank) pairs) or dense (one byte per register), whichever is smaller.
  std::string Encode() const;
  static std::optional<Hll> Decode(std::string_view bytes);
};

// ---------------------------------------------------------------------------------------------
// What the store keeps

// kSynthetic: per route, the requests of a running `ficus assess` (they are in the route's
// series too; SLOs use SloTotals, which subtracts them).
enum class SeriesKind : int { kRoute = 0, kCluster = 1, kEndpoint = 2, kSynthetic = 3 };
// "route", "cluster", "endpoint", "synthetic"
std::string_view SeriesKindName(SeriesKind kind);

// A cached route's cache counters (cache::RouteCounters): cumulative in SeriesTotals, per
// minute in the store's `cache_counts` table. See cache/cache.h for what each counts.
struct CacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t stale = 0;
  uint64_t stale_errors = 0;
  uint64_t revalidated = 0;
  uint64_t coalesced = 0;
  uint64_t bypassed = 0;
  bool Empty() const { return *this == CacheCounters{}; }
  bool operator==(const CacheCounters&) const = default;
  // The counts since `before` (a counter below its earlier value restarted: a reload gave the
  // route a new store; then all of it is new).
  CacheCounters Since(const CacheCounters& before) const;
  void Add(const CacheCounters& o);
};

// Cumulative totals of one series as the metrics registry has them (counters only grow), plus
// the clients seen since the previous take.
struct SeriesTotals {
  SeriesKind kind = SeriesKind::kRoute;
  std::string name;
  uint64_t requests = 0;
  uint64_t errors = 0;  // 5xx responses (routes); 5xx + connect failures + timeouts (clusters)
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  LatencyHistogram latency;  // cumulative
  Hll clients;               // since the previous take (not cumulative)
  // Heaviest client keys since the previous take (routes; a take only): key -> requests.
  std::vector<std::pair<std::string, uint64_t>> keys;
  // Client keys (same form) a rate limit or concurrency limit refused since the previous take.
  std::vector<std::pair<std::string, uint64_t>> limited;
  // Sampled GET/HEAD 200 responses since the previous take (routes; a take only): how many,
  // and how many repeated / changed the body last seen for the same request key.
  uint64_t repeat_sampled = 0;
  uint64_t repeat_repeated = 0;
  uint64_t repeat_changed = 0;
  // Routes with a cache: its counters (cumulative).
  std::optional<CacheCounters> cache;
};

// One interval of one series.
struct Rollup {
  SeriesKind kind = SeriesKind::kRoute;
  std::string name;
  int64_t ts_ms = 0;  // interval start (aligned to the resolution)
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  LatencyHistogram latency;
  Hll clients;
  void Merge(const Rollup& o);  // adds counts, merges sketches (kind/name/ts kept)
};

// `r` less `synthetic`, the same series' ficus-generated requests (SeriesKind::kSynthetic):
// requests, errors, bytes out and latency buckets, never below zero. What users sent.
void SubtractSynthetic(Rollup& r, const Rollup& synthetic);

enum class Resolution : int { k10s = 10'000, k1m = 60'000 };

struct Event {
  int64_t id = 0;  // assigned by the store
  int64_t ts_ms = 0;
  std::string kind;  // config_reload, health, ejection, breaker, deploy, ...
  std::string service;
  std::string version;
  std::string note;
};

struct ErrorSample {
  int64_t id = 0;
  int64_t ts_ms = 0;
  std::string route;
  int status = 0;
  std::string request_id;
  std::string request_head;   // as sent upstream, Authorization/Cookie redacted
  std::string response_head;  // as received (or generated), Set-Cookie redacted
};

struct AuditEntry {
  int64_t id = 0;
  int64_t ts_ms = 0;
  std::string who;      // "token" (the bearer token was valid) or "anonymous"
  std::string peer;     // client address of the admin request
  std::string action;   // "POST /events"
  std::string outcome;  // "ok", "unauthorized", "bad_request"
  std::string detail;
};

// One `ficus assess` result: the capacity knee of a route or scenario.
struct Assessment {
  int64_t id = 0;           // assigned by the store
  int64_t ts_ms = 0;        // when the step load started
  int64_t duration_ms = 0;  // how long it ran (reports leave this traffic out of peaks)
  std::string target;       // "route:NAME" or "scenario:FILE"
  double knee_rate = 0;     // highest req/s with p99 within the threshold and errors < 1 %
  double p99_ms = 0;        // p99 at the knee
  double error_ratio = 0;   // at the knee
  int steps = 0;            // steps tried
  double max_rate = 0;      // the envelope's rate
  std::string stop_reason;  // "envelope", "latency", "errors", "duration"
  std::string detail;       // the steps as JSON
};

// Requests of one client key (address, API key or user) on one route in one minute, from the
// proxy's per-worker heavy-hitter sketches (only keys that were heavy are kept).
struct ClientKeyCount {
  int64_t ts_ms = 0;  // minute start
  std::string route;
  std::string key;  // "key:VALUE" (X-Api-Key), "user:VALUE" (X-User), "addr:IP"
  uint64_t count = 0;
};

// Sampled GET/HEAD 200 responses of one route in one minute (the proxy's per-worker repeat
// sketches, 1 in telemetry.repeat_sample routed requests): how many had the same body as the
// previous sampled response to the same request key (repeated) and how many a different one;
// the rest of `sampled` were keys not seen before (or evicted from the sketch).
struct RepeatCount {
  int64_t ts_ms = 0;
  std::string route;
  uint64_t sampled = 0;
  uint64_t repeated = 0;
  uint64_t changed = 0;
};

// A cached route's cache counters in one minute.
struct CacheCount {
  int64_t ts_ms = 0;
  std::string route;
  CacheCounters counts;
};

// The database (pg/, the PostgreSQL proxy), one minute at a time, for the report's database
// section (db_store.cc). Rows with the same ts and key add up; the reads sum [from_ms, to_ms)
// per key (ts = from_ms).
// Queries per HTTP request: bucket i counts requests with at most kQueriesPerRequest[i]
// queries (and more than the bound before); the last bucket is everything above 100.
inline constexpr std::array<uint32_t, 9> kQueriesPerRequest = {0, 1, 2, 3, 5, 10, 20, 50, 100};
struct DbQuery {  // one normalised query (fingerprint)
  int64_t ts_ms = 0;
  uint64_t fingerprint = 0;
  std::string text;  // normalised: no literal, no parameter
  uint64_t calls = 0, errors = 0, rows = 0, total_us = 0;
  LatencyHistogram latency;
};
struct DbPool {  // one pool (database/user)
  int64_t ts_ms = 0;
  std::string pool;
  int64_t pool_size = 0;
  uint64_t waits = 0, wait_timeouts = 0, wait_rejected = 0, wait_us = 0;
  int64_t peak_waiting = 0, peak_open = 0;  // the highest sampled (reads: the maximum)
};
struct DbRoute {  // the HTTP requests of one route joined to their queries by trace id
  int64_t ts_ms = 0;
  std::string route;
  uint64_t requests = 0, with_queries = 0, queries = 0, db_us = 0, request_us = 0;
  std::array<uint64_t, kQueriesPerRequest.size() + 1> queries_per_request{};
};
struct DbRepeat {  // N+1: requests of a route that ran one fingerprint many times
  int64_t ts_ms = 0;
  std::string route;
  uint64_t fingerprint = 0;
  std::string text;
  uint64_t requests = 0, repeats = 0, max_repeats = 0;  // reads: max_repeats is the maximum
};
struct DbServer {  // one server of a database (its primary or a replica), sampled every 200 ms
  int64_t ts_ms = 0;
  std::string database, server;  // ficus's database name; host:port
  bool primary = false;
  uint64_t samples = 0, down = 0;  // samples taken, and of them with the server down
  int64_t max_lag_ms = -1;         // replicas: the highest replay lag sampled (-1: none known)
  uint64_t lag_sum_ms = 0, lag_samples = 0;  // for the mean lag
  uint64_t checks_failed = 0;
};
struct DbRollup {
  std::vector<DbQuery> queries;
  std::vector<DbPool> pools;
  std::vector<DbRoute> routes;
  std::vector<DbRepeat> repeats;
  std::vector<DbServer> servers;
  bool empty() const {
    return queries.empty() && pools.empty() && routes.empty() && repeats.empty() && servers.empty();
  }
};
// A fingerprint's plan as ficus captured it (EXPLAIN (FORMAT JSON) without ANALYZE of a
// sampled query; pg/plan_capture.cc) and the indexes it lacks (telemetry/db_plans.cc).
struct DbIndexAdvice {
  std::string table;
  std::vector<std::string> columns;
  std::string statement, reason;
};
struct DbPlan {
  int64_t ts_ms = 0;
  uint64_t fingerprint = 0;
  std::string text;  // the normalised query
  double total_cost = 0;
  std::string plan_json;  // bounded (kMaxPlanBytes); empty when it was longer
  std::vector<DbIndexAdvice> indexes;
};
inline constexpr size_t kMaxPlanBytes = 64 * 1024;

// Job queues (src/queue), per queue and minute: what was enqueued and finished, and the backlog
// as the minute's last tick saw it (table queue_minutes; telemetry/queues.cc).
// A queue's counters as the queue service keeps them (cumulative since it started) and its
// gauges now.
struct QueueTotals {
  std::string name;
  uint64_t enqueued = 0;
  uint64_t succeeded = 0, failed = 0, dead = 0;  // finished jobs by outcome
  uint64_t attempts = 0;
  int64_t depth = 0;          // unfinished jobs
  int64_t oldest_age_ms = 0;  // of the oldest unfinished job; 0 = none
  int64_t dead_letters = 0;   // dead jobs kept in the store
};
struct QueueMinute {
  int64_t ts_ms = 0;  // minute start
  std::string queue;
  uint64_t enqueued = 0, succeeded = 0, failed = 0, dead = 0, attempts = 0;
  int64_t depth = 0, oldest_age_ms = 0, dead_letters = 0;  // at the minute's last tick
};

// Error samples are redacted with RedactHead (base/redact.h) as they are copied out.

// ---------------------------------------------------------------------------------------------
// The store (SQLite). Thread-safe: one connection behind a mutex (the telemetry thread and
// the admin thread use it; never a worker). Methods throw std::runtime_error on SQLite errors.

struct StoreOptions {
  std::string path;                                 // database file; its directory must exist
  uint64_t max_bytes = 256ull << 20;                // database + WAL stay under this
  int64_t fine_retention_ms = 86'400'000;           // 10 s rollups
  int64_t coarse_retention_ms = 30 * 86'400'000ll;  // 1 min rollups
  uint32_t error_samples_per_route = 20;
  uint32_t max_events = 100'000;
  uint32_t max_audit = 100'000;
  // false: no fsync at all (synchronous=OFF), for tests that write days of data in seconds.
  bool durable = true;
};

class Store {
 public:
  explicit Store(StoreOptions options);  // opens or creates (schema, WAL)
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const StoreOptions& options() const { return options_; }

  // Rollups (an existing row with the same resolution, series and ts is replaced).
  void WriteRollups(Resolution res, const std::vector<Rollup>& rows);
  // Rows of `kind` with from_ms <= ts < to_ms, for the given names (empty = all), ordered by
  // ts then name.
  std::vector<Rollup> QueryRollups(Resolution res, SeriesKind kind,
                                   const std::vector<std::string>& names, int64_t from_ms,
                                   int64_t to_ms);
  // The rows above merged per series name (ts = from_ms).
  std::vector<Rollup> Totals(Resolution res, SeriesKind kind, const std::vector<std::string>& names,
                             int64_t from_ms, int64_t to_ms);

  // What the SLOs count per route: its Totals less its synthetic (`ficus assess`) Totals
  // (requests, errors and latency buckets; never below zero).
  std::vector<Rollup> SloTotals(Resolution res, int64_t from_ms, int64_t to_ms);

  // The rows above merged per series name and per period: one Rollup per (name, period start
  // aligned to period_ms) that has data, ordered by ts then name (reports: percentiles per
  // hour or day). REQUIRES: period_ms a multiple of the resolution.
  std::vector<Rollup> Periods(Resolution res, SeriesKind kind,
                              const std::vector<std::string>& names, int64_t from_ms, int64_t to_ms,
                              int64_t period_ms);

  int64_t AppendEvent(const Event& e);  // returns the id
  // Newest first: events with since_ms <= ts < until_ms, optionally of one kind.
  std::vector<Event> Events(int64_t since_ms, int64_t until_ms, std::string_view kind,
                            size_t limit);

  // Keeps the newest error_samples_per_route per route.
  void AppendErrorSamples(const std::vector<ErrorSample>& samples);
  std::vector<ErrorSample> ErrorSamples(std::string_view route, size_t limit);  // newest first

  // `ficus assess` results, oldest first, with since_ms <= ts < until_ms.
  int64_t AppendAssessment(const Assessment& a);
  std::vector<Assessment> Assessments(int64_t since_ms, int64_t until_ms);
  // Client keys and repeats (rows with the same ts and route [and key] add up). The queries
  // sum [from_ms, to_ms) per route (and key; heaviest first); ts = from_ms.
  void WriteClientKeys(const std::vector<ClientKeyCount>& rows);
  std::vector<ClientKeyCount> ClientKeys(int64_t from_ms, int64_t to_ms);
  void WriteRepeats(const std::vector<RepeatCount>& rows);
  std::vector<RepeatCount> Repeats(int64_t from_ms, int64_t to_ms);
  // Cache counters (rows with the same ts and route add up); the query sums
  // [from_ms, to_ms) per route, ts = from_ms.
  void WriteCacheCounts(const std::vector<CacheCount>& rows);
  std::vector<CacheCount> CacheCounts(int64_t from_ms, int64_t to_ms);
  // The database's minutes (db_store.cc).
  void WriteDb(const DbRollup& rows);
  DbRollup Db(int64_t from_ms, int64_t to_ms);
  void WriteDbPlan(const DbPlan& plan);
  // The newest plan of each fingerprint captured in [from_ms, to_ms).
  std::vector<DbPlan> DbPlans(int64_t from_ms, int64_t to_ms);
  // Client keys a rate limit or concurrency limit refused (table limited_keys), as client keys.
  void WriteLimitedKeys(const std::vector<ClientKeyCount>& rows);
  std::vector<ClientKeyCount> LimitedKeys(int64_t from_ms, int64_t to_ms);
  // Queue minutes: a row with the same (ts, queue) adds its counters and takes the gauges.
  // QueueMinutes: from_ms <= ts < to_ms, ordered by queue then ts.
  void WriteQueueMinutes(const std::vector<QueueMinute>& rows);
  std::vector<QueueMinute> QueueMinutes(int64_t from_ms, int64_t to_ms);

  int64_t AppendAudit(const AuditEntry& a);
  std::vector<AuditEntry> Audit(size_t limit);  // newest first

  // Age pruning (retention) and the size bound: when the database uses over 90 % of its share
  // of max_bytes (max_bytes less the WAL's allowance), deletes the oldest data down to 75 %,
  // then gives free pages back to the file system (incremental vacuum; the WAL is kept under
  // its allowance by journal_size_limit and frequent checkpoints). Returns the rows deleted
  // for the size bound.
  uint64_t Prune(int64_t now_ms);
  // Bytes of the database and WAL files on disk.
  uint64_t FileBytes() const;
  // Pages in use (excluding free pages) times the page size.
  uint64_t UsedBytes();

  // Consistent online copy of the database at `src` into the file `dest` (SQLite's backup API;
  // writers on `src` continue meanwhile). Restore is the same copy into the live database;
  // other connections see the restored contents at their next transaction.
  static void Copy(const std::string& src, const std::string& dest);

 private:
  void Exec(const char* sql);
  int64_t SeriesId(SeriesKind kind, std::string_view name);  // REQUIRES: mu_ held
  uint64_t PruneForSize();                                   // REQUIRES: mu_ held
  // The limited_keys and queue_minutes tables (limits_queues.cc): created when missing (an
  // older store gains them at open), pruned with the 1 min rollups. REQUIRES: mu_ held (prune).
  void CreateLimitAndQueueTables();
  void PruneLimitsAndQueues(int64_t before_ms);

  StoreOptions options_;
  std::mutex mu_;
  sqlite3* db_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Error samples from the workers: one single-producer ring per worker (fixed slots, memcpy
// only, no allocation), drained by the telemetry thread. A full ring drops and counts.

class ErrorSampler {
 public:
  static constexpr size_t kSlots = 16;
  static constexpr size_t kHeadBytes = 4096;  // longer heads are cut
  static constexpr size_t kRouteBytes = 64;
  static constexpr size_t kIdBytes = 128;

  explicit ErrorSampler(int workers);
  ~ErrorSampler();
  // Worker `worker` only. Never blocks, never allocates; false when the ring is full.
  bool Push(int worker, int64_t ts_ms, std::string_view route, int status,
            std::string_view request_id, std::string_view request_head,
            std::string_view response_head);
  // One consumer at a time (internally serialized). Redacts as it copies out.
  std::vector<ErrorSample> Drain();
  uint64_t dropped() const;

 private:
  struct Ring;
  std::vector<std::unique_ptr<Ring>> rings_;
  std::mutex drain_mu_;
};

// ---------------------------------------------------------------------------------------------
// Telemetry: the background thread.

struct WindowStats {
  SeriesKind kind = SeriesKind::kRoute;
  std::string name;
  int64_t window_ms = 0;
  double covered_s = 0;  // the part of the window ficus was running (rates divide by it)
  uint64_t requests = 0;
  uint64_t errors = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  double clients = 0;
  LatencyHistogram latency;
};

struct TelemetryOptions {
  StoreOptions store;
  int workers = 1;
  int64_t interval_ms = 10'000;
  int64_t drain_interval_ms = 250;  // events and error samples reach the store this often
};

class Telemetry {
 public:
  // Reads the cumulative totals of every series. `take_clients`: zero the client sketches as
  // they are read (the 10 s tick); false for a live look (admin stats).
  using Source = std::function<std::vector<SeriesTotals>(bool take_clients)>;
  using Clock = std::function<int64_t()>;  // wall milliseconds since the epoch

  // Opens the store (throws std::runtime_error when it cannot). `clock` empty = system clock.
  Telemetry(TelemetryOptions options, Source source, Clock clock = {});
  ~Telemetry();  // Stop()
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // The job queues' totals, taken at each tick into queue minutes (telemetry/queues.cc). Set
  // before Start.
  using QueueSource = std::function<std::vector<QueueTotals>()>;
  void SetQueueSource(QueueSource source) { queue_source_ = std::move(source); }

  // Starts the thread: every interval it ticks; every drain interval it drains queues.
  void Start();
  // Stops the thread after a last tick (the interval so far) and drain.
  void Stop();

  // One interval: deltas since the previous tick become the 10 s rows of the interval that
  // contains now - 1 ms (and the 1 min rows of every minute that just ended or is current),
  // then pruning. The first tick only takes the baseline. Thread-safe with itself and the
  // readers; tests call it directly with a fake clock.
  void Tick();
  // Moves queued events and error samples to the store.
  void Drain();

  // Any thread, never blocks (a bounded lock-free queue; full = dropped and counted). ts_ms 0
  // = now.
  void RecordEvent(Event e);
  ErrorSampler& error_sampler() { return sampler_; }
  Store& store() { return *store_; }
  int64_t Now() const { return clock_(); }

  // The last `window_ms` for every series of `kind`: the 10 s rows from the interval holding
  // now - window_ms on, plus what the live counters added since the last tick. covered_s is
  // the time those cover (while ficus has run for less than the window, the time it ran).
  std::vector<WindowStats> Window(SeriesKind kind, int64_t window_ms);

  uint64_t events_dropped() const { return events_dropped_.load(std::memory_order_relaxed); }
  int64_t started_ms() const { return started_ms_; }
  int64_t last_tick_ms() const;
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }

 private:
  struct EventQueue;
  void Run();
  void TickLocked(int64_t now);  // REQUIRES: tick_mu_ held
  // The queues' deltas since the last tick into the minute holding `ts`; the first call only
  // takes the baseline. REQUIRES: tick_mu_ held.
  void TickQueues(int64_t ts, bool baseline);

  TelemetryOptions options_;
  Source source_;
  Clock clock_;
  std::unique_ptr<Store> store_;
  ErrorSampler sampler_;
  std::unique_ptr<EventQueue> events_;
  std::mutex drain_mu_;  // one consumer of events_ at a time
  std::atomic<uint64_t> events_dropped_{0};
  std::atomic<uint64_t> write_errors_{0};
  int64_t started_ms_ = 0;

  mutable std::mutex tick_mu_;  // guards everything below
  bool have_baseline_ = false;
  int64_t last_tick_ms_ = 0;
  std::vector<SeriesTotals> previous_;  // cumulative totals at the last tick
  int64_t minute_open_ms_ = -1;         // the minute whose 1 min rows are still being built
  QueueSource queue_source_;
  std::vector<QueueTotals> previous_queues_;  // at the last tick

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ficus::telemetry
