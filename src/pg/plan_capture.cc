// Plans captured for the report (see internal/plan_capture.h).
#include "pg/internal/plan_capture.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "pg/internal/trace_join.h"

namespace ficus::pg::internal {

void PlanCapture::OnMinute(const telemetry::DbRollup& rows, int64_t now_ms) {
  std::erase_if(captured_, [&](const auto& kv) { return now_ms - kv.second >= kRecaptureMs; });
  // N+1 fingerprints first (their remedy names the index), by requests; then by total time
  // (rows.queries is sorted so).
  std::vector<const telemetry::DbRepeat*> repeats;
  for (const telemetry::DbRepeat& r : rows.repeats) repeats.push_back(&r);
  std::sort(repeats.begin(), repeats.end(),
            [](const auto* a, const auto* b) { return a->requests > b->requests; });
  std::vector<std::pair<uint64_t, std::string>> want;
  for (const auto* r : repeats) want.emplace_back(r->fingerprint, r->text);
  for (const telemetry::DbQuery& q : rows.queries) want.emplace_back(q.fingerprint, q.text);
  size_t started = 0;
  for (const auto& [fp, text] : want) {
    if (started >= kPerMinute || running_.size() >= kMaxRunning) break;
    if (captured_.contains(fp)) continue;
    if (std::any_of(running_.begin(), running_.end(),
                    [&](const Running& r) { return r.fingerprint == fp; }))
      continue;
    Running r;
    r.fingerprint = fp;
    r.text = text;
    r.started_ms = now_ms;
    r.plan = impl_.explain->Start(impl_, fp, /*analyze=*/false);
    running_.push_back(std::move(r));
    ++started;
  }
}

void PlanCapture::Poll(telemetry::Store* store, int64_t now_ms) {
  for (auto it = running_.begin(); it != running_.end();) {
    if (it->plan.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (now_ms - it->started_ms < kGiveUpMs) {
        ++it;
        continue;
      }
      log::warn("pg: plan capture: no plan for {} within {} ms", Hex(it->fingerprint), kGiveUpMs);
      captured_[it->fingerprint] = it->started_ms;
      it = running_.erase(it);
      continue;
    }
    Explainer::Plan plan = it->plan.get();
    // No sample (it is taken as the query runs again): asked again next minute. Any other
    // failure waits like a success, so a query the server cannot explain is not retried often.
    if (plan.status != 404) captured_[it->fingerprint] = it->started_ms;
    if (!plan.ok) {
      if (plan.status != 404)
        log::info("pg: plan capture: {}: {}", Hex(it->fingerprint), plan.error);
    } else if (store != nullptr) {
      Explainer::Advise(plan);
      telemetry::DbPlan row;
      row.ts_ms = now_ms;
      row.fingerprint = it->fingerprint;
      row.text = it->text;
      row.total_cost = plan.advice.total_cost;
      if (plan.json.size() <= telemetry::kMaxPlanBytes) row.plan_json = std::move(plan.json);
      for (IndexAdvice& a : plan.advice.indexes)
        row.indexes.push_back({a.table, a.columns, a.Statement(), std::move(a.reason)});
      try {
        store->WriteDbPlan(row);
      } catch (const std::exception& e) {  // the store (SQLite): logged, the capture goes on
        log::error("pg: plan capture: {}", e.what());
      }
    }
    it = running_.erase(it);
  }
}

}  // namespace ficus::pg::internal
