// The admin API's job operations: list, show, retry, purge. Each is a Work the writer runs in
// its next batch; the admin thread waits for it (never a worker).
#include <condition_variable>
#include <functional>
#include <mutex>

#include "base/json.h"
#include "queue/internal/service.h"
#include "queue/queue.h"

namespace ficus::queue {

namespace {

using internal::JobView;
using internal::State;
using internal::Store;

// Runs `fn` in the writer's next batch and waits for the commit. False when no service runs,
// the batch failed or it took longer than the bound.
class Blocking final : public internal::Work {
 public:
  explicit Blocking(std::function<void(Store&)> fn) : fn_(std::move(fn)) {}
  void Run(Store& s) override { fn_(s); }
  void Done(bool committed) override {
    std::lock_guard lock(mu_);
    done_ = true;
    committed_ = committed;
    cv_.notify_one();
  }
  // The writer always calls Done (it refuses work after Stop), within one batch.
  bool Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    return committed_;
  }

 private:
  std::function<void(Store&)> fn_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool committed_ = false;
};

bool RunBlocking(std::function<void(Store&)> fn) {
  auto writer = internal::ServiceWriter();
  if (!writer) return false;
  Blocking b(std::move(fn));
  writer->Submit(&b);
  return b.Wait();
}

AdminAnswer Error(int status, std::string_view error, std::string_view detail) {
  JsonWriter w;
  w.BeginObject().Key("error").String(error).Key("detail").String(detail).EndObject();
  return {status, w.Take() + "\n"};
}

// "queued" -> 0 ... ; -1 for empty; -2 for an unknown name.
int StateNumber(std::string_view name) {
  if (name.empty()) return -1;
  for (int s = 0; s <= static_cast<int>(State::kDead); ++s) {
    if (name == internal::StateName(static_cast<State>(s))) return s;
  }
  return -2;
}

AdminAnswer Unavailable() { return Error(503, "unavailable", "the job queue is not running"); }

}  // namespace

AdminAnswer ListJobs(std::string_view queue, std::string_view state, size_t limit) {
  const int st = StateNumber(state);
  if (st == -2)
    return Error(400, "bad_query", "state is one of queued, running, succeeded, failed, dead");
  std::vector<JobView> jobs;
  if (!RunBlocking([&](Store& s) { s.List(queue, st, limit, &jobs); })) return Unavailable();
  JsonWriter w;
  w.BeginObject().Key("jobs").BeginArray();
  for (const JobView& v : jobs) {
    w.BeginObject().Key("id").String(v.id).Key("queue").String(v.queue);
    w.Key("state").String(internal::StateName(v.state)).Key("attempts").Uint(v.attempts);
    w.Key("created_ms").Int(v.created_ms).Key("updated_ms").Int(v.updated_ms);
    w.Key("method").String(v.method).Key("target").String(v.target);
    if (v.result_status != 0) w.Key("status").Int(v.result_status);
    if (!v.error.empty()) w.Key("error").String(v.error);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return {200, w.Take() + "\n"};
}

AdminAnswer ShowJob(std::string_view id) {
  if (!internal::IsJobId(id)) return Error(404, "no_such_job", "a job id is 48 hex digits");
  JobView v;
  bool found = false;
  if (!RunBlocking([&](Store& s) { found = s.Get(id, &v); })) return Unavailable();
  if (!found) return Error(404, "no_such_job", "no job with this id (or it is past retention)");
  return {200, internal::JobJson(v, "")};
}

AdminAnswer RetryJob(std::string_view id) {
  if (!internal::IsJobId(id)) return Error(404, "no_such_job", "a job id is 48 hex digits");
  auto job = std::make_unique<internal::Job>();
  bool found = false;
  if (!RunBlocking([&](Store& s) { found = s.Requeue(id, internal::WallMillis(), job.get()); }))
    return Unavailable();
  if (!found) return Error(409, "not_retryable", "no failed or dead job with this id");
  auto rt = internal::FindQueue(job->queue);
  if (rt) {
    rt->counters.depth.fetch_add(1, std::memory_order_relaxed);
    rt->counters.bytes.fetch_add(static_cast<int64_t>(job->body.size()), std::memory_order_relaxed);
    rt->deliverer->Push(std::move(job));
  }
  // Without its queue configured the job waits in the store for the queue to come back.
  JsonWriter w;
  w.BeginObject().Key("id").String(id).Key("state").String("queued").EndObject();
  return {200, w.Take() + "\n"};
}

AdminAnswer PurgeJobs(std::string_view queue, std::string_view state) {
  const int st = StateNumber(state);
  if (st < static_cast<int>(State::kSucceeded))
    return Error(400, "bad_query", "state is one of succeeded, failed, dead");
  int64_t n = 0;
  if (!RunBlocking([&](Store& s) { n = s.Purge(queue, st); })) return Unavailable();
  JsonWriter w;
  w.BeginObject().Key("purged").Int(n).EndObject();
  return {200, w.Take() + "\n"};
}

}  // namespace ficus::queue
