// The job store: schema, the startup check, and the statements the writer runs.
#include "queue/internal/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

namespace ficus::queue::internal {

namespace {

// 2: callback_url, callback_state (a job's result POSTed to a callback URL when it finishes).
constexpr int kSchemaVersion = 2;

// Why this schema: `seq` (the rowid) is the job's key (its id is seq + token, see JobId) and
// keeps insertion order cheap for recovery; `token` is the unguessable part of the id; (queue,
// idem_key) finds a repeated Idempotency-Key (only jobs whose client sent one are in it: '' means
// the job id is the key); the open jobs' index finds the unfinished jobs at start without reading
// the finished ones. Each index is paid by every enqueue in the writer's one thread, so each has to
// earn its place.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs(
  seq INTEGER PRIMARY KEY,
  token TEXT NOT NULL,
  queue TEXT NOT NULL,
  cluster TEXT NOT NULL,
  state INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  next_ms INTEGER NOT NULL DEFAULT 0,
  idem_key TEXT NOT NULL,
  fingerprint INTEGER NOT NULL,
  method TEXT NOT NULL,
  target TEXT NOT NULL,
  headers BLOB NOT NULL,
  body BLOB NOT NULL,
  result_status INTEGER NOT NULL DEFAULT 0,
  result_headers BLOB NOT NULL DEFAULT '',
  result_body BLOB NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  callback_url TEXT NOT NULL DEFAULT '',
  callback_state INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(queue, idem_key) WHERE idem_key != '';
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(queue) WHERE state < 2;
)sql";

// After the schema version is current (a version 1 file gets its columns first): the jobs whose
// callback is still to be sent, found at start without reading the others.
constexpr const char* kCallbackIndex =
    "CREATE INDEX IF NOT EXISTS jobs_callback ON jobs(queue) WHERE callback_state = 1";

// What a finished job keeps on disk, as the retention bound in bytes counts it.
constexpr const char* kRowBytes =
    "length(headers) + length(body) + length(result_headers) + length(result_body) + 128";

std::string Text(sqlite3_stmt* s, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(s, col));
  const int n = sqlite3_column_bytes(s, col);
  return p ? std::string(p, static_cast<size_t>(n)) : std::string();
}

// The columns a JobView shows, in this order (kViewColumns), from column 0 of `s`'s row.
constexpr const char* kViewColumns =
    "seq, token, queue, state, attempts, max_attempts, created_ms, updated_ms, next_ms, method, "
    "target, result_status, result_headers, result_body, error";
void ReadView(sqlite3_stmt* s, JobView* out) {
  out->id = JobId(sqlite3_column_int64(s, 0), Text(s, 1));
  out->queue = Text(s, 2);
  out->state = static_cast<State>(sqlite3_column_int(s, 3));
  out->attempts = static_cast<uint32_t>(sqlite3_column_int(s, 4));
  out->max_attempts = static_cast<uint32_t>(sqlite3_column_int(s, 5));
  out->created_ms = sqlite3_column_int64(s, 6);
  out->updated_ms = sqlite3_column_int64(s, 7);
  out->next_ms = sqlite3_column_int64(s, 8);
  out->method = Text(s, 9);
  out->target = Text(s, 10);
  out->result_status = sqlite3_column_int(s, 11);
  out->result_headers = Text(s, 12);
  out->result_body = Text(s, 13);
  out->error = Text(s, 14);
}

// SQLITE_STATIC: every bound value outlives the statement's step (the caller's job or view),
// so SQLite need not copy it; statements are reset before their next use.
void Bind(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_blob(s, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
}
void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data() ? v.data() : "", static_cast<int>(v.size()), SQLITE_STATIC);
}

}  // namespace

const char* StateName(State s) {
  switch (s) {
    case State::kQueued:
      return "queued";
    case State::kRunning:
      return "running";
    case State::kSucceeded:
      return "succeeded";
    case State::kFailed:
      return "failed";
    case State::kDead:
      return "dead";
  }
  return "unknown";
}

