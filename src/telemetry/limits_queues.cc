// Two of the report's inputs, in tables of their own: the client keys a rate limit or
// concurrency limit refused (limited_keys, per route and minute, like client_keys), and the job
// queues' minutes (queue_minutes: enqueued, finished by outcome, attempts, and the backlog as
// the minute's last tick saw it). Both tables are created when missing, so a store written by
// an older ficus gains them at open and keeps everything it had; both are kept as long as the
// 1 min rollups.
#include <map>

#include "telemetry/internal/key_counts.h"
#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {
namespace {

using internal::Stmt;
using internal::Transaction;

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

// A counter's growth since the previous take; a counter that went back (the queue's service was
// started again) counts from zero.
uint64_t Delta(uint64_t now, uint64_t before) { return now >= before ? now - before : now; }

}  // namespace

void Store::CreateLimitAndQueueTables() { Exec(kTables); }

void Store::PruneLimitsAndQueues(int64_t before_ms) {
  for (const char* sql :
       {"DELETE FROM limited_keys WHERE ts<?1", "DELETE FROM queue_minutes WHERE ts<?1"}) {
    Stmt(db_, sql).Bind(1, before_ms).Run();
  }
}

void Store::WriteLimitedKeys(const std::vector<ClientKeyCount>& rows) {
  std::lock_guard lock(mu_);
  internal::WriteKeyCounts(db_, "limited_keys", rows);
}

std::vector<ClientKeyCount> Store::LimitedKeys(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  return internal::KeyCounts(db_, "limited_keys", from_ms, to_ms);
}

void Store::WriteQueueMinutes(const std::vector<QueueMinute>& rows) {
  if (rows.empty()) return;
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  {
    // Ticks come in time order: the later tick's gauges are the minute's last word.
    Stmt put(db_,
             "INSERT INTO queue_minutes(ts, queue, enqueued, succeeded, failed, dead, attempts, "
             "depth, oldest_age_ms, dead_letters) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10) "
             "ON CONFLICT(ts, queue) DO UPDATE SET enqueued = enqueued + excluded.enqueued, "
             "succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed, "
             "dead = dead + excluded.dead, attempts = attempts + excluded.attempts, "
             "depth = excluded.depth, oldest_age_ms = excluded.oldest_age_ms, "
             "dead_letters = excluded.dead_letters");
    for (const QueueMinute& r : rows) {
      put.Bind(1, r.ts_ms).Bind(2, r.queue);
      put.Bind(3, static_cast<int64_t>(r.enqueued)).Bind(4, static_cast<int64_t>(r.succeeded));
      put.Bind(5, static_cast<int64_t>(r.failed)).Bind(6, static_cast<int64_t>(r.dead));
      put.Bind(7, static_cast<int64_t>(r.attempts)).Bind(8, r.depth).Bind(9, r.oldest_age_ms);
      put.Bind(10, r.dead_letters).Run();
      put.Reset();
    }
  }
  tx.Commit();
}

std::vector<QueueMinute> Store::QueueMinutes(int64_t from_ms, int64_t to_ms) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT ts, queue, enqueued, succeeded, failed, dead, attempts, depth, oldest_age_ms, "
         "dead_letters FROM queue_minutes WHERE ts>=?1 AND ts<?2 ORDER BY queue, ts");
  q.Bind(1, from_ms).Bind(2, to_ms);
  std::vector<QueueMinute> out;
  while (q.Step()) {
    QueueMinute m;
    m.ts_ms = q.Int(0);
    m.queue = q.Text(1);
    m.enqueued = static_cast<uint64_t>(q.Int(2));
    m.succeeded = static_cast<uint64_t>(q.Int(3));
    m.failed = static_cast<uint64_t>(q.Int(4));
    m.dead = static_cast<uint64_t>(q.Int(5));
    m.attempts = static_cast<uint64_t>(q.Int(6));
    m.depth = q.Int(7);
    m.oldest_age_ms = q.Int(8);
    m.dead_letters = q.Int(9);
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
