// Each server's health and replay lag as the database's minute rows (see ServerSampler in
// internal/trace_join.h): the checker (replicas.cc) keeps only the latest state; the join
// thread samples it every tick so that a replica down for 10 s of a minute, or lagging for a
// while, shows in the report.
#include <algorithm>

#include "pg/internal/trace_join.h"

namespace ficus::pg::internal {

void ServerSampler::Sample(const Service::Impl& impl) {
  std::lock_guard lock(impl.mu);
  for (const auto& [key, b] : impl.backends) {
    if (!b->checked.load(std::memory_order_relaxed)) continue;
    Acc& a = acc_[key];
    telemetry::DbServer& r = a.row;
    r.database = b->database;
    r.server = b->server;
    r.primary = b->primary;
    ++r.samples;
    const bool up = b->up.load(std::memory_order_relaxed);
    if (!up) ++r.down;
    const int64_t lag = b->lag_ms.load(std::memory_order_relaxed);
    if (up && !b->primary && lag >= 0) {
      r.max_lag_ms = std::max(r.max_lag_ms, lag);
      r.lag_sum_ms += static_cast<uint64_t>(lag);
      ++r.lag_samples;
    }
    a.checks_failed = b->checks_failed.load(std::memory_order_relaxed);
  }
}

void ServerSampler::Flush(int64_t ts_ms, std::vector<telemetry::DbServer>* out) {
  for (auto& [key, a] : acc_) {
    if (a.row.samples == 0) continue;
    telemetry::DbServer r = a.row;
    r.ts_ms = ts_ms;
    uint64_t& before = failed_[key];
    r.checks_failed = a.checks_failed - std::min(a.checks_failed, before);
    before = a.checks_failed;
    out->push_back(std::move(r));
    a.row = telemetry::DbServer{};
  }
}

}  // namespace ficus::pg::internal
