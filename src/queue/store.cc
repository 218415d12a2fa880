// The job store: schema, the startup check, and the statements the writer runs.
#include "queue/internal/store.h"

#include <sqlite3.h>
#include <sys/random.h>

#include <chrono>
#include <stdexcept>

namespace ficus::queue::internal {

namespace {

constexpr int kSchemaVersion = 1;

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
  error TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(queue, idem_key) WHERE idem_key != '';
CREATE INDEX IF NOT EXISTS jobs_open ON jobs(queue) WHERE state < 2;
)sql";

std::string Text(sqlite3_stmt* s, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(s, col));
  const int n = sqlite3_column_bytes(s, col);
  return p ? std::string(p, static_cast<size_t>(n)) : std::string();
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

int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string NewToken() {
  // One getrandom per 256 ids, not one syscall per job: the writer makes them in bursts.
  thread_local unsigned char pool[16 * 256];
  thread_local size_t used = sizeof pool;
  if (used == sizeof pool) {
    size_t got = 0;
    while (got < sizeof pool) {
      const ssize_t n = ::getrandom(pool + got, sizeof pool - got, 0);
      if (n > 0) got += static_cast<size_t>(n);
    }
    used = 0;
  }
  const unsigned char* raw = pool + used;
  used += 16;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    id[2 * i] = kHex[raw[i] >> 4];
    id[2 * i + 1] = kHex[raw[i] & 15];
  }
  return id;
}

std::string JobId(int64_t seq, std::string_view token) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, seq >>= 4) id[static_cast<size_t>(i)] = kHex[seq & 15];
  id.append(token);
  return id;
}

bool ParseJobId(std::string_view id, int64_t* seq, std::string_view* token) {
  if (id.size() != kJobIdSize || id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return false;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; ++i) {
    const char c = id[i];
    v = (v << 4) | static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  *seq = static_cast<int64_t>(v);
  *token = id.substr(16);
  return true;
}

uint64_t Fingerprint(std::string_view method, std::string_view target, std::string_view body) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view part) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0x100) * 1099511628211ull;  // closes the part: ("ab","c") != ("a","bc")
  };
  mix(method);
  mix(target);
  mix(body);
  return h;
}

std::unique_ptr<Store> Store::Open(const std::string& path) {
  std::unique_ptr<Store> s(new Store(path));
  auto fail = [&path](const std::string& why) {
    return std::runtime_error("queue store " + path + ": " + why +
                              " (the file is kept as it is: move it aside or restore a backup; "
                              "ficus does not start over it and lose the jobs in it)");
  };
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
  // writer's B-tree descents off pread(); a larger autocheckpoint makes the WAL-to-file copies
  // rarer (each is paid by the writer thread, between batches).
  if (!s->Exec("PRAGMA journal_mode=WAL") || !s->Exec("PRAGMA synchronous=FULL") ||
      !s->Exec("PRAGMA cache_size=-65536") || !s->Exec("PRAGMA mmap_size=1073741824") ||
      !s->Exec("PRAGMA wal_autocheckpoint=4000") || !s->Exec(kSchema)) {
    throw fail(s->failure_);
  }
  {
    sqlite3_stmt* v = s->Prepare("PRAGMA user_version");
    const int64_t version = v && sqlite3_step(v) == SQLITE_ROW ? sqlite3_column_int64(v, 0) : -1;
    sqlite3_finalize(v);
    if (version > kSchemaVersion) {
      throw fail("written by a newer ficus (schema " + std::to_string(version) + ")");
    }
    if (version < kSchemaVersion) {
      s->Exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
    }
  }
  s->insert_ = s->Prepare(
      "INSERT INTO jobs(token, queue, cluster, state, attempts, max_attempts, created_ms, "
      "updated_ms, next_ms, idem_key, fingerprint, method, target, headers, body) "
      "VALUES(?1, ?2, ?3, 0, 0, ?4, ?5, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11)");
  s->by_key_ = s->Prepare(
      "SELECT seq, token, fingerprint FROM jobs WHERE queue = ?1 AND idem_key = ?2 AND "
      "idem_key != '' "
      "AND created_ms >= ?3 ORDER BY seq DESC LIMIT 1");
  s->running_ = s->Prepare(
      "UPDATE jobs SET state = 1, attempts = attempts + 1, updated_ms = ?2 WHERE seq = ?1");
  s->finish_ = s->Prepare(
      "UPDATE jobs SET state = ?2, next_ms = ?3, result_status = ?4, result_headers = ?5, "
      "result_body = ?6, error = ?7, updated_ms = ?8 WHERE seq = ?1");
  s->get_ = s->Prepare(
      "SELECT seq, token, queue, state, attempts, max_attempts, created_ms, updated_ms, next_ms, "
      "method, target, result_status, result_headers, result_body, error FROM jobs WHERE seq = ?1 "
      "AND token = ?2");
  if (s->failed()) throw fail(s->failure_);
  return s;
}

Store::~Store() {
  for (sqlite3_stmt* st : {insert_, by_key_, running_, finish_, get_}) sqlite3_finalize(st);
  if (db_) sqlite3_close(db_);
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
  return Step(finish_, "finish");
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
  out->id = JobId(sqlite3_column_int64(get_, 0), Text(get_, 1));
  out->queue = Text(get_, 2);
  out->state = static_cast<State>(sqlite3_column_int(get_, 3));
  out->attempts = static_cast<uint32_t>(sqlite3_column_int(get_, 4));
  out->max_attempts = static_cast<uint32_t>(sqlite3_column_int(get_, 5));
  out->created_ms = sqlite3_column_int64(get_, 6);
  out->updated_ms = sqlite3_column_int64(get_, 7);
  out->next_ms = sqlite3_column_int64(get_, 8);
  out->method = Text(get_, 9);
  out->target = Text(get_, 10);
  out->result_status = sqlite3_column_int(get_, 11);
  out->result_headers = Text(get_, 12);
  out->result_body = Text(get_, 13);
  out->error = Text(get_, 14);
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
      "max_attempts, created_ms, next_ms FROM jobs WHERE queue = ?1 AND state < 2 ORDER BY seq");
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
    out->push_back(std::move(j));
  }
  if (rc != SQLITE_DONE && failure_.empty()) failure_ = std::string("load: ") + sqlite3_errmsg(db_);
  sqlite3_finalize(s);
  return rc == SQLITE_DONE;
}

int64_t Store::PruneFinished(std::string_view queue, int64_t before_ms) {
  sqlite3_stmt* s = Prepare("DELETE FROM jobs WHERE queue = ?1 AND state >= 2 AND updated_ms < ?2");
  if (s == nullptr) return 0;
  BindText(s, 1, queue);
  sqlite3_bind_int64(s, 2, before_ms);
  const bool ok = Step(s, "prune");
  sqlite3_finalize(s);
  return ok ? sqlite3_changes(db_) : 0;
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
  sqlite3_stmt* s = Prepare(
      "UPDATE jobs SET state = 0, attempts = 0, next_ms = 0, updated_ms = ?2 WHERE seq = ?1 AND "
      "token = ?3 AND state IN (3, 4) RETURNING queue, cluster, idem_key, method, target, "
      "headers, body, max_attempts, created_ms");
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
  return ok ? sqlite3_changes(db_) : 0;
}

}  // namespace ficus::queue::internal
