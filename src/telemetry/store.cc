// The SQLite store: schema, rollups, events, error samples, audit, pruning, backup (the
// advisor's rows are in advisor_rows.cc).
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {
namespace {

using internal::Stmt;
using internal::Throw;
using internal::Transaction;

// user_version: 1 = kSchema below; each later version is one step of kMigrations, run in order
// on a store written by an older ficus (a newer store is refused: its tables may mean more).
constexpr int kSchemaVersion = 2;
struct Migration {
  int to_version;
  const char* sql;
};
constexpr Migration kMigrations[] = {
    // 2: per-minute cache counters of cached routes (issue 16).
    {2, R"sql(
CREATE TABLE IF NOT EXISTS cache_counts(
  ts INTEGER NOT NULL, route TEXT NOT NULL, hits INTEGER NOT NULL, misses INTEGER NOT NULL,
  stale INTEGER NOT NULL, stale_errors INTEGER NOT NULL, revalidated INTEGER NOT NULL,
  coalesced INTEGER NOT NULL, bypassed INTEGER NOT NULL,
  PRIMARY KEY(ts, route)) WITHOUT ROWID;
)sql"},
};

// Rollups are keyed (res, ts, series) so that both "a time range" and "the oldest rows"
// (pruning) are range scans of the primary key.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL, UNIQUE(kind, name));
CREATE TABLE IF NOT EXISTS rollup(
  res INTEGER NOT NULL, ts INTEGER NOT NULL, series INTEGER NOT NULL,
  requests INTEGER NOT NULL, errors INTEGER NOT NULL,
  bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
  latency BLOB NOT NULL, clients BLOB NOT NULL,
  PRIMARY KEY(res, ts, series)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL,
  service TEXT NOT NULL, version TEXT NOT NULL, note TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS error_samples(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL,
  request_id TEXT NOT NULL, request_head TEXT NOT NULL, response_head TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS error_samples_route ON error_samples(route, id);
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, who TEXT NOT NULL, peer TEXT NOT NULL,
  action TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assessments(
  id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, target TEXT NOT NULL, knee_rate REAL NOT NULL,
  p99_ms REAL NOT NULL, error_ratio REAL NOT NULL, steps INTEGER NOT NULL,
  max_rate REAL NOT NULL, stop_reason TEXT NOT NULL, detail TEXT NOT NULL,
  duration_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS assessments_ts ON assessments(ts);
CREATE TABLE IF NOT EXISTS client_keys(
  ts INTEGER NOT NULL, route TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL,
  PRIMARY KEY(ts, route, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS repeats(
  ts INTEGER NOT NULL, route TEXT NOT NULL, sampled INTEGER NOT NULL,
  repeated INTEGER NOT NULL, changed INTEGER NOT NULL,
  PRIMARY KEY(ts, route)) WITHOUT ROWID;
)sql";

int64_t PragmaInt(sqlite3* db, const char* sql) {
  Stmt s(db, sql);
  return s.Step() ? s.Int(0) : 0;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The WAL may hold this much between checkpoints; the database gets the rest of max_bytes.
uint64_t WalAllowance(uint64_t max_bytes) { return std::min<uint64_t>(max_bytes / 8, 1u << 20); }

Rollup ReadRollup(Stmt& s, int first_col) {
  Rollup r;
  r.ts_ms = s.Int(first_col);
  r.requests = static_cast<uint64_t>(s.Int(first_col + 1));
  r.errors = static_cast<uint64_t>(s.Int(first_col + 2));
  r.bytes_in = static_cast<uint64_t>(s.Int(first_col + 3));
  r.bytes_out = static_cast<uint64_t>(s.Int(first_col + 4));
  // A blob that does not decode (a damaged or foreign database) counts as empty rather than
  // failing every query that touches its row.
  if (auto h = LatencyHistogram::Decode(s.Blob(first_col + 5))) r.latency = *h;
  if (auto c = Hll::Decode(s.Blob(first_col + 6))) r.clients = *c;
  return r;
}

}  // namespace

Store::Store(StoreOptions options) : options_(std::move(options)) {
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(options_.path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("telemetry store: cannot open " + options_.path + ": " + why);
  }
  try {
    sqlite3_busy_timeout(db_, 5000);  // `ficus backup`/`restore` hold locks briefly
    // auto_vacuum must be chosen before the first table exists; incremental lets pruning give
    // pages back to the file system (the size bound is on the files, not the rows).
    Exec("PRAGMA auto_vacuum=INCREMENTAL");
    Exec("PRAGMA journal_mode=WAL");
    // WAL + NORMAL: fsync at checkpoints only; a power cut loses at most the last
    // transactions, never corrupts.
    Exec(options_.durable ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=OFF");
    const uint64_t wal = WalAllowance(options_.max_bytes);
    const std::string limits =
        "PRAGMA journal_size_limit=" + std::to_string(wal) +
        "; PRAGMA wal_autocheckpoint=" + std::to_string(std::max<uint64_t>(16, wal / 4096 / 2));
    Exec(limits.c_str());
    Exec(kSchema);
    CreateLimitAndQueueTables();  // additive tables: CREATE TABLE IF NOT EXISTS
    Exec(internal::kDbSchema);    // the database's tables (db_store.cc)
    int64_t version = PragmaInt(db_, "PRAGMA user_version");
    if (version > kSchemaVersion) {
      throw std::runtime_error("telemetry store: " + options_.path + " has schema version " +
                               std::to_string(version) + ", this ficus reads version " +
                               std::to_string(kSchemaVersion));
    }
    if (version == 0) version = 1;  // new: kSchema just made version 1's tables
    for (const Migration& m : kMigrations) {
      if (m.to_version <= version) continue;
      Transaction tx(db_);
      Exec(m.sql);
      Exec(("PRAGMA user_version=" + std::to_string(m.to_version)).c_str());
      tx.Commit();
      version = m.to_version;
    }
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

Store::~Store() {
  if (db_) sqlite3_close(db_);
}

void Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error(std::string("telemetry store: ") + why);
  }
}

int64_t Store::SeriesId(SeriesKind kind, std::string_view name) {
  // Not cached: a restore replaces the table under us.
  Stmt find(db_, "SELECT id FROM series WHERE kind=?1 AND name=?2");
  find.Bind(1, static_cast<int64_t>(kind)).Bind(2, name);
  if (find.Step()) return find.Int(0);
  Stmt add(db_, "INSERT INTO series(kind, name) VALUES(?1, ?2)");
  add.Bind(1, static_cast<int64_t>(kind)).Bind(2, name).Run();
  return sqlite3_last_insert_rowid(db_);
}

void Store::WriteRollups(Resolution res, const std::vector<Rollup>& rows) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT OR REPLACE INTO rollup(res, ts, series, requests, errors, bytes_in, bytes_out,"
           " latency, clients) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  for (const Rollup& r : rows) {
    put.Reset();
    put.Bind(1, static_cast<int64_t>(res))
        .Bind(2, r.ts_ms)
        .Bind(3, SeriesId(r.kind, r.name))
        .Bind(4, static_cast<int64_t>(r.requests))
        .Bind(5, static_cast<int64_t>(r.errors))
        .Bind(6, static_cast<int64_t>(r.bytes_in))
        .Bind(7, static_cast<int64_t>(r.bytes_out))
        .BindBlob(8, r.latency.Encode())
        .BindBlob(9, r.clients.Encode());
    put.Run();
  }
  tx.Commit();
}

std::vector<Rollup> Store::QueryRollups(Resolution res, SeriesKind kind,
                                        const std::vector<std::string>& names, int64_t from_ms,
                                        int64_t to_ms) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT s.name, r.ts, r.requests, r.errors, r.bytes_in, r.bytes_out, r.latency, "
         "r.clients FROM rollup r JOIN series s ON s.id = r.series "
         "WHERE r.res=?1 AND r.ts>=?2 AND r.ts<?3 AND s.kind=?4 ORDER BY r.ts, s.name");
  q.Bind(1, static_cast<int64_t>(res)).Bind(2, from_ms).Bind(3, to_ms);
  q.Bind(4, static_cast<int64_t>(kind));
  std::vector<Rollup> out;
  while (q.Step()) {
    std::string name = q.Text(0);
    if (!names.empty() && std::find(names.begin(), names.end(), name) == names.end()) continue;
    Rollup r = ReadRollup(q, 1);
    r.kind = kind;
    r.name = std::move(name);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<Rollup> Store::Totals(Resolution res, SeriesKind kind,
                                  const std::vector<std::string>& names, int64_t from_ms,
                                  int64_t to_ms) {
  std::map<std::string, Rollup> merged;
  for (Rollup& r : QueryRollups(res, kind, names, from_ms, to_ms)) {
    auto [it, fresh] = merged.try_emplace(r.name);
    if (fresh) {
      it->second.kind = kind;
      it->second.name = r.name;
      it->second.ts_ms = from_ms;
    }
    it->second.Merge(r);
  }
  std::vector<Rollup> out;
  for (auto& [name, r] : merged) out.push_back(std::move(r));
  return out;
}

void SubtractSynthetic(Rollup& r, const Rollup& s) {
  auto less = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  r.requests = less(r.requests, s.requests);
  r.errors = less(r.errors, s.errors);
  r.bytes_out = less(r.bytes_out, s.bytes_out);
  for (int i = 0; i < LatencyHistogram::kBuckets; ++i)
    r.latency.buckets[i] = less(r.latency.buckets[i], s.latency.buckets[i]);
}

std::vector<Rollup> Store::SloTotals(Resolution res, int64_t from_ms, int64_t to_ms) {
  std::vector<Rollup> out = Totals(res, SeriesKind::kRoute, {}, from_ms, to_ms);
  std::map<std::string, Rollup> synthetic;
  for (Rollup& r : Totals(res, SeriesKind::kSynthetic, {}, from_ms, to_ms))
    synthetic.emplace(r.name, std::move(r));
  for (Rollup& r : out) {
    auto it = synthetic.find(r.name);
    if (it != synthetic.end()) SubtractSynthetic(r, it->second);
  }
  return out;
}

std::vector<Rollup> Store::Periods(Resolution res, SeriesKind kind,
                                   const std::vector<std::string>& names, int64_t from_ms,
                                   int64_t to_ms, int64_t period_ms) {
  std::map<std::pair<int64_t, std::string>, Rollup> merged;
  for (Rollup& r : QueryRollups(res, kind, names, from_ms, to_ms)) {
    int64_t start = r.ts_ms - r.ts_ms % period_ms;
    if (r.ts_ms < 0 && r.ts_ms % period_ms != 0) start -= period_ms;
    auto [it, fresh] = merged.try_emplace({start, r.name});
    if (fresh) {
      it->second.kind = kind;
      it->second.name = r.name;
      it->second.ts_ms = start;
    }
    it->second.Merge(r);
  }
  std::vector<Rollup> out;
  for (auto& [key, r] : merged) out.push_back(std::move(r));
  return out;
}

int64_t Store::AppendEvent(const Event& e) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_, "INSERT INTO events(ts, kind, service, version, note) VALUES(?1,?2,?3,?4,?5)");
  put.Bind(1, e.ts_ms).Bind(2, e.kind).Bind(3, e.service).Bind(4, e.version).Bind(5, e.note);
  put.Run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  Stmt trim(db_, "DELETE FROM events WHERE id <= ?1");
  trim.Bind(1, id - static_cast<int64_t>(options_.max_events)).Run();
  tx.Commit();
  return id;
}

std::vector<Event> Store::Events(int64_t since_ms, int64_t until_ms, std::string_view kind,
                                 size_t limit) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT id, ts, kind, service, version, note FROM events WHERE ts>=?1 AND ts<?2 AND "
         "(?3 = '' OR kind = ?3) ORDER BY ts DESC, id DESC LIMIT ?4");
  q.Bind(1, since_ms).Bind(2, until_ms).Bind(3, kind).Bind(4, static_cast<int64_t>(limit));
  std::vector<Event> out;
  while (q.Step()) {
    out.push_back(Event{q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5)});
  }
  return out;
}

void Store::AppendErrorSamples(const std::vector<ErrorSample>& samples) {
  if (samples.empty()) return;
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT INTO error_samples(ts, route, status, request_id, request_head, "
           "response_head) VALUES(?1,?2,?3,?4,?5,?6)");
  Stmt trim(db_,
            "DELETE FROM error_samples WHERE route=?1 AND id <= (SELECT id FROM error_samples "
            "WHERE route=?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)");
  for (const ErrorSample& s : samples) {
    put.Reset();
    put.Bind(1, s.ts_ms).Bind(2, s.route).Bind(3, s.status).Bind(4, s.request_id);
    put.Bind(5, s.request_head).Bind(6, s.response_head).Run();
    trim.Reset();
    trim.Bind(1, s.route).Bind(2, static_cast<int64_t>(options_.error_samples_per_route)).Run();
  }
  tx.Commit();
}

std::vector<ErrorSample> Store::ErrorSamples(std::string_view route, size_t limit) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT id, ts, route, status, request_id, request_head, response_head FROM "
         "error_samples WHERE (?1 = '' OR route = ?1) ORDER BY id DESC LIMIT ?2");
  q.Bind(1, route).Bind(2, static_cast<int64_t>(limit));
  std::vector<ErrorSample> out;
  while (q.Step()) {
    out.push_back(ErrorSample{q.Int(0), q.Int(1), q.Text(2), static_cast<int>(q.Int(3)), q.Text(4),
                              q.Text(5), q.Text(6)});
  }
  return out;
}

