// The queue service's life (start, reload, stop), the policy builder, /metrics and backup.
#include "queue/internal/service.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>

#include "base/log.h"
#include "observe/observe.h"
#include "queue/queue.h"

namespace ficus::queue {

using internal::QueueRuntime;

namespace {

struct Service {
  std::string data_dir;
  std::shared_ptr<internal::Writer> writer;
  std::map<std::string, std::shared_ptr<QueueRuntime>> queues;
};

std::mutex g_mu;  // guards g_service (start, reload, stop, builders, metrics)
std::unique_ptr<Service> g_service;
std::vector<QueueStats> g_final_stats;  // Stats() after Stop (guarded by g_mu)
std::mutex g_sink_mu;                   // guards g_sink
std::shared_ptr<const EventSink> g_sink;

std::vector<QueueStats> StatsOf(const std::vector<std::shared_ptr<QueueRuntime>>& queues) {
  const int64_t now = internal::WallMillis();
  std::vector<QueueStats> out;
  for (const auto& rt : queues) {
    const internal::Counters& c = rt->counters;
    auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
    const int64_t oldest = load(c.oldest_created_ms);
    out.push_back({rt->name, load(c.enqueued), load(c.succeeded), load(c.failed), load(c.dead),
                   load(c.attempts), load(c.depth),
                   oldest == 0 ? 0 : std::max<int64_t>(0, now - oldest), load(c.dead_letters)});
  }
  return out;
}

// Moves one queue's unfinished jobs from the store into its deliverer, counting them against
// the queue's bounds.
class LoadWork final : public internal::Work {
 public:
  explicit LoadWork(std::shared_ptr<QueueRuntime> rt) : rt_(std::move(rt)) {}
  void Run(internal::Store& s) override {
    s.LoadOpen(rt_->name, &jobs_);
    s.LoadPendingCallbacks(rt_->name, &callbacks_);
  }
  void Done(bool committed) override {
    if (!committed) {
      log::error("queue {}: its jobs could not be loaded from the store; they stay on disk",
                 rt_->name);
    } else {
      int64_t bytes = 0;
      for (const auto& j : jobs_) bytes += static_cast<int64_t>(j->body.size());
      rt_->counters.depth.fetch_add(static_cast<int64_t>(jobs_.size()));
      rt_->counters.bytes.fetch_add(bytes);
      if (!jobs_.empty()) log::info("queue {}: {} job(s) recovered", rt_->name, jobs_.size());
      rt_->deliverer->Push(std::move(jobs_));
      if (!callbacks_.empty()) {
        log::info("queue {}: {} callback(s) still to send", rt_->name, callbacks_.size());
        rt_->deliverer->PushCallbacks(std::move(callbacks_));
      }
    }
    delete this;
  }

 private:
  std::shared_ptr<QueueRuntime> rt_;
  std::vector<std::unique_ptr<internal::Job>> jobs_;
  std::vector<internal::PendingCallback> callbacks_;
};

std::shared_ptr<QueueRuntime> NewQueue(Service& s, const config::Queue& q,
                                       const config::Config& config) {
  auto rt = std::make_shared<QueueRuntime>();
  rt->name = q.name;
  rt->writer = s.writer;
  rt->deliverer = std::make_unique<internal::Deliverer>(q.name, *s.writer, rt->counters);
  rt->deliverer->Configure(q, config.clusters);
  rt->deliverer->Start();
  internal::LoadJobs(rt);
  return rt;
}

void StartLocked(const config::Config& config) {
  const std::string path = StorePath(config.data_dir);
  if (config.queues.empty() && !std::filesystem::exists(path)) return;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec)
    throw std::runtime_error("queue store: data_dir " + config.data_dir + ": " + ec.message());
  auto s = std::make_unique<Service>();
  s->data_dir = config.data_dir;
  s->writer = std::make_shared<internal::Writer>(internal::Store::Open(path));
  s->writer->Start();
  for (const config::Queue& q : config.queues) s->queues[q.name] = NewQueue(*s, q, config);
  g_service = std::move(s);
  g_final_stats.clear();
}

}  // namespace