std::unique_ptr<Store> Store::Open(const std::string& path) {
  std::unique_ptr<Store> s(new Store(path));
  auto fail = [&path](const std::string& why) {
    return std::runtime_error("queue store " + path + ": " + why +
                              " (the file is kept as it is: move it aside or restore a backup; "
                              "ficus does not start over it and lose the jobs in it)");
  };
  // One process per store: two would deliver the same jobs. flock, not SQLite's own fcntl
  // locks (independent of them on Linux), held until the store closes or the process dies.
  s->lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (s->lock_fd_ < 0) throw fail(std::string("cannot open: ") + std::strerror(errno));
  if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    throw std::runtime_error("queue store " + path +
                             " is in use by another ficus process: each process needs its own "
                             "data_dir (or stop the other one first)");
  }
  if (sqlite3_open_v2(path.c_str(), &s->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    throw fail(s->db_ ? sqlite3_errmsg(s->db_) : "cannot open");
  }
  sqlite3_busy_timeout(s->db_, 5000);
  // The check first: a damaged file must not be "repaired" by the schema statements.
  {
    sqlite3_stmt* check = nullptr;
    if (sqlite3_prepare_v2(s->db_, "PRAGMA quick_check", -1, &check, nullptr) != SQLITE_OK) {
      throw fail(sqlite3_errmsg(s->db_));
    }
    std::string problems;
    int rc;
    while ((rc = sqlite3_step(check)) == SQLITE_ROW) {
      std::string line = Text(check, 0);
      if (line != "ok") problems += (problems.empty() ? "" : "; ") + line;
    }
    if (rc != SQLITE_DONE) problems = sqlite3_errmsg(s->db_);
    sqlite3_finalize(check);
    if (!problems.empty()) throw fail("damaged: " + problems);
  }
  // synchronous=FULL: every commit's WAL frames are fsynced before COMMIT returns, which is
  // what "acknowledged only when on disk" needs. The page cache and the memory map keep the
  // writer's B-tree descents off pread(). The WAL hook replaces SQLite's autocheckpoint, which
  // ran in the COMMIT that crossed it (up to 77 ms measured, every waiter of the batch behind
  // it): the writer hands the WAL's size to the Checkpointer instead. journal_size_limit
  // truncates the WAL when it starts over after a burst.
  if (!s->Exec("PRAGMA journal_mode=WAL") || !s->Exec("PRAGMA synchronous=FULL") ||
      !s->Exec("PRAGMA cache_size=-65536") || !s->Exec("PRAGMA mmap_size=1073741824") ||
      !s->Exec("PRAGMA journal_size_limit=67108864") || !s->Exec(kSchema)) {
    throw fail(s->failure_);
  }
  sqlite3_wal_hook(
      s->db_,
      [](void* store, sqlite3*, const char*, int frames) {
        static_cast<Store*>(store)->wal_frames_ = frames;
        return SQLITE_OK;
      },
      s.get());
  {
    sqlite3_stmt* v = s->Prepare("PRAGMA user_version");
    const int64_t version = v && sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int64(v, 0) : -1;
    sqlite3_finalize(v);
    if (version > kSchemaVersion) {
      throw fail("written by a newer ficus (schema " + std::to_string(version) + ")");
    }
    if (version == 1 &&
        (!s->Exec("ALTER TABLE jobs ADD COLUMN callback_url TEXT NOT NULL DEFAULT ''") ||
         !s->Exec("ALTER TABLE jobs ADD COLUMN callback_state INTEGER NOT NULL DEFAULT 0"))) {
      throw fail("upgrading the schema: " + s->failure_);
    }
    if (version < kSchemaVersion) {
      s->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    }
    if (!s->Exec(kCallbackIndex)) throw fail(s->failure_);
  }
  s->insert_ = s->Prepare(
      "INSERT INTO jobs(token, queue, cluster, state, attempts, max_attempts, created_ms, "
      "updated_ms, next_ms, idem_key, fingerprint, method, target, headers, body, callback_url) "
      "VALUES(?1, ?2, ?3, 0, 0, ?4, ?5, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  s->by_key_ = s->Prepare(
      "SELECT seq, token, fingerprint FROM jobs WHERE queue = ?1 AND idem_key = ?2 AND "
      "idem_key != '' "
      "AND created_ms >= ?3 ORDER BY seq DESC LIMIT 1");
  s->running_ = s->Prepare(
      "UPDATE jobs SET state = 1, attempts = attempts + 1, updated_ms = ?2 WHERE seq = ?1");
  s->finish_ = s->Prepare(
      "UPDATE jobs SET state = ?2, next_ms = ?3, result_status = ?4, result_headers = ?5, "
      "result_body = ?6, error = ?7, updated_ms = ?8, callback_state = CASE WHEN ?9 THEN 1 ELSE "
      "callback_state END WHERE seq = ?1");
  s->get_ = s->Prepare(
      (std::string("SELECT ") + kViewColumns + " FROM jobs WHERE seq = ?1 AND token = ?2").c_str());
  if (s->failed()) throw fail(s->failure_);
  return s;
}

