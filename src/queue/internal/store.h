// The job store (SQLite, WAL, synchronous=FULL, in <data_dir>/queue.db) and the one writer
// thread that owns its connection: every change and every read is a Work the writer runs in its
// next batch, one transaction and one fsync per batch (group commit), so many concurrent
// enqueues cost one commit. Only the writer thread touches SQLite.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace ficus::queue::internal {

// A job's state. Stored as its number: never renumber.
enum class State : uint8_t { kQueued = 0, kRunning = 1, kSucceeded = 2, kFailed = 3, kDead = 4 };
const char* StateName(State s);
inline bool Finished(State s) { return s >= State::kSucceeded; }

// A job to deliver: what the deliverer holds in memory (the store has the same row).
struct Job {
  std::string id;     // JobId(seq, token); set by Store::Add
  std::string token;  // 32 lowercase hex digits: 128 random bits (NewToken)
  std::string queue;
  std::string cluster;
  std::string idempotency_key;  // the client's; empty: the job id is the key
  std::string method;
  std::string target;
  std::string headers;  // the client's fields to send on, raw "Name: value\r\n" lines
  std::string body;
  uint32_t attempts = 0;
  uint32_t max_attempts = 5;
  int64_t created_ms = 0;    // wall clock
  int64_t next_ms = 0;       // not before (wall clock); 0 = now
  std::string callback_url;  // the URL the request named for its result; empty: the queue's
};

// A job's row as the job URL and the admin API show it.
struct JobView {
  std::string id;
  std::string queue;
  State state = State::kQueued;
  uint32_t attempts = 0;
  uint32_t max_attempts = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  int64_t next_ms = 0;
  std::string method;
  std::string target;
  int result_status = 0;       // 0: no answer yet
  std::string result_headers;  // raw "Name: value\r\n" lines (selected fields)
  std::string result_body;
  std::string error;  // the last attempt's failure, when it had no answer
};

// What an attempt ended with, for Store::Finish.
struct AttemptResult {
  State state = State::kQueued;  // kQueued (retry at next_ms), kSucceeded, kFailed, kDead
  int64_t next_ms = 0;
  int status = 0;
  std::string headers;
  std::string body;
  std::string error;
  // For a finished job: its callback is to be sent (callback_state 1 until it is), and what
  // the row keeps in bytes (the retention bound's count, as kRowBytes in store.cc).
  bool callback = false;
  std::string queue;
  int64_t stored_bytes = 0;
};

// A finished job's callback: 0 none, 1 to send (recovered at start), 2 sent, 3 given up.
enum class CallbackState : uint8_t { kNone = 0, kPending = 1, kSent = 2, kGaveUp = 3 };

// A callback to send: the finished job as its URL shows it, and the URL the request named
// (empty: the queue's).
struct PendingCallback {
  JobView job;
  std::string url;
};