namespace internal {

std::shared_ptr<QueueRuntime> FindQueue(const std::string& name) {
  std::lock_guard lock(g_mu);
  if (!g_service) return nullptr;
  auto it = g_service->queues.find(name);
  return it == g_service->queues.end() ? nullptr : it->second;
}

void Emit(std::string_view kind, const std::string& queue, std::string note) {
  std::shared_ptr<const EventSink> sink;
  {
    std::lock_guard lock(g_sink_mu);
    sink = g_sink;
  }
  if (sink && *sink) (*sink)(kind, queue, std::move(note));
}

std::shared_ptr<Writer> ServiceWriter() {
  std::lock_guard lock(g_mu);
  return g_service ? g_service->writer : nullptr;
}

void LoadJobs(const std::shared_ptr<QueueRuntime>& runtime) {
  runtime->writer->Submit(new LoadWork(runtime));
}

}  // namespace internal

std::string StorePath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "queue.db").string();
}

void Start(const config::Config& config) {
  std::lock_guard lock(g_mu);
  FICUS_CHECK(!g_service);
  StartLocked(config);
}

void Reconfigure(const config::Config& config) {
  std::lock_guard lock(g_mu);
  if (!g_service) {
    try {
      StartLocked(config);
    } catch (const std::exception& e) {
      log::error("reload: {}; offloaded routes answer 503", e.what());
    }
    return;
  }
  Service& s = *g_service;
  if (config.data_dir != s.data_dir) {
    log::warn("reload: the queue store stays in {} until a restart", s.data_dir);
  }
  std::map<std::string, std::shared_ptr<QueueRuntime>> next;
  for (const config::Queue& q : config.queues) {
    auto it = s.queues.find(q.name);
    if (it != s.queues.end()) {
      it->second->deliverer->Configure(q, config.clusters);
      next[q.name] = it->second;
    } else {
      next[q.name] = NewQueue(s, q, config);
    }
  }
  for (auto& [name, rt] : s.queues) {
    if (next.count(name) == 0) {
      log::info("reload: queue {} removed; its unfinished jobs stay in the store", name);
      rt->deliverer->Stop();
    }
  }
  s.queues = std::move(next);
}

void Stop() {
  std::unique_ptr<Service> s;
  {
    std::lock_guard lock(g_mu);
    s = std::move(g_service);
  }
  if (!s) return;
  for (auto& [name, rt] : s->queues) rt->deliverer->Stop();
  s->writer->Stop();
  // The telemetry thread's last tick comes after this (the server stops it last): it takes the
  // queues' final counts from here.
  std::vector<std::shared_ptr<QueueRuntime>> queues;
  for (auto& [name, rt] : s->queues) queues.push_back(rt);
  std::vector<QueueStats> final_stats = StatsOf(queues);
  std::lock_guard lock(g_mu);
  g_final_stats = std::move(final_stats);
}

void SetEventSink(EventSink sink) {
  auto next = sink ? std::make_shared<const EventSink>(std::move(sink)) : nullptr;
  std::lock_guard lock(g_sink_mu);
  g_sink = std::move(next);
}

bool Running() {
  std::lock_guard lock(g_mu);
  return g_service != nullptr;
}

void BuildPolicies(const policy::BuildContext& ctx, policy::Chain& chain) {
  const config::Route& route = ctx.route;
  if (!route.offload && !route.jobs) return;
  const std::string& name = route.offload ? route.offload->queue : route.jobs->queue;
  const config::Queue* q = nullptr;
  for (const config::Queue& each : ctx.config.queues) {
    if (each.name == name) q = &each;
  }
  if (q == nullptr) return;  // the loader refuses such a config
  auto rt = internal::FindQueue(name);
  if (route.offload) {
    chain.push_back(internal::MakeOffloadPolicy(*route.offload, *q, route.cluster, rt));
  } else {
    chain.push_back(internal::MakeJobsPolicy(*q, rt));
  }
}

