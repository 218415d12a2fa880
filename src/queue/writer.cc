// The writer thread: group commit. Whatever was submitted while the last batch was being
// written becomes the next batch: one transaction, one fsync (synchronous=FULL in WAL mode), so
// the commit rate, not the enqueue rate, is bounded by the disk.
#include "base/log.h"
#include "queue/internal/store.h"

namespace ficus::queue::internal {

Writer::Writer(std::unique_ptr<Store> store, CheckpointLimits limits)
    : store_(std::move(store)), path_(store_->path()), checkpointer_(path_, limits) {}

Writer::~Writer() { Stop(); }

void Writer::Start() {
  checkpointer_.Start();
  thread_ = std::thread([this] { Loop(); });
}

void Writer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  checkpointer_.Stop();
}

void Writer::Submit(Work* w) {
  w->next = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!stopped_) {
      const bool was_empty = head_ == nullptr;
      if (was_empty) {
        head_ = tail_ = w;
      } else {
        tail_->next = w;
        tail_ = w;
      }
      // Only the first submitter of a batch wakes the writer; later ones ride along.
      if (was_empty) cv_.notify_one();
      return;
    }
  }
  w->Done(false);
}

void Writer::Loop() {
  for (;;) {
    Work* batch = nullptr;
    bool stop = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return head_ != nullptr || stop_; });
      batch = head_;
      head_ = tail_ = nullptr;
      stop = stop_;
      if (stop) stopped_ = true;  // what came before the stop still runs below
    }
    if (batch != nullptr) {
      bool ok = store_->Begin();
      for (Work* w = batch; ok && w != nullptr; w = w->next) {
        w->Run(*store_);
        ok = !store_->failed();
      }
      ok = ok && store_->Commit();
      if (!ok) {
        // Logged when writes start failing and when they recover, not once per batch: a full
        // disk fails every batch until space comes back.
        if (!failing_) {
          log::error("queue store {}: write failed: {}", path_, store_->failure());
          Emit("queue_store", "", "writes fail: " + store_->failure());
        }
        failing_ = true;
        store_->Rollback();
        failed_batches_.fetch_add(1, std::memory_order_relaxed);
      } else {
        if (failing_) {
          log::info("queue store {}: writes succeed again", path_);
          Emit("queue_store", "", "writes succeed again");
        }
        failing_ = false;
        batches_.fetch_add(1, std::memory_order_relaxed);
        const int frames = store_->wal_frames();
        if (frames >= checkpointer_.limits().restart_frames) {
          // Completed after this batch's waiters are woken: the copy holds only the next batch.
          restart_pending_ = true;
        } else if (frames >= checkpointer_.limits().start_frames) {
          checkpointer_.Nudge(frames);
        }
      }
      // Done may free the work (a waiter that resumes): read `next` first.
      for (Work* w = batch; w != nullptr;) {
        Work* next = w->next;
        w->Done(ok);
        w = next;
      }
      if (restart_pending_ && store_->CompleteCheckpoint()) {
        restart_pending_ = false;
        wal_restarts_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (stop) return;
  }
}

}  // namespace ficus::queue::internal