// The SQLite connection. Methods run on the writer thread, inside the batch's transaction; a
// storage failure (disk full, I/O error) sets failed() and the batch is rolled back.
class Store {
 public:
  // Opens (creating) the file and checks it: a file that is not a database, a truncated or
  // corrupt one throws std::runtime_error naming the file and what SQLite found.
  static std::unique_ptr<Store> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  // Frames in the WAL after the last commit (sqlite3_wal_hook; the Checkpointer copies them
  // into the file: the writer's connection never checkpoints on its own).
  int wal_frames() const { return wal_frames_; }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }

  bool Begin();
  bool Commit();
  // Between transactions: copies what is left of the WAL into the file (a passive checkpoint
  // on the writer's connection; the Checkpointer has copied most of it). True when every frame
  // is copied: the next transaction starts the WAL over.
  bool CompleteCheckpoint();
  void Rollback();  // also clears failed()

  enum class Insert : uint8_t { kInserted, kExisting, kConflict, kError };
  // Inserts `job` (its token set by the caller; sets its id, and its key to the id when it had
  // none) unless a job of the same queue has its
  // idempotency key and is not older than `key_since_ms`: then kExisting with that job's id in
  // *existing_id when `fingerprint` matches, kConflict when it does not. INT64_MAX: no lookup
  // (the job's id is its key).
  Insert Add(Job& job, uint64_t fingerprint, int64_t key_since_ms, std::string* existing_id);
  // An attempt starts: state running, attempts + 1.
  bool MarkRunning(std::string_view id, int64_t now_ms);
  bool Finish(std::string_view id, const AttemptResult& r, int64_t now_ms);
  bool Get(std::string_view id, JobView* out);
  // Every unfinished job of `queue`, oldest first; running ones become queued again (their
  // delivery was cut short). Sums their bodies into *bytes.
  bool LoadOpen(std::string_view queue, std::vector<std::unique_ptr<Job>>* out);
  // Deletes the finished jobs of `queue` updated before `before_ms` (not those whose callback
  // is still to be sent). Returns how many.
  int64_t PruneFinished(std::string_view queue, int64_t before_ms);
  // Deletes `queue`'s oldest finished jobs until what they keep is at most `max_bytes` (at most
  // 100,000 per call). Returns how many.
  int64_t PruneBytes(std::string_view queue, int64_t max_bytes);
  // The finished jobs of `queue` whose callback is still to be sent, oldest first.
  bool LoadPendingCallbacks(std::string_view queue, std::vector<PendingCallback>* out);
  bool SetCallbackState(std::string_view id, CallbackState state);
  // How many jobs of `queue` are dead.
  int64_t CountDead(std::string_view queue);
  // The admin API: newest first, optionally of one queue and state (no body or result).
  bool List(std::string_view queue, int state, size_t limit, std::vector<JobView>* out);
  // A failed or dead job runs again: queued, attempts 0; its row into *job. False when there
  // is no such job or it is not finished with a failure.
  bool Requeue(std::string_view id, int64_t now_ms, Job* job);
  // Deletes the finished jobs of `queue` (all queues when empty) in `state` (>= 2). How many.
  int64_t Purge(std::string_view queue, int state);

 private:
  explicit Store(std::string path) : path_(std::move(path)) {}
  sqlite3_stmt* Prepare(const char* sql);
  bool Step(sqlite3_stmt* s, const char* what);  // SQLITE_DONE or ROW; else sets failure_
  bool Exec(const char* sql);
  // The bytes `queue`'s finished jobs keep: counted once (a scan of the row headers), then kept
  // up to date by Finish, the prunes and Requeue (approximate after a rolled-back batch).
  int64_t& FinishedBytes(std::string_view queue);
  // Steps a DELETE ... RETURNING <bytes> to its end; subtracts from the queue's tally. Rows.
  int64_t DeleteCounting(sqlite3_stmt* s, std::string_view queue, const char* what);

  std::string path_;
  int lock_fd_ = -1;  // flock(LOCK_EX) on the file: one process per store
  std::map<std::string, int64_t> finished_bytes_;
  sqlite3* db_ = nullptr;
  std::string failure_;
  int wal_frames_ = 0;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* by_key_ = nullptr;
  sqlite3_stmt* running_ = nullptr;
  sqlite3_stmt* finish_ = nullptr;
  sqlite3_stmt* get_ = nullptr;
};

// Copies the WAL into the store's file on its own thread and connection, so that no commit
// (and no waiting 202) pays for copying it: the writer nudges it after a commit that left at
// least start_frames in the WAL, and it runs a PASSIVE checkpoint beside the writer's
// transactions. Under continuous writes a passive checkpoint never reaches the WAL's end, and
// the WAL starts over from its beginning only when a write transaction begins with every frame
// copied; so once the WAL has restart_frames, the writer itself completes the checkpoint
// between two batches (Store::CompleteCheckpoint: the few frames the checkpointer has not
// copied yet, and one fsync of the file) and its next transaction starts the WAL over. The WAL
// stays bounded near restart_frames; journal_size_limit truncates it after a burst. (A
// RESTART checkpoint from this thread does not work: it waits for the write lock, and the
// writer, which takes it again right after each commit, starves it.)
struct CheckpointLimits {
  int start_frames = 1000;      // 4 MB of 4 KiB pages
  int restart_frames = 16'000;  // 64 MB
};
class Checkpointer {
 public:
  Checkpointer(std::string path, CheckpointLimits limits);
  ~Checkpointer();  // Stop()
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;
  void Start();
  void Stop();
  const CheckpointLimits& limits() const { return limits_; }
  void Nudge(int wal_frames);
  // Passive checkpoints run.
  uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  std::string path_;
  CheckpointLimits limits_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;  // guards frames_, stop_
  std::condition_variable cv_;
  int frames_ = 0;  // the WAL's frames at the last nudge; 0: nothing to do
  bool stop_ = false;
  std::thread thread_;
  std::atomic<uint64_t> checkpoints_{0};
};