int64_t Store::AppendAudit(const AuditEntry& a) {
  std::lock_guard lock(mu_);
  Transaction tx(db_);
  Stmt put(db_,
           "INSERT INTO audit(ts, who, peer, action, outcome, detail) VALUES(?1,?2,?3,?4,?5,?6)");
  put.Bind(1, a.ts_ms).Bind(2, a.who).Bind(3, a.peer).Bind(4, a.action).Bind(5, a.outcome);
  put.Bind(6, a.detail).Run();
  const int64_t id = sqlite3_last_insert_rowid(db_);
  Stmt trim(db_, "DELETE FROM audit WHERE id <= ?1");
  trim.Bind(1, id - static_cast<int64_t>(options_.max_audit)).Run();
  tx.Commit();
  return id;
}

std::vector<AuditEntry> Store::Audit(size_t limit) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "SELECT id, ts, who, peer, action, outcome, detail FROM audit ORDER BY id DESC "
         "LIMIT ?1");
  q.Bind(1, static_cast<int64_t>(limit));
  std::vector<AuditEntry> out;
  while (q.Step()) {
    out.push_back(
        AuditEntry{q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Text(6)});
  }
  return out;
}

uint64_t Store::UsedBytes() {
  std::lock_guard lock(mu_);
  const int64_t pages = PragmaInt(db_, "PRAGMA page_count");
  const int64_t free_pages = PragmaInt(db_, "PRAGMA freelist_count");
  return static_cast<uint64_t>((pages - free_pages) * PragmaInt(db_, "PRAGMA page_size"));
}

