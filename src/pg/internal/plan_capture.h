// Plans for the report, captured by ficus itself: each minute, the plans of a few fingerprints
// that matter (those seen as N+1 on a route, then the heaviest by total time) are asked for with
// EXPLAIN (FORMAT JSON) without ANALYZE (nothing runs: the planner's estimate, read-only,
// rolled back, with the statement timeout of EXPLAIN on demand), on a server connection of the
// query's own pool and its sampled parameters, and stored with their index advice in telemetry
// (pg_plans) for the report's database section.
//
// Bounded: at most kPerMinute started a minute, kMaxRunning at once, a fingerprint at most once
// every kRecaptureMs; off the hot path: worker 0 runs the EXPLAIN as one more client of the
// pool (it waits for a connection like any client), the join thread reads the result.
//
// Threads: the join thread only (TraceJoin::Tick and FlushMinute).
#pragma once

#include <cstdint>
#include <future>
#include <unordered_map>
#include <vector>

#include "pg/internal/explain.h"
#include "telemetry/telemetry.h"

namespace ficus::pg::internal {

class PlanCapture {
 public:
  static constexpr size_t kPerMinute = 3;
  static constexpr size_t kMaxRunning = 3;
  static constexpr int64_t kRecaptureMs = 10 * 60'000;
  static constexpr int64_t kGiveUpMs = Explainer::kStatementTimeoutMs + 20'000;

  explicit PlanCapture(Service::Impl& impl) : impl_(impl) {}

  // After a minute's rows were written (`now_ms`: wall clock): starts the EXPLAINs.
  void OnMinute(const telemetry::DbRollup& rows, int64_t now_ms);
  // Each join tick: plans that came back go to `store` (null: dropped) with their advice.
  void Poll(telemetry::Store* store, int64_t now_ms);
  size_t running() const { return running_.size(); }

 private:
  struct Running {
    uint64_t fingerprint = 0;
    std::string text;
    int64_t started_ms = 0;
    std::future<Explainer::Plan> plan;
  };
  Service::Impl& impl_;
  std::vector<Running> running_;
  std::unordered_map<uint64_t, int64_t> captured_;  // fingerprint -> when its plan was asked
};

}  // namespace ficus::pg::internal
