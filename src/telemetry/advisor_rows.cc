// The store's rows for the advisor: assessments, client keys, repeated bodies, and the cache
// counters of cached routes (schema and migrations in store.cc).
#include <sqlite3.h>

#include <string>
#include <vector>

#include "telemetry/internal/key_counts.h"
#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {

using internal::Stmt;
using internal::Transaction;

// ---- advisor data: assessments, client keys, repeats --------------------------------------

int64_t Store::AppendAssessment(const Assessment& a) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT INTO assessments(ts, target, knee_rate, p99_ms, error_ratio, steps, "
           "max_rate, stop_reason, detail, duration_ms) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)");
  put.Bind(1, a.ts_ms)
      .Bind(2, a.target)
      .BindReal(3, a.knee_rate)
      .BindReal(4, a.p99_ms)
      .BindReal(5, a.error_ratio)
      .Bind(6, static_cast<int64_t>(a.steps))
      .BindReal(7, a.max_rate)
      .Bind(8, a.stop_reason)
      .Bind(9, a.detail)
      .Bind(10, a.duration_ms)
      .Run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  tx.Commit();
  return id;
}

std::vector<Assessment> Store::Assessments(int64_t since_ms, int64_t until_ms) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT id, ts, target, knee_rate, p99_ms, error_ratio, steps, max_rate, stop_reason, "
         "detail, duration_ms FROM assessments WHERE ts>=?1 AND ts<?2 ORDER BY ts, id");
  q.Bind(1, since_ms).Bind(2, until_ms);
  std::vector<Assessment> out;
  while (q.Step()) {
    Assessment a;
    a.id = q.Int(0);
    a.ts_ms = q.Int(1);
    a.target = q.Text(2);
    a.knee_rate = q.Real(3);
    a.p99_ms = q.Real(4);
    a.error_ratio = q.Real(5);
    a.steps = static_cast<int>(q.Int(6));
    a.max_rate = q.Real(7);
    a.stop_reason = q.Text(8);
    a.detail = q.Text(9);
    a.duration_ms = q.Int(10);
    out.push_back(std::move(a));
  }
  return out;
}

namespace internal {

void WriteKeyCounts(sqlite3* db, std::string_view table, const std::vector<ClientKeyCount>& rows) {
  if (rows.empty()) return;
  Transaction tx(db);
  {
    const std::string sql = "INSERT INTO " + std::string(table) +
                            "(ts, route, key, count) VALUES(?1,?2,?3,?4) "
                            "ON CONFLICT(ts, route, key) DO UPDATE SET count = count + "
                            "excluded.count";
    Stmt put(db, sql.c_str());
    for (const auto& r : rows) {
      put.Bind(1, r.ts_ms).Bind(2, r.route).Bind(3, r.key).Bind(4, static_cast<int64_t>(r.count));
      put.Run();
      put.Reset();
    }
  }
  tx.Commit();
}

std::vector<ClientKeyCount> KeyCounts(sqlite3* db, std::string_view table, int64_t from_ms,
                                      int64_t to_ms) {
  const std::string sql = "SELECT route, key, SUM(count) AS n FROM " + std::string(table) +
                          " WHERE ts>=?1 AND ts<?2 GROUP BY route, key ORDER BY n DESC, route, key";
  Stmt q(db, sql.c_str());
  q.Bind(1, from_ms).Bind(2, to_ms);
  std::vector<ClientKeyCount> out;
  while (q.Step()) out.push_back({from_ms, q.Text(0), q.Text(1), static_cast<uint64_t>(q.Int(2))});
  return out;
}

}  // namespace internal

void Store::WriteClientKeys(const std::vector<ClientKeyCount>& rows) {
  std::lock_guard lock(mu_);
  internal::WriteKeyCounts(db_, "client_keys", rows);
}

std::vector<ClientKeyCount> Store::ClientKeys(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  return internal::KeyCounts(db_, "client_keys", from_ms, to_ms);
}

void Store::WriteRepeats(const std::vector<RepeatCount>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT INTO repeats(ts, route, sampled, repeated, changed) VALUES(?1,?2,?3,?4,?5) "
           "ON CONFLICT(ts, route) DO UPDATE SET sampled = sampled + excluded.sampled, "
           "repeated = repeated + excluded.repeated, changed = changed + excluded.changed");
  for (const auto& r : rows) {
    put.Bind(1, r.ts_ms)
        .Bind(2, r.route)
        .Bind(3, static_cast<int64_t>(r.sampled))
        .Bind(4, static_cast<int64_t>(r.repeated))
        .Bind(5, static_cast<int64_t>(r.changed));
    put.Run();
    put.Reset();
  }
  tx.Commit();
}

std::vector<RepeatCount> Store::Repeats(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT route, SUM(sampled), SUM(repeated), SUM(changed) FROM repeats "
         "WHERE ts>=?1 AND ts<?2 GROUP BY route ORDER BY route");
  q.Bind(1, from_ms).Bind(2, to_ms);
  std::vector<RepeatCount> out;
  while (q.Step()) {
    out.push_back(RepeatCount{from_ms, q.Text(0), static_cast<uint64_t>(q.Int(1)),
                              static_cast<uint64_t>(q.Int(2)), static_cast<uint64_t>(q.Int(3))});
  }
  return out;
}

// ---- cache counters (per minute, per cached route) ------------------------------------------

void Store::WriteCacheCounts(const std::vector<CacheCount>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT INTO cache_counts(ts, route, hits, misses, stale, stale_errors, revalidated, "
           "coalesced, bypassed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(ts, route) DO "
           "UPDATE SET hits = hits + excluded.hits, misses = misses + excluded.misses, "
           "stale = stale + excluded.stale, stale_errors = stale_errors + excluded.stale_errors, "
           "revalidated = revalidated + excluded.revalidated, "
           "coalesced = coalesced + excluded.coalesced, bypassed = bypassed + excluded.bypassed");
  for (const CacheCount& r : rows) {
    const CacheCounters& c = r.counts;
    put.Bind(1, r.ts_ms).Bind(2, r.route);
    int col = 3;
    for (uint64_t v :
         {c.hits, c.misses, c.stale, c.stale_errors, c.revalidated, c.coalesced, c.bypassed}) {
      put.Bind(col++, static_cast<int64_t>(v));
    }
    put.Run();
    put.Reset();
  }
  tx.Commit();
}

std::vector<CacheCount> Store::CacheCounts(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT route, SUM(hits), SUM(misses), SUM(stale), SUM(stale_errors), SUM(revalidated), "
         "SUM(coalesced), SUM(bypassed) FROM cache_counts WHERE ts>=?1 AND ts<?2 GROUP BY route "
         "ORDER BY route");
  q.Bind(1, from_ms).Bind(2, to_ms);
  std::vector<CacheCount> out;
  while (q.Step()) {
    auto n = [&q](int col) { return static_cast<uint64_t>(q.Int(col)); };
    out.push_back({from_ms, q.Text(0), {n(1), n(2), n(3), n(4), n(5), n(6), n(7)}});
  }
  return out;
}

}  // namespace ficus::telemetry