Store::~Store() {
  for (sqlite3_stmt* st : {insert_, by_key_, running_, finish_, get_}) sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

sqlite3_stmt* Store::Prepare(const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &st, nullptr) != SQLITE_OK) {
    if (failure_.empty()) failure_ = sqlite3_errmsg(db_);
    return nullptr;
  }
  return st;
}

bool Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    if (failure_.empty()) failure_ = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    return false;
  }
  return true;
}

bool Store::Step(sqlite3_stmt* s, const char* what) {
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) return true;
  if (failure_.empty()) failure_ = std::string(what) + ": " + sqlite3_errmsg(db_);
  return false;
}

bool Store::Begin() { return Exec("BEGIN IMMEDIATE"); }

bool Store::CompleteCheckpoint() {
  int log_frames = 0, copied = 0;
  // BUSY while the Checkpointer's own pass runs: the writer tries again after its next batch.
  return sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied) ==
             SQLITE_OK &&
         copied == log_frames;
}
bool Store::Commit() { return Exec("COMMIT"); }
void Store::Rollback() {
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);  // may fail: already rolled back
  failure_.clear();
}

Store::Insert Store::Add(Job& job, uint64_t fingerprint, int64_t key_since_ms,
                         std::string* existing_id) {
  // INT64_MAX: the key is the job's own (the client sent none), nothing to look up.
  const int rc = key_since_ms == INT64_MAX ? SQLITE_DONE : [&] {
    sqlite3_reset(by_key_);
    BindText(by_key_, 1, job.queue);
    BindText(by_key_, 2, job.idempotency_key);
    sqlite3_bind_int64(by_key_, 3, key_since_ms);
    return sqlite3_step(by_key_);
  }();
  if (rc == SQLITE_ROW) {
    *existing_id = JobId(sqlite3_column_int64(by_key_, 0), Text(by_key_, 1));
    const bool same = static_cast<uint64_t>(sqlite3_column_int64(by_key_, 2)) == fingerprint;
    sqlite3_reset(by_key_);
    return same ? Insert::kExisting : Insert::kConflict;
  }
  sqlite3_reset(by_key_);
  if (rc != SQLITE_DONE) {
    if (failure_.empty()) failure_ = std::string("idempotency lookup: ") + sqlite3_errmsg(db_);
    return Insert::kError;
  }
  sqlite3_reset(insert_);
  BindText(insert_, 1, job.token);
  BindText(insert_, 2, job.queue);
  BindText(insert_, 3, job.cluster);
  sqlite3_bind_int64(insert_, 4, job.max_attempts);
  sqlite3_bind_int64(insert_, 5, job.created_ms);
  BindText(insert_, 6, job.idempotency_key);  // '' without the client's: stays out of the index
  sqlite3_bind_int64(insert_, 7, static_cast<int64_t>(fingerprint));
  BindText(insert_, 8, job.method);
  BindText(insert_, 9, job.target);
  Bind(insert_, 10, job.headers);
  Bind(insert_, 11, job.body);
  BindText(insert_, 12, job.callback_url);
  if (!Step(insert_, "insert")) return Insert::kError;
  job.id = JobId(sqlite3_last_insert_rowid(db_), job.token);
  if (job.idempotency_key.empty()) job.idempotency_key = job.id;
  return Insert::kInserted;
}

bool Store::MarkRunning(std::string_view id, int64_t now_ms) {
  int64_t seq;
  std::string_view token;
  if (!ParseJobId(id, &seq, &token)) return true;  // not a job of this store: nothing to do
  sqlite3_reset(running_);
  sqlite3_bind_int64(running_, 1, seq);
  sqlite3_bind_int64(running_, 2, now_ms);
  return Step(running_, "mark running");
}

