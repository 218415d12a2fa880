// The database's tables in the store: per-minute rows of what the PostgreSQL proxy saw (query
// fingerprints, pools, HTTP routes joined to their queries, N+1 repeats), written by the pg
// join thread and read by the report's database section.
#include <map>
#include <tuple>

#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {

namespace internal {

const char* const kDbSchema = R"sql(
CREATE TABLE IF NOT EXISTS pg_queries(
  ts INTEGER NOT NULL, fingerprint INTEGER NOT NULL, text TEXT NOT NULL,
  calls INTEGER NOT NULL, errors INTEGER NOT NULL, rows INTEGER NOT NULL,
  total_us INTEGER NOT NULL, latency BLOB NOT NULL,
  PRIMARY KEY(ts, fingerprint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pg_pools(
  ts INTEGER NOT NULL, pool TEXT NOT NULL, pool_size INTEGER NOT NULL, waits INTEGER NOT NULL,
  wait_timeouts INTEGER NOT NULL, wait_rejected INTEGER NOT NULL, wait_us INTEGER NOT NULL,
  peak_waiting INTEGER NOT NULL, peak_open INTEGER NOT NULL,
  PRIMARY KEY(ts, pool)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pg_routes(
  ts INTEGER NOT NULL, route TEXT NOT NULL, requests INTEGER NOT NULL,
  with_queries INTEGER NOT NULL, queries INTEGER NOT NULL, db_us INTEGER NOT NULL,
  request_us INTEGER NOT NULL, queries_per_request TEXT NOT NULL,
  PRIMARY KEY(ts, route)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pg_repeats(
  ts INTEGER NOT NULL, route TEXT NOT NULL, fingerprint INTEGER NOT NULL, text TEXT NOT NULL,
  requests INTEGER NOT NULL, repeats INTEGER NOT NULL, max_repeats INTEGER NOT NULL,
  PRIMARY KEY(ts, route, fingerprint)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pg_servers(
  ts INTEGER NOT NULL, database TEXT NOT NULL, server TEXT NOT NULL, is_primary INTEGER NOT NULL,
  samples INTEGER NOT NULL, down INTEGER NOT NULL, max_lag_ms INTEGER NOT NULL,
  lag_sum_ms INTEGER NOT NULL, lag_samples INTEGER NOT NULL, checks_failed INTEGER NOT NULL,
  PRIMARY KEY(ts, database, server)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pg_plans(
  ts INTEGER NOT NULL, fingerprint INTEGER NOT NULL, text TEXT NOT NULL,
  total_cost REAL NOT NULL, plan TEXT NOT NULL, indexes TEXT NOT NULL,
  PRIMARY KEY(ts, fingerprint)) WITHOUT ROWID;
)sql";

// Kept as long as the 1 min rollups (Store::Prune binds ?1 to the oldest ts kept).
const char* const kDbPrune[6] = {
    "DELETE FROM pg_queries WHERE ts<?1", "DELETE FROM pg_pools WHERE ts<?1",
    "DELETE FROM pg_routes WHERE ts<?1",  "DELETE FROM pg_repeats WHERE ts<?1",
    "DELETE FROM pg_servers WHERE ts<?1", "DELETE FROM pg_plans WHERE ts<?1"};

}  // namespace internal

namespace {

using internal::Stmt;
using internal::Transaction;

int64_t I(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t U(int64_t v) { return static_cast<uint64_t>(v); }

// queries_per_request as "n0,n1,...": small, readable in the sqlite3 shell.
std::string EncodeCounts(const DbRoute& r) {
  std::string s;
  for (uint64_t n : r.queries_per_request) {
    if (!s.empty()) s += ',';
    s += std::to_string(n);
  }
  return s;
}

void AddCounts(std::string_view text, DbRoute& r) {
  size_t i = 0;
  for (uint64_t& n : r.queries_per_request) {
    uint64_t v = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') v = v * 10 + U(text[i++] - '0');
    n += v;
    if (i < text.size() && text[i] == ',') ++i;
  }
}

}  // namespace

void Store::WriteDb(const DbRollup& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  {
    // A fingerprint's minute written twice (a restart within the minute) merges its histogram.
    Stmt get(db_,
             "SELECT calls, errors, rows, total_us, latency FROM pg_queries "
             "WHERE ts=?1 AND fingerprint=?2");
    Stmt put(db_,
             "INSERT OR REPLACE INTO pg_queries(ts, fingerprint, text, calls, errors, rows, "
             "total_us, latency) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
    for (const DbQuery& q : rows.queries) {
      DbQuery m = q;
      get.Bind(1, q.ts_ms).Bind(2, I(q.fingerprint));
      if (get.Step()) {
        m.calls += U(get.Int(0));
        m.errors += U(get.Int(1));
        m.rows += U(get.Int(2));
        m.total_us += U(get.Int(3));
        if (auto h = LatencyHistogram::Decode(get.Blob(4))) m.latency.Merge(*h);
      }
      get.Reset();
      put.Bind(1, m.ts_ms).Bind(2, I(m.fingerprint)).Bind(3, m.text).Bind(4, I(m.calls));
      put.Bind(5, I(m.errors)).Bind(6, I(m.rows)).Bind(7, I(m.total_us));
      put.BindBlob(8, m.latency.Encode());
      put.Run();
      put.Reset();
    }
  }
  {
    Stmt put(db_,
             "INSERT INTO pg_pools(ts, pool, pool_size, waits, wait_timeouts, wait_rejected, "
             "wait_us, peak_waiting, peak_open) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) "
             "ON CONFLICT(ts, pool) DO UPDATE SET pool_size = excluded.pool_size, "
             "waits = waits + excluded.waits, wait_timeouts = wait_timeouts + "
             "excluded.wait_timeouts, wait_rejected = wait_rejected + excluded.wait_rejected, "
             "wait_us = wait_us + excluded.wait_us, "
             "peak_waiting = MAX(peak_waiting, excluded.peak_waiting), "
             "peak_open = MAX(peak_open, excluded.peak_open)");
    for (const DbPool& p : rows.pools) {
      put.Bind(1, p.ts_ms).Bind(2, p.pool).Bind(3, p.pool_size).Bind(4, I(p.waits));
      put.Bind(5, I(p.wait_timeouts)).Bind(6, I(p.wait_rejected)).Bind(7, I(p.wait_us));
      put.Bind(8, p.peak_waiting).Bind(9, p.peak_open);
      put.Run();
      put.Reset();
    }
  }
  {
    Stmt get(db_, "SELECT queries_per_request FROM pg_routes WHERE ts=?1 AND route=?2");
    Stmt put(db_,
             "INSERT INTO pg_routes(ts, route, requests, with_queries, queries, db_us, "
             "request_us, queries_per_request) VALUES(?1,?2,?3,?4,?5,?6,?7,?8) "
             "ON CONFLICT(ts, route) DO UPDATE SET requests = requests + excluded.requests, "
             "with_queries = with_queries + excluded.with_queries, "
             "queries = queries + excluded.queries, db_us = db_us + excluded.db_us, "
             "request_us = request_us + excluded.request_us, "
             "queries_per_request = excluded.queries_per_request");
    for (const DbRoute& r : rows.routes) {
      DbRoute m = r;  // the distribution merged here, the sums by the upsert
      get.Bind(1, r.ts_ms).Bind(2, r.route);
      if (get.Step()) AddCounts(get.Text(0), m);
      get.Reset();
      put.Bind(1, r.ts_ms).Bind(2, r.route).Bind(3, I(r.requests)).Bind(4, I(r.with_queries));
      put.Bind(5, I(r.queries)).Bind(6, I(r.db_us)).Bind(7, I(r.request_us));
      put.Bind(8, EncodeCounts(m));
      put.Run();
      put.Reset();
    }
  }
  {
    Stmt put(db_,
             "INSERT INTO pg_repeats(ts, route, fingerprint, text, requests, repeats, "
             "max_repeats) VALUES(?1,?2,?3,?4,?5,?6,?7) "
             "ON CONFLICT(ts, route, fingerprint) DO UPDATE SET "
             "requests = requests + excluded.requests, repeats = repeats + excluded.repeats, "
             "max_repeats = MAX(max_repeats, excluded.max_repeats)");
    for (const DbRepeat& r : rows.repeats) {
      put.Bind(1, r.ts_ms).Bind(2, r.route).Bind(3, I(r.fingerprint)).Bind(4, r.text);
      put.Bind(5, I(r.requests)).Bind(6, I(r.repeats)).Bind(7, I(r.max_repeats));
      put.Run();
      put.Reset();
    }
  }
  {
    Stmt put(db_,
             "INSERT INTO pg_servers(ts, database, server, is_primary, samples, down, max_lag_ms, "
             "lag_sum_ms, lag_samples, checks_failed) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
             "ON CONFLICT(ts, database, server) DO UPDATE SET is_primary = excluded.is_primary, "
             "samples = samples + excluded.samples, down = down + excluded.down, "
             "max_lag_ms = MAX(max_lag_ms, excluded.max_lag_ms), "
             "lag_sum_ms = lag_sum_ms + excluded.lag_sum_ms, "
             "lag_samples = lag_samples + excluded.lag_samples, "
             "checks_failed = checks_failed + excluded.checks_failed");
    for (const DbServer& v : rows.servers) {
      put.Bind(1, v.ts_ms).Bind(2, v.database).Bind(3, v.server).Bind(4, v.primary ? 1 : 0);
      put.Bind(5, I(v.samples)).Bind(6, I(v.down)).Bind(7, v.max_lag_ms);
      put.Bind(8, I(v.lag_sum_ms)).Bind(9, I(v.lag_samples)).Bind(10, I(v.checks_failed));
      put.Run();
      put.Reset();
    }
  }
  tx.Commit();
}

DbRollup Store::Db(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  DbRollup out;
  {
    std::map<uint64_t, DbQuery> by;
    Stmt q(db_,
           "SELECT fingerprint, text, calls, errors, rows, total_us, latency FROM pg_queries "
           "WHERE ts>=?1 AND ts<?2");
    q.Bind(1, from_ms).Bind(2, to_ms);
    while (q.Step()) {
      DbQuery& m = by[U(q.Int(0))];
      m.ts_ms = from_ms;
      m.fingerprint = U(q.Int(0));
      m.text = q.Text(1);
      m.calls += U(q.Int(2));
      m.errors += U(q.Int(3));
      m.rows += U(q.Int(4));
      m.total_us += U(q.Int(5));
      if (auto h = LatencyHistogram::Decode(q.Blob(6))) m.latency.Merge(*h);
    }
    for (auto& [k, v] : by) out.queries.push_back(std::move(v));
  }
  {
    Stmt q(db_,
           "SELECT pool, MAX(pool_size), SUM(waits), SUM(wait_timeouts), SUM(wait_rejected), "
           "SUM(wait_us), MAX(peak_waiting), MAX(peak_open) FROM pg_pools "
           "WHERE ts>=?1 AND ts<?2 GROUP BY pool ORDER BY pool");
    q.Bind(1, from_ms).Bind(2, to_ms);
    while (q.Step()) {
      out.pools.push_back(DbPool{from_ms, q.Text(0), q.Int(1), U(q.Int(2)), U(q.Int(3)),
                                 U(q.Int(4)), U(q.Int(5)), q.Int(6), q.Int(7)});
    }
  }
  {
    std::map<std::string, DbRoute> by;
    Stmt q(db_,
           "SELECT route, requests, with_queries, queries, db_us, request_us, "
           "queries_per_request FROM pg_routes WHERE ts>=?1 AND ts<?2");
    q.Bind(1, from_ms).Bind(2, to_ms);
    while (q.Step()) {
      DbRoute& m = by[q.Text(0)];
      m.ts_ms = from_ms;
      m.route = q.Text(0);
      m.requests += U(q.Int(1));
      m.with_queries += U(q.Int(2));
      m.queries += U(q.Int(3));
      m.db_us += U(q.Int(4));
      m.request_us += U(q.Int(5));
      AddCounts(q.Text(6), m);
    }
    for (auto& [k, v] : by) out.routes.push_back(std::move(v));
  }
  {
    Stmt q(db_,
           "SELECT route, fingerprint, MAX(text), SUM(requests), SUM(repeats), MAX(max_repeats) "
           "FROM pg_repeats WHERE ts>=?1 AND ts<?2 GROUP BY route, fingerprint "
           "ORDER BY route, fingerprint");
    q.Bind(1, from_ms).Bind(2, to_ms);
    while (q.Step()) {
      out.repeats.push_back(DbRepeat{from_ms, q.Text(0), U(q.Int(1)), q.Text(2), U(q.Int(3)),
                                     U(q.Int(4)), U(q.Int(5))});
    }
  }
  {
    Stmt q(db_,
           "SELECT database, server, MAX(is_primary), SUM(samples), SUM(down), MAX(max_lag_ms), "
           "SUM(lag_sum_ms), SUM(lag_samples), SUM(checks_failed) FROM pg_servers "
           "WHERE ts>=?1 AND ts<?2 GROUP BY database, server ORDER BY database, server");
    q.Bind(1, from_ms).Bind(2, to_ms);
    while (q.Step()) {
      out.servers.push_back(DbServer{from_ms, q.Text(0), q.Text(1), q.Int(2) != 0, U(q.Int(3)),
                                     U(q.Int(4)), q.Int(5), U(q.Int(6)), U(q.Int(7)), U(q.Int(8))});
    }
  }
  return out;
}

}  // namespace ficus::telemetry
