// ficus::queue — async offload: a route's request becomes a durable job (SQLite, WAL,
// synchronous=FULL, group commit by one writer thread) answered `202 Accepted` with the job's
// URL; per queue, a deliverer thread sends the jobs to the route's cluster at the configured
// concurrency and rate, retrying with back-off, dead-lettering after max_attempts. Delivery is
// at-least-once: a job whose delivery was in flight when ficus died is delivered again, with
// the same Idempotency-Key. docs/architecture.md "Async offload" has the design.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "policy/policy.h"

namespace ficus::queue {

// The job store's file in a data directory.
std::string StorePath(const std::string& data_dir);

// The process's queue service (one per process: the store, its writer thread, the deliverers).
// Start opens <data_dir>/queue.db (creating it), checks it (a corrupt or truncated file is an
// error naming the file; nothing is dropped silently), recovers every unfinished job (a job
// that was being delivered is queued again) and starts a deliverer per configured queue.
// Throws std::runtime_error (startup only). Does nothing when the config has no queues and no
// store exists yet. REQUIRES: not running.
void Start(const config::Config& config);
// A reload: deliverers start for new queues, take the new settings for kept ones and stop for
// removed ones (their jobs stay on disk for when the queue comes back). A data_dir change takes
// effect at the next start. Starts the service if the config brings the first queue.
void Reconfigure(const config::Config& config);
// Stops the deliverers (deliveries in flight are abandoned: they run again at the next start)
// and the writer (what it holds is committed first). After the workers stopped.
void Stop();
bool Running();

// Where queue events go (the timeline: telemetry::RecordEvent): kind "queue_store" (writes
// failing, and recovering), "queue_dead" (jobs dead-lettered, at most one event per queue per
// 10 s). Any thread; the sink must not block. Null: dropped.
using EventSink =
    std::function<void(std::string_view kind, const std::string& queue, std::string note)>;
void SetEventSink(EventSink sink);

// Appends the policies the route's `offload:` and `jobs:` keys ask for (proxy/policies.cc).
// Without a running service (a unit test, `ficus check`) an offload route answers 503.
void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain);

// Per-queue Prometheus families (depth, oldest age, enqueues, deliveries by outcome, attempts,
// delivery latency, dead letters), appended to `out`; nothing when no queue runs.
void RenderMetrics(std::string& out);

// Each running queue's counters (cumulative since the service started) and gauges now: what
// the telemetry store keeps per minute for the report's queue section. Any thread.
struct QueueStats {
  std::string name;
  uint64_t enqueued = 0;
  uint64_t succeeded = 0, failed = 0, dead = 0;  // finished jobs by outcome
  uint64_t attempts = 0;
  int64_t depth = 0;          // unfinished jobs
  int64_t oldest_age_ms = 0;  // of the oldest unfinished job; 0 = none
  int64_t dead_letters = 0;   // dead jobs kept in the store
};
std::vector<QueueStats> Stats();

// The admin API's job operations (`ficus jobs ...`; the server checks the token and audits):
// run on the admin thread, each waits for the writer's next batch (a few seconds at most).
struct AdminAnswer {
  int status = 200;
  std::string body;  // JSON
};
// Newest first; `queue` and `state` (queued, running, succeeded, failed, dead) may be empty.
AdminAnswer ListJobs(std::string_view queue, std::string_view state, size_t limit);
AdminAnswer ShowJob(std::string_view id);
// A failed or dead job runs again from attempt 1.
AdminAnswer RetryJob(std::string_view id);
// Deletes the finished jobs in `state` (succeeded, failed or dead) of `queue` (all if empty).
AdminAnswer PurgeJobs(std::string_view queue, std::string_view state);

// Copies the store to `dest` (a consistent snapshot, safe while ficus runs): `ficus backup`.
// False with *error set on failure; true (and nothing copied) when there is no store.
bool Backup(const std::string& data_dir, const std::string& dest_dir, std::string* error);
// `ficus restore`: the backup's store (checked first) into data_dir, only while no ficus runs
// on it (its store lock is free). True with *restored false when the backup has no store.
bool Restore(const std::string& backup_dir, const std::string& data_dir, bool* restored,
             std::string* error);

}  // namespace ficus::queue