uint64_t Store::FileBytes() const {
  return FileSize(options_.path) + FileSize(options_.path + "-wal");
}

uint64_t Store::Prune(int64_t now_ms) {
  std::lock_guard lock(mu_);
  {
    Transaction tx(db_);
    // Client keys and repeats are kept as long as the 1 min rollups they explain.
    for (const char* sql :
         {"DELETE FROM client_keys WHERE ts<?1", "DELETE FROM repeats WHERE ts<?1",
          "DELETE FROM cache_counts WHERE ts<?1", internal::kDbPrune[0], internal::kDbPrune[1],
          internal::kDbPrune[2], internal::kDbPrune[3], internal::kDbPrune[4],
          internal::kDbPrune[5]}) {
      Stmt drop(db_, sql);
      drop.Bind(1, now_ms - options_.coarse_retention_ms).Run();
    }
    PruneLimitsAndQueues(now_ms - options_.coarse_retention_ms);
    Stmt old(db_, "DELETE FROM rollup WHERE res=?1 AND ts<?2");
    old.Bind(1, static_cast<int64_t>(Resolution::k10s))
        .Bind(2, now_ms - options_.fine_retention_ms)
        .Run();
    old.Reset();
    old.Bind(1, static_cast<int64_t>(Resolution::k1m))
        .Bind(2, now_ms - options_.coarse_retention_ms)
        .Run();
    tx.Commit();
  }
  const uint64_t deleted = PruneForSize();
  Exec("PRAGMA incremental_vacuum");
  return deleted;
}