bool Store::Finish(std::string_view id, const AttemptResult& r, int64_t now_ms) {
  int64_t seq;
  std::string_view token;
  if (!ParseJobId(id, &seq, &token)) return true;
  sqlite3_reset(finish_);
  sqlite3_bind_int64(finish_, 1, seq);
  sqlite3_bind_int(finish_, 2, static_cast<int>(r.state));
  sqlite3_bind_int64(finish_, 3, r.next_ms);
  sqlite3_bind_int(finish_, 4, r.status);
  Bind(finish_, 5, r.headers);
  Bind(finish_, 6, r.body);
  BindText(finish_, 7, r.error);
  sqlite3_bind_int64(finish_, 8, now_ms);
  sqlite3_bind_int(finish_, 9, r.callback && Finished(r.state) ? 1 : 0);
  if (!Step(finish_, "finish")) return false;
  if (Finished(r.state)) {
    auto it = finished_bytes_.find(r.queue);
    if (it != finished_bytes_.end()) it->second += r.stored_bytes;
  }
  return true;
}

bool Store::Get(std::string_view id, JobView* out) {
  int64_t seq;
  std::string_view token;
  if (!ParseJobId(id, &seq, &token)) return false;
  sqlite3_reset(get_);
  sqlite3_bind_int64(get_, 1, seq);
  BindText(get_, 2, token);
  const int rc = sqlite3_step(get_);
  if (rc != SQLITE_ROW) {
    sqlite3_reset(get_);
    return false;
  }
  ReadView(get_, out);
  sqlite3_reset(get_);
  return true;
}

bool Store::LoadOpen(std::string_view queue, std::vector<std::unique_ptr<Job>>* out) {
  sqlite3_stmt* reset =
      Prepare("UPDATE jobs SET state = 0 WHERE queue = ?1 AND state < 2 AND state = 1");
  if (reset == nullptr) return false;
  BindText(reset, 1, queue);
  const bool ok = Step(reset, "requeue running jobs");
  sqlite3_finalize(reset);
  if (!ok) return false;
  sqlite3_stmt* s = Prepare(
      "SELECT seq, token, cluster, idem_key, method, target, headers, body, attempts, "
      "max_attempts, created_ms, next_ms, callback_url FROM jobs WHERE queue = ?1 AND state < 2 "
      "ORDER BY seq");
  if (s == nullptr) return false;
  BindText(s, 1, queue);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    auto j = std::make_unique<Job>();
    j->token = Text(s, 1);
    j->id = JobId(sqlite3_column_int64(s, 0), j->token);
    j->queue = std::string(queue);
    j->cluster = Text(s, 2);
    j->idempotency_key = Text(s, 3);
    if (j->idempotency_key.empty()) j->idempotency_key = j->id;
    j->method = Text(s, 4);
    j->target = Text(s, 5);
    j->headers = Text(s, 6);
    j->body = Text(s, 7);
    j->attempts = static_cast<uint32_t>(sqlite3_column_int(s, 8));
    j->max_attempts = static_cast<uint32_t>(sqlite3_column_int(s, 9));
    j->created_ms = sqlite3_column_int64(s, 10);
    j->next_ms = sqlite3_column_int64(s, 11);
    j->callback_url = Text(s, 12);
    out->push_back(std::move(j));
  }
  if (rc != SQLITE_DONE && failure_.empty()) failure_ = std::string("load: ") + sqlite3_errmsg(db_);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE;
}

int64_t& Store::FinishedBytes(std::string_view queue) {
  auto it = finished_bytes_.find(std::string(queue));
  if (it != finished_bytes_.end()) return it->second;
  // Once per queue and process: length() of a blob is read from the record header, so the
  // scan does not read the bodies.
  int64_t total = 0;
  sqlite3_stmt* s = Prepare(
      (std::string("SELECT total(") + kRowBytes + ") FROM jobs WHERE queue = ?1 AND state >= 2")
          .c_str());
  if (s != nullptr) {
    BindText(s, 1, queue);
    if (sqlite3_step(s) == SQLITE_ROW) total = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
  }
  return finished_bytes_.emplace(std::string(queue), total).first->second;
}

