// Which HTTP route causes which queries: the join of each query's sqlcommenter trace id to the
// HTTP exchange that carried the same trace id (observe::RouteTraceLog), per route: queries per
// request, N+1 (one fingerprint repeated in one request), the database's share of the route's
// time. Also the minute rows of the database for the telemetry store (the report).
//
// Threads: workers only push into single-producer rings (a query with a trace id: pg workers;
// a traced exchange: HTTP workers), never lock, never allocate. Everything else runs on the
// join's own thread (every 200 ms) or on readers (/metrics, GET /pg), under `mu_`.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/json.h"
#include "pg/internal/service.h"
#include "telemetry/telemetry.h"

namespace ficus::pg::internal {

// One completed query that carried a trace id (pg worker -> join thread).
struct TraceQuery {
  char trace[32];
  uint64_t fingerprint;
  uint64_t micros;
};

// Per-fingerprint statistics merged over the workers (stats.cc).
struct MergedQuery {
  std::string text;
  uint64_t calls = 0, errors = 0, rows = 0, total_us = 0;
  observe::HistogramTotals latency;
};
std::vector<std::pair<uint64_t, MergedQuery>> MergeQueries(const Service::Impl& impl);
std::string Hex(uint64_t v);

// Up/down and replay lag of every checked server, sampled each join tick, as the minute's
// rows (server_minutes.cc). Join thread only.
class ServerSampler {
 public:
  void Sample(const Service::Impl& impl);  // REQUIRES: impl.mu not held
  void Flush(int64_t ts_ms, std::vector<telemetry::DbServer>* out);

 private:
  struct Acc {
    telemetry::DbServer row;
    uint64_t checks_failed = 0;  // cumulative, as last sampled
  };
  std::map<std::string, Acc> acc_;          // by "database|host:port"
  std::map<std::string, uint64_t> failed_;  // cumulative checks_failed at the last flush
};

class PlanCapture;  // plan_capture.h

class TraceJoin {
 public:
  // A request is an N+1 of a fingerprint when it ran it at least this many times.
  static constexpr uint32_t kNPlusOne = 5;
  static constexpr int64_t kTickMs = 200;
  // A trace whose HTTP exchange never showed up (the application is not behind ficus's HTTP
  // listener, or tracing is off) leaves the join table after this long.
  static constexpr int64_t kUnjoinedMs = 60'000;

  TraceJoin(Service::Impl& impl, int workers);
  ~TraceJoin();  // Stop()
  TraceJoin(const TraceJoin&) = delete;
  TraceJoin& operator=(const TraceJoin&) = delete;

  // Pg worker `worker` only: a completed query with a trace id (32 lower-case hex digits).
  void Note(int worker, std::string_view trace, uint64_t fingerprint, uint64_t micros) {
    TraceQuery q;
    std::memcpy(q.trace, trace.data(), sizeof q.trace);
    q.fingerprint = fingerprint;
    q.micros = micros;
    queries_.Push(worker, q);
  }
  // The HTTP side: the tracer's log of traced exchanges (null: none).
  void AttachRoutes(std::shared_ptr<observe::RouteTraceLog> log);
  // Where each minute's rows go (null: nowhere). The store must outlive Stop().
  void AttachStore(telemetry::Store* store);

  void Start();
  void Stop();  // the current minute reaches the store
  // One round: queries and exchanges drained, joined, expired; the minute rows written when a
  // minute ended. The thread calls it; tests call it with their own clock.
  void Tick(int64_t now_ms);
  // Writes the rows of the minute in progress (and starts the next); returns them.
  telemetry::DbRollup FlushMinute(int64_t ts_ms);

  void Collect(observe::MetricWriter& w);
  // GET /pg's "traces", "routes" and "n_plus_one" members.
  void WriteJson(JsonWriter& j);

 private:
  struct Key {
    uint64_t hi = 0, lo = 0;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.hi * 0x9E3779B97F4A7C15ull ^ k.lo; }
  };
  struct Trace {  // the queries of one trace id
    int64_t first_ms = 0;
    uint64_t queries = 0, micros = 0;
    std::vector<std::pair<uint64_t, uint32_t>> counts;  // fingerprint -> times (at most 64)
  };
  struct Repeat {
    uint64_t requests = 0, repeats = 0, max_repeats = 0;
  };
  struct RouteAgg {
    uint64_t requests = 0, with_queries = 0, queries = 0, db_us = 0, request_us = 0;
    std::array<uint64_t, telemetry::kQueriesPerRequest.size() + 1> qpr{};
    std::map<uint64_t, Repeat> repeats;  // by fingerprint
  };
  struct Joined {  // a recent trace for GET /pg
    Key key;
    std::string route;  // empty: no HTTP exchange seen for it
    uint64_t queries = 0, micros = 0, request_us = 0;
    uint64_t top_fp = 0;
    uint32_t top = 0;
  };

  void Run();
  void DrainQueries(int64_t now_ms);  // REQUIRES: mu_ held
  void Join(const observe::RouteTrace& t);
  void Remember(const Key& k, const Trace& t, std::string route, uint64_t request_us);
  static bool ParseKey(const char* hex, Key* out);
  static void KeyHex(const Key& k, char* out);

  Service::Impl& impl_;
  observe::SpscRings<TraceQuery> queries_;
  std::atomic<uint64_t> unparsable_{0};

  std::mutex mu_;  // guards everything below
  std::shared_ptr<observe::RouteTraceLog> routes_log_;
  telemetry::Store* store_ = nullptr;
  std::unordered_map<Key, Trace, KeyHash> pending_;
  std::deque<std::pair<Key, int64_t>> pending_order_;  // oldest first
  std::vector<observe::RouteTrace> held_;              // drained last round, joined this round
  std::deque<Joined> recent_;
  std::map<std::string, RouteAgg> routes_, minute_routes_;
  uint64_t joined_ = 0, unjoined_ = 0, evicted_ = 0;
  // The minute rows: the cumulative values at the last flush, and pool peaks since.
  int64_t minute_ms_ = -1;
  std::unordered_map<uint64_t, MergedQuery> flushed_queries_;
  struct PoolMark {
    uint64_t waits = 0, wait_timeouts = 0, wait_rejected = 0, wait_us = 0;
    int64_t peak_waiting = 0, peak_open = 0, pool_size = 0;
  };
  std::map<std::string, PoolMark> flushed_pools_, pool_peaks_;
  ServerSampler servers_;
  std::unique_ptr<PlanCapture> plans_;  // the join thread's (not under mu_)

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ficus::pg::internal
