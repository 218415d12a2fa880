// Two of the report's inputs, in tables of their own: the client keys a rate limit or
// concurrency limit refused (limited_keys, per route and minute, like client_keys), and the job
// queues' minutes (queue_minutes: enqueued, finished by outcome, attempts, and the backlog as
// the minute's last tick saw it). Both tables are created when missing, so a store written by
// an older ficus gains them at open and keeps everything it had; both are kept as long as the
// 1 min rollups.
#include <sqlite3.h>

#include <map>
#include <stdexcept>

#include "telemetry/telemetry.h"

namespace ficus::telemetry {
namespace {

constexpr const char* kTables = R"sql(
CREATE TABLE IF NOT EXISTS limited_keys(
  ts INTEGER NOT NULL, route TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(ts, route, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS queue_minutes(
  ts INTEGER NOT NULL, queue TEXT NOT NULL,
  enqueued INTEGER NOT NULL, succeeded INTEGER NOT NULL, failed INTEGER NOT NULL,
  dead INTEGER NOT NULL, attempts INTEGER NOT NULL,
  depth INTEGER NOT NULL, oldest_age_ms INTEGER NOT NULL, dead_letters INTEGER NOT NULL,
  PRIMARY KEY(ts, queue)) WITHOUT ROWID;
)sql";

// One statement, bound by position, stepped to its end (or row by row through `row`).
class Query {
 public:
  Query(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) Fail("prepare");
  }
  ~Query() { sqlite3_finalize(s_); }
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& Int(int i, int64_t v) {
    if (sqlite3_bind_int64(s_, i, v) != SQLITE_OK) Fail("bind");
    return *this;
  }
  Query& Text(int i, std::string_view v) {
    if (sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT) !=
        SQLITE_OK)
      Fail("bind");
    return *this;
  }
  bool Next() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) Fail("step");
    sqlite3_reset(s_);
    return false;
  }
  int64_t Col(int c) { return sqlite3_column_int64(s_, c); }
  std::string ColText(int c) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw std::runtime_error(std::string("telemetry store: ") + what + ": " + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// A counter's growth since the previous take; a counter that went back (the queue's service was
// started again) counts from zero.
uint64_t Delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

}  // namespace

void Store::CreateLimitAndQueueTables() { Exec(kTables); }

void Store::PruneLimitsAndQueues(int64_t before_ms) {
  for (const char* sql :
       {"DELETE FROM limited_keys WHERE ts<?1", "DELETE FROM queue_minutes WHERE ts<?1"}) {
    Query q(db_, sql);
    q.Int(1, before_ms).Next();
  }
}

void Store::WriteLimitedKeys(const std::vector<ClientKeyCount>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Exec("BEGIN IMMEDIATE");
  try {
    Query put(db_,
              "INSERT INTO limited_keys(ts, route, key, count) VALUES(?1,?2,?3,?4) "
              "ON CONFLICT(ts, route, key) DO UPDATE SET count = count + excluded.count");
    for (const auto& r : rows) {
      put.Int(1, r.ts_ms).Text(2, r.route).Text(3, r.key).Int(4, static_cast<int64_t>(r.count));
      put.Next();
    }
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<ClientKeyCount> Store::LimitedKeys(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Query q(db_,
          "SELECT route, key, SUM(count) AS n FROM limited_keys WHERE ts>=?1 AND ts<?2 "
          "GROUP BY route, key ORDER BY n DESC, route, key");
  q.Int(1, from_ms).Int(2, to_ms);
  std::vector<ClientKeyCount> out;
  while (q.Next())
    out.push_back({from_ms, q.ColText(0), q.ColText(1), static_cast<uint64_t>(q.Col(2))});
  return out;
}

void Store::WriteQueueMinutes(const std::vector<QueueMinute>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Exec("BEGIN IMMEDIATE");
  try {
    // Ticks come in time order: the later tick's gauges are the minute's last word.
    Query put(db_,
              "INSERT INTO queue_minutes(ts, queue, enqueued, succeeded, failed, dead, attempts, "
              "depth, oldest_age_ms, dead_letters) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
              "ON CONFLICT(ts, queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, "
              "succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, "
              "dead = dead + excluded.dead, attempts = attempts + excluded.attempts, "
              "depth = excluded.depth, oldest_age_ms = excluded.oldest_age_ms, "
              "dead_letters = excluded.dead_letters");
    for (const QueueMinute& r : rows) {
      put.Int(1, r.ts_ms).Text(2, r.queue);
      put.Int(3, static_cast<int64_t>(r.enqueued)).Int(4, static_cast<int64_t>(r.succeeded));
      put.Int(5, static_cast<int64_t>(r.failed)).Int(6, static_cast<int64_t>(r.dead));
      put.Int(7, static_cast<int64_t>(r.attempts)).Int(8, r.depth).Int(9, r.oldest_age_ms);
      put.Int(10, r.dead_letters).Next();
    }
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<QueueMinute> Store::QueueMinutes(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Query q(db_,
          "SELECT ts, queue, enqueued, succeeded, failed, dead, attempts, depth, oldest_age_ms, "
          "dead_letters FROM queue_minutes WHERE ts>=?1 AND ts<?2 ORDER BY queue, ts");
  q.Int(1, from_ms).Int(2, to_ms);
  std::vector<QueueMinute> out;
  while (q.Next()) {
    QueueMinute m;
    m.ts_ms = q.Col(0);
    m.queue = q.ColText(1);
    m.enqueued = static_cast<uint64_t>(q.Col(2));
    m.succeeded = static_cast<uint64_t>(q.Col(3));
    m.failed = static_cast<uint64_t>(q.Col(4));
    m.dead = static_cast<uint64_t>(q.Col(5));
    m.attempts = static_cast<uint64_t>(q.Col(6));
    m.depth = q.Col(7);
    m.oldest_age_ms = q.Col(8);
    m.dead_letters = q.Col(9);
    out.push_back(std::move(m));
  }
  return out;
}

void Telemetry::TickQueues(int64_t ts, bool baseline) {
  if (!queue_source_) return;
  std::vector<QueueTotals> current = queue_source_();
  if (!baseline) {
    std::map<std::string, const QueueTotals*> before;
    for (const QueueTotals& q : previous_queues_) before[q.name] = &q;
    const int64_t minute = ts - ((ts % 60'000) + 60'000) % 60'000;
    std::vector<QueueMinute> rows;
    for (const QueueTotals& q : current) {
      const auto it = before.find(q.name);
      const QueueTotals zero;
      const QueueTotals& b = it == before.end() ? zero : *it->second;
      rows.push_back({minute, q.name, Delta(q.enqueued, b.enqueued),
                      Delta(q.succeeded, b.succeeded), Delta(q.failed, b.failed),
                      Delta(q.dead, b.dead), Delta(q.attempts, b.attempts), q.depth,
                      q.oldest_age_ms, q.dead_letters});
    }
    store_->WriteQueueMinutes(rows);
  }
  previous_queues_ = std::move(current);
}

}  // namespace ficus::telemetry