int64_t Store::DeleteCounting(sqlite3_stmt* s, std::string_view queue, const char* what) {
  int64_t rows = 0;
  int64_t bytes = 0;
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    ++rows;
    bytes += sqlite3_column_int64(s, 0);
  }
  if (rc != SQLITE_DONE) {
    if (failure_.empty()) failure_ = std::string(what) + ": " + sqlite3_errmsg(db_);
    return 0;
  }
  auto it = finished_bytes_.find(std::string(queue));
  if (it != finished_bytes_.end()) it->second = std::max<int64_t>(0, it->second - bytes);
  return rows;
}

int64_t Store::PruneFinished(std::string_view queue, int64_t before_ms) {
  sqlite3_stmt* s = Prepare((std::string("DELETE FROM jobs WHERE queue = ?1 AND state >= 2 AND "
                                         "callback_state != 1 AND updated_ms < ?2 RETURNING ") +
                             kRowBytes)
                                .c_str());
  if (s == nullptr) return 0;
  BindText(s, 1, queue);
  sqlite3_bind_int64(s, 2, before_ms);
  const int64_t n = DeleteCounting(s, queue, "prune");
  sqlite3_finalize(s);
  return n;
}

int64_t Store::PruneBytes(std::string_view queue, int64_t max_bytes) {
  int64_t& bytes = FinishedBytes(queue);
  int64_t removed = 0;
  const std::string filter = "queue = ?1 AND state >= 2 AND callback_state != 1";
  sqlite3_stmt* oldest = Prepare(("SELECT seq, " + std::string(kRowBytes) + " FROM jobs WHERE " +
                                  filter + " ORDER BY seq LIMIT 1000")
                                     .c_str());
  sqlite3_stmt* del = Prepare(
      ("DELETE FROM jobs WHERE " + filter + " AND seq <= ?2 RETURNING " + kRowBytes).c_str());
  // The oldest first, just enough of them, a bounded batch at a time (the writer holds its batch
  // meanwhile): find the sequence up to which the excess is covered, then delete up to it.
  while (oldest != nullptr && del != nullptr && bytes > max_bytes && removed < 100'000 &&
         !failed()) {
    sqlite3_reset(oldest);
    BindText(oldest, 1, queue);
    int64_t freed = 0, upto = -1;
    while (freed < bytes - max_bytes && sqlite3_step(oldest) == SQLITE_ROW) {
      upto = sqlite3_column_int64(oldest, 0);
      freed += sqlite3_column_int64(oldest, 1);
    }
    sqlite3_reset(oldest);
    if (upto < 0) break;
    sqlite3_reset(del);
    BindText(del, 1, queue);
    sqlite3_bind_int64(del, 2, upto);
    const int64_t n = DeleteCounting(del, queue, "prune by size");
    if (n == 0) break;
    removed += n;
  }
  sqlite3_finalize(oldest);
  sqlite3_finalize(del);
  return removed;
}

int64_t Store::CountDead(std::string_view queue) {
  sqlite3_stmt* s = Prepare("SELECT count(*) FROM jobs WHERE queue = ?1 AND state = 4");
  if (s == nullptr) return 0;
  BindText(s, 1, queue);
  const int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_finalize(s);
  return n;
}

bool Store::List(std::string_view queue, int state, size_t limit, std::vector<JobView>* out) {
  sqlite3_stmt* s = Prepare(
      "SELECT seq, token, queue, state, attempts, max_attempts, created_ms, updated_ms, next_ms, "
      "method, target, result_status, error FROM jobs WHERE (?1 = '' OR queue = ?1) AND (?2 < 0 OR "
      "state = ?2) ORDER BY seq DESC LIMIT ?3");
  if (s == nullptr) return false;
  BindText(s, 1, queue);
  sqlite3_bind_int(s, 2, state);
  sqlite3_bind_int64(s, 3, static_cast<int64_t>(limit));
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    JobView v;
    v.id = JobId(sqlite3_column_int64(s, 0), Text(s, 1));
    v.queue = Text(s, 2);
    v.state = static_cast<State>(sqlite3_column_int(s, 3));
    v.attempts = static_cast<uint32_t>(sqlite3_column_int(s, 4));
    v.max_attempts = static_cast<uint32_t>(sqlite3_column_int(s, 5));
    v.created_ms = sqlite3_column_int64(s, 6);
    v.updated_ms = sqlite3_column_int64(s, 7);
    v.next_ms = sqlite3_column_int64(s, 8);
    v.method = Text(s, 9);
    v.target = Text(s, 10);
    v.result_status = sqlite3_column_int(s, 11);
    v.error = Text(s, 12);
    out->push_back(std::move(v));
  }
  sqlite3_finalize(s);
  return rc == SQLITE_DONE;
}

