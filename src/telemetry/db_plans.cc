// The plans ficus captured for the heaviest query fingerprints (pg/plan_capture.cc) and the
// indexes each lacks, for the report's database section. Table pg_plans (created with the
// database's tables, db_store.cc): one row per fingerprint and capture; the indexes as text,
// one record per index (ASCII record/unit separators: names never hold them in practice, and a
// quoted name that does only splits its own advice).
#include <map>

#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {

namespace {

constexpr char kRecord = '\x1e', kUnit = '\x1f', kColumn = '\x1d';

std::string EncodeIndexes(const std::vector<DbIndexAdvice>& indexes) {
  std::string s;
  for (const DbIndexAdvice& a : indexes) {
    if (!s.empty()) s += kRecord;
    s += a.table;
    s += kUnit;
    for (size_t i = 0; i < a.columns.size(); ++i) {
      if (i) s += kColumn;
      s += a.columns[i];
    }
    s += kUnit;
    s += a.statement;
    s += kUnit;
    s += a.reason;
  }
  return s;
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t at = 0;
  for (;;) {
    const size_t end = s.find(sep, at);
    out.emplace_back(s.substr(at, end == std::string_view::npos ? end : end - at));
    if (end == std::string_view::npos) return out;
    at = end + 1;
  }
}

std::vector<DbIndexAdvice> DecodeIndexes(std::string_view s) {
  std::vector<DbIndexAdvice> out;
  for (const std::string& rec : Split(s, kRecord)) {
    std::vector<std::string> f = Split(rec, kUnit);
    if (f.size() != 4) continue;
    out.push_back({f[0], Split(f[1], kColumn), f[2], f[3]});
  }
  return out;
}

}  // namespace

void Store::WriteDbPlan(const DbPlan& p) {
  std::lock_guard lock(mu_);
  internal::Stmt put(db_,
                     "INSERT OR REPLACE INTO pg_plans(ts, fingerprint, text, total_cost, plan, "
                     "indexes) VALUES(?1,?2,?3,?4,?5,?6)");
  put.Bind(1, p.ts_ms).Bind(2, static_cast<int64_t>(p.fingerprint)).Bind(3, p.text);
  put.BindReal(4, p.total_cost);
  put.Bind(5, p.plan_json.size() <= kMaxPlanBytes ? p.plan_json : std::string());
  put.Bind(6, EncodeIndexes(p.indexes));
  put.Run();
}

std::vector<DbPlan> Store::DbPlans(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  std::map<uint64_t, DbPlan> newest;
  internal::Stmt q(db_,
                   "SELECT ts, fingerprint, text, total_cost, plan, indexes FROM pg_plans "
                   "WHERE ts>=?1 AND ts<?2 ORDER BY ts");
  q.Bind(1, from_ms).Bind(2, to_ms);
  while (q.Step()) {
    DbPlan p;
    p.ts_ms = q.Int(0);
    p.fingerprint = static_cast<uint64_t>(q.Int(1));
    p.text = q.Text(2);
    p.total_cost = q.Real(3);
    p.plan_json = q.Text(4);
    p.indexes = DecodeIndexes(q.Text(5));
    newest[p.fingerprint] = std::move(p);
  }
  std::vector<DbPlan> out;
  for (auto& [fp, p] : newest) out.push_back(std::move(p));
  return out;
}

}  // namespace ficus::telemetry