std::vector<QueueStats> Stats() {
  std::vector<std::shared_ptr<QueueRuntime>> queues;
  {
    std::lock_guard lock(g_mu);
    if (!g_service) return g_final_stats;
    for (auto& [name, rt] : g_service->queues) queues.push_back(rt);
  }
  return StatsOf(queues);
}

void RenderMetrics(std::string& out) {
  std::vector<std::shared_ptr<QueueRuntime>> queues;
  {
    std::lock_guard lock(g_mu);
    if (!g_service) return;
    for (auto& [name, rt] : g_service->queues) queues.push_back(rt);
  }
  if (queues.empty()) return;
  observe::MetricWriter w(out);
  const int64_t now = internal::WallMillis();
  auto gauge = [&](const char* name, const char* help, auto get) {
    w.Family(name, "gauge", help);
    for (const auto& rt : queues) w.GaugeSample(name, {{"queue", rt->name}}, get(rt->counters));
  };
  auto counter = [&](const char* name, const char* help, auto get) {
    w.Family(name, "counter", help);
    for (const auto& rt : queues) w.Sample(name, {{"queue", rt->name}}, get(rt->counters));
  };
  using C = internal::Counters;
  auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  gauge("ficus_queue_depth", "Unfinished jobs (queued, waiting to retry or being delivered).",
        [&](const C& c) { return load(c.depth); });
  gauge("ficus_queue_bytes", "Request bodies of the unfinished jobs, bytes.",
        [&](const C& c) { return load(c.bytes); });
  w.Family("ficus_queue_oldest_age_seconds", "gauge", "Age of the oldest unfinished job.");
  for (const auto& rt : queues) {
    const int64_t oldest = load(rt->counters.oldest_created_ms);
    w.DoubleSample("ficus_queue_oldest_age_seconds", {{"queue", rt->name}},
                   oldest == 0 ? 0.0 : static_cast<double>(now - oldest) / 1000.0);
  }
  gauge("ficus_queue_dead_letters", "Dead jobs (max_attempts tried) kept in the store.",
        [&](const C& c) { return load(c.dead_letters); });
  counter("ficus_queue_enqueued_total", "Jobs stored and answered 202 Accepted.",
          [&](const C& c) { return load(c.enqueued); });
  counter("ficus_queue_duplicates_total",
          "Requests answered with the job of their repeated Idempotency-Key.",
          [&](const C& c) { return load(c.duplicates); });
  counter("ficus_queue_conflicts_total",
          "Requests refused 422: their Idempotency-Key names a job of another request.",
          [&](const C& c) { return load(c.conflicts); });
  counter("ficus_queue_full_total", "Requests refused 503: the queue was at max_jobs or max_bytes.",
          [&](const C& c) { return load(c.full); });
  counter("ficus_queue_write_failures_total",
          "Requests refused 503: the store could not write them (a full disk, an I/O error).",
          [&](const C& c) { return load(c.write_failures); });
  counter("ficus_queue_attempts_total", "Delivery attempts started.",
          [&](const C& c) { return load(c.attempts); });
  counter("ficus_queue_retries_total", "Delivery attempts that were retries.",
          [&](const C& c) { return load(c.retries); });
  w.Family("ficus_queue_deliveries_total", "counter", "Jobs finished, by outcome.");
  for (const auto& rt : queues) {
    w.Sample("ficus_queue_deliveries_total", {{"queue", rt->name}, {"outcome", "succeeded"}},
             load(rt->counters.succeeded));
    w.Sample("ficus_queue_deliveries_total", {{"queue", rt->name}, {"outcome", "failed"}},
             load(rt->counters.failed));
    w.Sample("ficus_queue_deliveries_total", {{"queue", rt->name}, {"outcome", "dead"}},
             load(rt->counters.dead));
  }
  w.Family("ficus_queue_delivery_seconds", "summary",
           "Delivery attempts that got an answer: request sent to the whole response.");
  for (const auto& rt : queues) {
    w.DoubleSample("ficus_queue_delivery_seconds_sum", {{"queue", rt->name}},
                   static_cast<double>(load(rt->counters.latency_us_sum)) / 1e6);
    w.Sample("ficus_queue_delivery_seconds_count", {{"queue", rt->name}},
             load(rt->counters.latency_count));
  }
  w.Family("ficus_queue_callbacks_total", "counter",
           "Job callbacks (queues with callback:), by outcome: sent (2xx), failed (given up "
           "after max_attempts); attempts counts every POST.");
  for (const auto& rt : queues) {
    w.Sample("ficus_queue_callbacks_total", {{"queue", rt->name}, {"outcome", "sent"}},
             load(rt->counters.callbacks_sent));
    w.Sample("ficus_queue_callbacks_total", {{"queue", rt->name}, {"outcome", "failed"}},
             load(rt->counters.callbacks_failed));
    w.Sample("ficus_queue_callbacks_total", {{"queue", rt->name}, {"outcome", "attempts"}},
             load(rt->counters.callback_attempts));
  }
  w.Family("ficus_queue_writer_batches_total", "counter",
           "Group commits of the job store (one transaction and fsync each), by result.");
  const auto& writer = *queues.front()->writer;
  w.Sample("ficus_queue_writer_batches_total", {{"result", "ok"}}, writer.batches());
  w.Sample("ficus_queue_writer_batches_total", {{"result", "failed"}}, writer.failed_batches());
}