bool Store::Requeue(std::string_view id, int64_t now_ms, Job* job) {
  int64_t seq;
  std::string_view token;
  if (!ParseJobId(id, &seq, &token)) return false;
  sqlite3_stmt* s =
      Prepare((std::string("UPDATE jobs SET state = 0, attempts = 0, next_ms = 0, updated_ms = ?2, "
                           "callback_state = 0 WHERE seq = ?1 AND token = ?3 AND state IN (3, 4) "
                           "RETURNING queue, cluster, idem_key, method, target, headers, body, "
                           "max_attempts, created_ms, callback_url, ") +
               kRowBytes)
                  .c_str());
  if (s == nullptr) return false;
  sqlite3_bind_int64(s, 1, seq);
  sqlite3_bind_int64(s, 2, now_ms);
  BindText(s, 3, token);
  const bool found = sqlite3_step(s) == SQLITE_ROW;
  if (found) {
    job->id = std::string(id);
    job->token = std::string(token);
    job->queue = Text(s, 0);
    job->cluster = Text(s, 1);
    job->idempotency_key = Text(s, 2);
    if (job->idempotency_key.empty()) job->idempotency_key = job->id;
    job->method = Text(s, 3);
    job->target = Text(s, 4);
    job->headers = Text(s, 5);
    job->body = Text(s, 6);
    job->max_attempts = static_cast<uint32_t>(sqlite3_column_int(s, 7));
    job->created_ms = sqlite3_column_int64(s, 8);
    job->callback_url = Text(s, 9);
    auto it = finished_bytes_.find(job->queue);
    if (it != finished_bytes_.end())
      it->second = std::max<int64_t>(0, it->second - sqlite3_column_int64(s, 10));
    job->attempts = 0;
    job->next_ms = 0;
    sqlite3_step(s);  // runs the statement to its end
  }
  sqlite3_finalize(s);
  return found;
}

int64_t Store::Purge(std::string_view queue, int state) {
  sqlite3_stmt* s =
      Prepare("DELETE FROM jobs WHERE (?1 = '' OR queue = ?1) AND state = ?2 AND state >= 2");
  if (s == nullptr) return 0;
  BindText(s, 1, queue);
  sqlite3_bind_int(s, 2, state);
  const bool ok = Step(s, "purge");
  sqlite3_finalize(s);
  // Rare (an operator's command): the tallies are counted again when next needed.
  if (ok) finished_bytes_.clear();
  return ok ? sqlite3_changes(db_) : 0;
}

bool Store::LoadPendingCallbacks(std::string_view queue, std::vector<PendingCallback>* out) {
  sqlite3_stmt* s = Prepare((std::string("SELECT ") + kViewColumns +
                             ", callback_url FROM jobs WHERE queue = ?1 AND callback_state = 1 "
                             "ORDER BY seq")
                                .c_str());
  if (s == nullptr) return false;
  BindText(s, 1, queue);
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    PendingCallback p;
    ReadView(s, &p.job);
    p.url = Text(s, 15);
    out->push_back(std::move(p));
  }
  if (rc != SQLITE_DONE && failure_.empty())
    failure_ = std::string("load callbacks: ") + sqlite3_errmsg(db_);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE;
}

bool Store::SetCallbackState(std::string_view id, CallbackState state) {
  int64_t seq;
  std::string_view token;
  if (!ParseJobId(id, &seq, &token)) return true;
  sqlite3_stmt* s = Prepare("UPDATE jobs SET callback_state = ?2 WHERE seq = ?1");
  if (s == nullptr) return false;
  sqlite3_bind_int64(s, 1, seq);
  sqlite3_bind_int(s, 2, static_cast<int>(state));
  const bool ok = Step(s, "callback state");
  sqlite3_finalize(s);
  return ok;
}

}  // namespace ficus::queue::internal