// A unit of work for the writer: Run inside the next batch's transaction, Done after it was
// committed (true) or rolled back (false). The submitter keeps it alive until Done.
class Work {
 public:
  virtual void Run(Store& store) = 0;
  virtual void Done(bool committed) = 0;
  Work* next = nullptr;  // the writer's intrusive list

 protected:
  ~Work() = default;
};

// The writer thread. Submit from any thread; never blocks beyond a short lock.
class Writer {
 public:
  explicit Writer(std::unique_ptr<Store> store, CheckpointLimits limits = {});
  ~Writer();  // Stop()
  void Start();
  // Runs what is queued, then stops. Work submitted later is refused (Done(false)).
  void Stop();
  void Submit(Work* w);

  // Counters (relaxed): batches committed, works run, failed batches.
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t failed_batches() const { return failed_batches_.load(std::memory_order_relaxed); }
  const std::string& path() const { return path_; }
  const Checkpointer& checkpointer() const { return checkpointer_; }
  // Checkpoints the writer completed (Store::CompleteCheckpoint), each followed by a WAL that
  // starts over.
  uint64_t wal_restarts() const { return wal_restarts_.load(std::memory_order_relaxed); }

 private:
  void Loop();
  std::unique_ptr<Store> store_;
  std::string path_;
  Checkpointer checkpointer_;
  std::mutex mu_;  // guards head_, tail_, stop_
  std::condition_variable cv_;
  Work* head_ = nullptr;
  Work* tail_ = nullptr;
  bool stop_ = false;
  bool stopped_ = false;
  bool failing_ = false;          // the last batch failed (writer thread only)
  bool restart_pending_ = false;  // the WAL reached restart_frames (writer thread only)
  std::thread thread_;
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> failed_batches_{0};
  std::atomic<uint64_t> wal_restarts_{0};
};

// Hands an event to the sink queue::SetEventSink set (service.cc), if any.
void Emit(std::string_view kind, const std::string& queue, std::string note);

// Calls fn(name, value) for each raw "Name: value\r\n" line of stored fields.
template <class F>
void ForEachField(std::string_view raw, F&& fn) {
  while (!raw.empty()) {
    const size_t eol = raw.find("\r\n");
    std::string_view line = raw.substr(0, eol);
    raw = eol == std::string_view::npos ? std::string_view() : raw.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    fn(line.substr(0, colon), value);
  }
}

// A job's public id: its sequence in the store (16 hex digits), then a token of 128 random
// bits (32 hex digits), the unguessable part. Why not the token alone: an index over random
// keys dirties a random page per insert, and the writer pays one WAL frame per dirty page; the
// sequence is the table's own key, so every lookup and update goes by it and the token is
// only compared.
inline constexpr size_t kJobIdSize = 48;
std::string NewToken();  // 128 random bits as 32 lowercase hex digits (getrandom)
std::string JobId(int64_t seq, std::string_view token);
// False when `id` is not of that form.
bool ParseJobId(std::string_view id, int64_t* seq, std::string_view* token);
inline bool IsJobId(std::string_view id) {
  int64_t seq;
  std::string_view token;
  return ParseJobId(id, &seq, &token);
}
// FNV-1a 64 of the method, target and body: what an Idempotency-Key is bound to.
uint64_t Fingerprint(std::string_view method, std::string_view target, std::string_view body);
int64_t WallMillis();

}  // namespace ficus::queue::internal