uint64_t Store::PruneForSize() {
  const uint64_t db_budget = options_.max_bytes - WalAllowance(options_.max_bytes);
  auto used = [&] {
    return static_cast<uint64_t>(
        (PragmaInt(db_, "PRAGMA page_count") - PragmaInt(db_, "PRAGMA freelist_count")) *
        PragmaInt(db_, "PRAGMA page_size"));
  };
  if (used() <= db_budget * 9 / 10) return 0;
  // Over the bound: drop the oldest data in slices until at 75 % of the budget, so that pruning
  // runs now and then rather than at every tick. Oldest 10 s rows first while more than an hour
  // of them remain (the 1 min rows summarize them), then the oldest 1 min rows, then the oldest
  // events and error samples.
  uint64_t deleted = 0;
  const uint64_t target = db_budget * 3 / 4;
  for (int round = 0; round < 1000 && used() > target; ++round) {
    Transaction tx(db_);
    int64_t before = sqlite3_total_changes(db_);
    auto slice = [&](int64_t res, int64_t keep_ms) {
      Stmt span(db_, "SELECT MIN(ts), MAX(ts), COUNT(*) FROM rollup WHERE res=?1");
      span.Bind(1, res);
      if (!span.Step() || span.Int(2) == 0) return false;
      const int64_t lo = span.Int(0);
      const int64_t hi = span.Int(1);
      if (hi - lo <= keep_ms) return false;
      // A tenth of the span (at least one interval), never the newest keep_ms.
      const int64_t cut = std::min(hi - keep_ms, lo + std::max<int64_t>((hi - lo) / 10, res));
      Stmt del(db_, "DELETE FROM rollup WHERE res=?1 AND ts<=?2");
      del.Bind(1, res).Bind(2, cut).Run();
      return true;
    };
    if (!slice(static_cast<int64_t>(Resolution::k10s), 3'600'000) &&
        !slice(static_cast<int64_t>(Resolution::k1m), 0) &&
        !slice(static_cast<int64_t>(Resolution::k10s), 0)) {
      Stmt ev(db_, "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT 100)");
      ev.Run();
      Stmt es(db_,
              "DELETE FROM error_samples WHERE id IN (SELECT id FROM error_samples ORDER BY id "
              "LIMIT 100)");
      es.Run();
    }
    const int64_t changed = sqlite3_total_changes(db_) - before;
    tx.Commit();
    if (changed == 0) break;
    deleted += static_cast<uint64_t>(changed);
  }
  return deleted;
}

}  // namespace ficus::telemetry
