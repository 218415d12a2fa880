// The checkpointer: the job store's WAL copied into its file on a thread of its own, off the
// commit path (store.h says why and how the WAL stays bounded).
#include <sqlite3.h>

#include "base/log.h"
#include "queue/internal/store.h"

namespace ficus::queue::internal {

Checkpointer::Checkpointer(std::string path, CheckpointLimits limits)
    : path_(std::move(path)), limits_(limits) {}

Checkpointer::~Checkpointer() { Stop(); }

void Checkpointer::Start() {
  // Its own connection: SQLite serialises what one connection does, and the writer's must stay
  // free for the next batch. No schema work here: the writer's Open made the file sound.
  if (sqlite3_open_v2(path_.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    log::error(
        "queue store {}: the checkpointer cannot open it ({}); the WAL grows until the "
        "next start",
        path_, db_ ? sqlite3_errmsg(db_) : "out of memory");
    sqlite3_close(db_);
    db_ = nullptr;
    return;
  }
  // The checkpoint fsyncs the WAL, copies, then fsyncs the file before the WAL may be reused.
  sqlite3_exec(db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  thread_ = std::thread([this] { Loop(); });
}

void Checkpointer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  sqlite3_close(db_);  // before the writer's: the last connection to close folds the WAL in
  db_ = nullptr;
}

void Checkpointer::Nudge(int wal_frames) {
  {
    std::lock_guard lock(mu_);
    frames_ = wal_frames;
  }
  cv_.notify_one();
}

void Checkpointer::Loop() {
  bool failing = false;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return frames_ > 0 || stop_; });
      if (stop_) return;
      frames_ = 0;
    }
    int log_frames = 0, copied = 0;
    const int rc =
        sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, &log_frames, &copied);
    checkpoints_.fetch_add(1, std::memory_order_relaxed);
    // BUSY: the writer's own checkpoint (Store::CompleteCheckpoint) runs; the next nudge tries
    // again.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      if (!failing) {
        log::error(
            "queue store {}: checkpoint failed: {}; the WAL keeps the jobs and grows "
            "until it succeeds",
            path_, sqlite3_errmsg(db_));
      }
      failing = true;
    } else if (rc == SQLITE_OK) {
      failing = false;
    }
  }
}

}  // namespace ficus::queue::internal