namespace {

// Copies one SQLite database into another with the online backup API (a consistent snapshot
// while a writer keeps writing to `src`).
bool CopyDatabase(const std::string& src, const std::string& dest, std::string* error) {
  sqlite3* from = nullptr;
  sqlite3* to = nullptr;
  bool ok = false;
  if (sqlite3_open_v2(src.c_str(), &from, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK &&
      sqlite3_open_v2(dest.c_str(), &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) ==
          SQLITE_OK) {
    sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
    if (b != nullptr) {
      int rc;
      do {
        rc = sqlite3_backup_step(b, -1);
        if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
      } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
      sqlite3_backup_finish(b);
      ok = rc == SQLITE_DONE;
    }
    if (!ok) *error = src + " -> " + dest + ": " + sqlite3_errmsg(to);
  } else {
    *error = src + " -> " + dest + ": " + (to ? sqlite3_errmsg(to) : sqlite3_errmsg(from));
  }
  sqlite3_close(from);
  sqlite3_close(to);
  return ok;
}

}  // namespace

bool Backup(const std::string& data_dir, const std::string& dest_dir, std::string* error) {
  const std::string src = StorePath(data_dir);
  if (!std::filesystem::exists(src)) return true;
  return CopyDatabase(src, StorePath(dest_dir), error);
}

bool Restore(const std::string& backup_dir, const std::string& data_dir, bool* restored,
             std::string* error) {
  *restored = false;
  const std::string src = StorePath(backup_dir);
  if (!std::filesystem::exists(src)) return true;
  // The backup must be a sound store before it replaces anything (Open checks it; it also
  // takes the backup's lock, so a ficus running on the backup directory is refused too).
  try {
    internal::Store::Open(src);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  const std::string dest = StorePath(data_dir);
  // The running ficus holds the store's lock: its deliverers have the jobs in memory, and a
  // store replaced under them would deliver what the backup does not have and miss what it
  // has. Held here until the copy is done, so no ficus starts on a half-copied store.
  const int fd = ::open(dest.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    *error = dest + ": " + std::strerror(errno);
    return false;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    *error = dest +
             " is in use by a running ficus: stop it, then restore the job queue (jobs "
             "in flight would be lost or delivered twice if it were replaced under it)";
    return false;
  }
  const bool ok = CopyDatabase(src, dest, error);
  ::close(fd);
  *restored = ok;
  return ok;
}

}  // namespace ficus::queue
