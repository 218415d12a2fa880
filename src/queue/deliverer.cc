// The deliverer: one thread per queue sending its jobs to the cluster each job came for, at
// most `concurrency` at once and `rate` starts per second, each attempt bounded by
// attempt_timeout; retries with exponential back-off and jitter; dead after max_attempts.
// Every state change is a Work for the writer (batched with the enqueues).
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "http/http.h"
#include "net/net.h"
#include "queue/internal/runtime.h"

namespace ficus::queue::internal {

namespace {

class MarkRunningWork final : public Work {
 public:
  MarkRunningWork(std::string id, int64_t now) : id_(std::move(id)), now_(now) {}
  void Run(Store& s) override { s.MarkRunning(id_, now_); }
  void Done(bool) override { delete this; }

 private:
  std::string id_;
  int64_t now_;
};

class FinishWork final : public Work {
 public:
  FinishWork(std::string id, AttemptResult r, int64_t now)
      : id_(std::move(id)), r_(std::move(r)), now_(now) {}
  void Run(Store& s) override { s.Finish(id_, r_, now_); }
  // Not committed (a full disk): the store still says running, so the job is delivered again
  // after a restart; at-least-once holds.
  void Done(bool) override { delete this; }

 private:
  std::string id_;
  AttemptResult r_;
  int64_t now_;
};

// Bounded retention: the queue's finished jobs older than `retention` go, and the dead-letter
// count is refreshed for /metrics.
class PruneWork final : public Work {
 public:
  PruneWork(std::string queue, int64_t before_ms, int64_t max_bytes, Counters& counters)
      : queue_(std::move(queue)),
        before_ms_(before_ms),
        max_bytes_(max_bytes),
        counters_(counters) {}
  void Run(Store& s) override {
    s.PruneFinished(queue_, before_ms_);
    s.PruneBytes(queue_, max_bytes_);
    dead_ = s.CountDead(queue_);
  }
  void Done(bool committed) override {
    if (committed) counters_.dead_letters.store(dead_, std::memory_order_relaxed);
    delete this;
  }

 private:
  std::string queue_;
  int64_t before_ms_;
  int64_t max_bytes_;
  Counters& counters_;
  int64_t dead_ = 0;
};

// The fields of the application's answer a job keeps (the job URL shows them).
bool KeptResponseField(std::string_view name) {
  for (std::string_view keep : {"content-type", "location", "etag", "last-modified", "retry-after"})
    if (http::EqualsIgnoreCase(name, keep)) return true;
  return false;
}

}  // namespace

Deliverer::Deliverer(std::string queue, Writer& writer, Counters& counters)
    : queue_(std::move(queue)),
      writer_(writer),
      counters_(counters),
      callbacks_(queue_, writer, counters) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  rng_ ^= reinterpret_cast<uintptr_t>(this);
}

Deliverer::~Deliverer() {
  Stop();
  ::close(wake_fd_);
  while (!later_.empty()) {
    delete later_.top().job;
    later_.pop();
  }
}

void Deliverer::Configure(const config::Queue& queue,
                          const std::vector<config::Cluster>& clusters) {
  {
    std::lock_guard lock(mu_);
    config_ = queue;
    clusters_ = clusters;
    reconfigured_ = true;
  }
  Wake();
}

void Deliverer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Deliverer::Stop() {
  if (stop_.exchange(true)) return;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void Deliverer::Push(std::unique_ptr<Job> job) {
  // Called by the writer once per committed enqueue: no vector of one to allocate.
  bool wake;
  {
    std::lock_guard lock(mu_);
    wake = inbox_.empty();
    inbox_.push_back(std::move(job));
  }
  if (wake) Wake();
}

void Deliverer::Push(std::vector<std::unique_ptr<Job>> jobs) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    // Only the push that makes the inbox non-empty wakes the thread (a syscall): the others
    // find it awake already, or about to take the inbox.
    wake = inbox_.empty();
    for (auto& j : jobs) inbox_.push_back(std::move(j));
  }
  if (wake) Wake();
}

void Deliverer::PushCallbacks(std::vector<PendingCallback> callbacks) {
  {
    std::lock_guard lock(mu_);
    for (auto& c : callbacks) callback_inbox_.push_back(std::move(c));
  }
  Wake();
}

void Deliverer::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Deliverer::TakeInbox(int64_t now_ms) {
  std::vector<std::unique_ptr<Job>> in;
  std::vector<PendingCallback> callbacks;
  {
    std::lock_guard lock(mu_);
    in.swap(inbox_);
    callbacks.swap(callback_inbox_);
    if (reconfigured_) {
      reconfigured_ = false;
      cfg_ = config_;
      callbacks_.Configure(cfg_.callback, cfg_.jobs_path);
      std::map<std::string, Target> targets;
      for (const config::Cluster& c : clusters_) {
        Target t;
        for (const config::Endpoint& e : c.endpoints) {
          try {
            const net::Address a = net::MakeAddress(e.host, e.port);
            t.endpoints.push_back(client::Destination::Of(
                reinterpret_cast<const sockaddr*>(&a.storage), a.length, e.host, e.port));
          } catch (const std::exception&) {
            // The loader resolved every endpoint to a literal; nothing else can reach here.
          }
        }
        t.idle.resize(t.endpoints.size());
        targets.emplace(c.name, std::move(t));
      }
      // Attempts in flight keep pointers into the old targets: swap only when none are.
      if (inflight_.empty()) {
        targets_ = std::move(targets);
      } else {
        for (auto& [name, t] : targets) {
          auto it = targets_.find(name);
          if (it == targets_.end()) {
            targets_.emplace(name, std::move(t));
          } else {
            it->second.endpoints = std::move(t.endpoints);
            it->second.idle.clear();
            it->second.idle.resize(it->second.endpoints.size());
            it->second.next = 0;
            ++it->second.generation;  // live attempts' connections are not kept
          }
        }
      }
    }
  }
  if (callbacks_.enabled()) {
    for (auto& c : callbacks) callbacks_.Push(std::move(c));
  }
  for (auto& j : in) {
    if (j->next_ms > now_ms) {
      later_.push({j->next_ms, j.release()});
    } else {
      ready_.push_back(std::move(j));
    }
  }
}

bool Deliverer::RateAllows(int64_t now_ms) {
  if (cfg_.rate == 0) return true;
  const double rate = cfg_.rate;
  tokens_ = std::min(rate, tokens_ + (now_ms - tokens_at_ms_) * rate / 1000.0);
  tokens_at_ms_ = now_ms;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void Deliverer::StartAttempt(std::unique_ptr<Job> job, int64_t now_ms) {
  auto a = std::make_unique<Attempt>();
  ++job->attempts;
  counters_.attempts.fetch_add(1, std::memory_order_relaxed);
  if (job->attempts > 1) counters_.retries.fetch_add(1, std::memory_order_relaxed);
  writer_.Submit(new MarkRunningWork(job->id, now_ms));
  a->started_ms = now_ms;
  a->deadline_ms = now_ms + cfg_.attempt_timeout.count();
  auto t = targets_.find(job->cluster);
  client::Request req;
  req.method = job->method;
  req.target = job->target;
  ForEachField(job->headers, [&req](std::string_view name, std::string_view value) {
    req.headers.emplace_back(std::string(name), std::string(value));
  });
  req.headers.emplace_back("Idempotency-Key", job->idempotency_key);
  req.headers.emplace_back("Ficus-Job-Id", job->id);
  req.headers.emplace_back("Ficus-Attempt", std::to_string(job->attempts));
  req.body = job->body;
  req.keep_alive = true;
  client::Call::Options options;
  options.max_response_bytes = std::max<uint64_t>(64 * 1024, cfg_.result_body + 64 * 1024);
  a->job = std::move(job);
  if (t == targets_.end() || t->second.endpoints.empty()) {
    a->call.Fail("cluster " + a->job->cluster + " has no endpoints");
  } else {
    Target& target = t->second;
    a->target = &target;
    a->endpoint = target.next++ % target.endpoints.size();
    a->generation = target.generation;
    client::Connection reuse;
    auto& idle = target.idle[a->endpoint];
    if (!idle.empty()) {
      reuse = std::move(idle.back());
      idle.pop_back();
    }
    a->call.Start(target.endpoints[a->endpoint], req, options, std::move(reuse));
  }
  inflight_.push_back(std::move(a));
}

void Deliverer::Release(const Job& job) {
  counters_.depth.fetch_sub(1, std::memory_order_relaxed);
  counters_.bytes.fetch_sub(static_cast<int64_t>(job.body.size()), std::memory_order_relaxed);
}

void Deliverer::Complete(Attempt& a, int64_t now_ms) {
  Job& job = *a.job;
  const client::Response& resp = a.call.response();
  AttemptResult r;
  r.status = resp.status;
  r.error = resp.status == 0 ? (resp.error.empty() ? "no response" : resp.error) : "";
  if (resp.status != 0) {
    counters_.latency_us_sum.fetch_add(static_cast<uint64_t>(now_ms - a.started_ms) * 1000,
                                       std::memory_order_relaxed);
    counters_.latency_count.fetch_add(1, std::memory_order_relaxed);
    for (const auto& [name, value] : resp.headers) {
      if (KeptResponseField(name)) r.headers.append(name).append(": ").append(value).append("\r\n");
    }
    r.body = resp.body.substr(0, cfg_.result_body);
    if (resp.keep_alive && a.target != nullptr && !a.timed_out &&
        a.generation == a.target->generation) {
      client::Connection c = a.call.TakeConnection();
      if (c.open()) a.target->idle[a.endpoint].push_back(std::move(c));
    }
  }
  const bool retryable = resp.status == 0 || std::find(cfg_.retry_on.begin(), cfg_.retry_on.end(),
                                                       resp.status) != cfg_.retry_on.end();
  if (resp.status >= 200 && resp.status < 300) {
    r.state = State::kSucceeded;
    counters_.succeeded.fetch_add(1, std::memory_order_relaxed);
  } else if (!retryable) {
    r.state = State::kFailed;
    counters_.failed.fetch_add(1, std::memory_order_relaxed);
  } else if (job.attempts >= job.max_attempts) {
    r.state = State::kDead;
    counters_.dead.fetch_add(1, std::memory_order_relaxed);
    counters_.dead_letters.fetch_add(1, std::memory_order_relaxed);
    ++dead_unreported_;
    log::warn("queue {}: job {} dead after {} attempts: {}", queue_, job.id, job.attempts,
              r.error.empty() ? "status " + std::to_string(resp.status) : r.error);
  } else {
    // Exponential back-off with "equal jitter": half fixed, half random, so that jobs failed
    // together do not come back together.
    const int shift = static_cast<int>(std::min<uint32_t>(job.attempts - 1, 30));
    const int64_t base =
        std::min<int64_t>(cfg_.max_backoff.count(), cfg_.backoff.count() * (int64_t{1} << shift));
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    const int64_t delay =
        base / 2 + static_cast<int64_t>(rng_ % static_cast<uint64_t>(base / 2 + 1));
    r.state = State::kQueued;
    r.next_ms = WallMillis() + delay;
  }
  const int64_t finished_ms = WallMillis();
  const bool callback = r.state != State::kQueued && callbacks_.enabled() &&
                        (cfg_.callback->url || !job.callback_url.empty());
  if (r.state != State::kQueued) {
    r.callback = callback;
    r.queue = queue_;
    r.stored_bytes = static_cast<int64_t>(job.headers.size() + job.body.size() + r.headers.size() +
                                          r.body.size() + 128);
  }
  if (callback) {
    PendingCallback pc;
    pc.url = job.callback_url;
    JobView& v = pc.job;
    v.id = job.id;
    v.queue = job.queue;
    v.state = r.state;
    v.attempts = job.attempts;
    v.max_attempts = job.max_attempts;
    v.created_ms = job.created_ms;
    v.updated_ms = finished_ms;
    v.method = job.method;
    v.target = job.target;
    v.result_status = r.status;
    v.result_headers = r.headers;
    v.result_body = r.body;
    v.error = r.error;
    callbacks_.Push(std::move(pc));
  }
  const bool retry = r.state == State::kQueued;
  const int64_t next_ms = r.next_ms;
  writer_.Submit(new FinishWork(job.id, std::move(r), finished_ms));
  if (retry) {
    job.next_ms = next_ms;
    later_.push({next_ms, a.job.release()});
  } else {
    Release(job);
  }
}

void Deliverer::PublishOldest() {
  int64_t oldest = 0;
  auto older = [&oldest](int64_t t) {
    if (oldest == 0 || t < oldest) oldest = t;
  };
  if (!ready_.empty()) older(ready_.front()->created_ms);
  for (const auto& a : inflight_) older(a->job->created_ms);
  // The heap is not in creation order; a bounded look keeps this cheap with a long backlog.
  if (!later_.empty()) {
    const Later* heap = &later_.top();  // the underlying vector, heap-ordered
    const size_t n = std::min<size_t>(later_.size(), 4096);
    for (size_t i = 0; i < n; ++i) older(heap[i].job->created_ms);
  }
  counters_.oldest_created_ms.store(oldest, std::memory_order_relaxed);
}

void Deliverer::Loop() {
  std::vector<pollfd> fds;
  while (!stop_.load(std::memory_order_relaxed)) {
    int64_t now = WallMillis();
    TakeInbox(now);
    while (!later_.empty() && later_.top().at_ms <= now) {
      ready_.emplace_back(later_.top().job);
      later_.pop();
    }
    while (inflight_.size() < cfg_.concurrency && !ready_.empty() && RateAllows(now)) {
      std::unique_ptr<Job> job = std::move(ready_.front());
      ready_.pop_front();
      StartAttempt(std::move(job), now);
    }
    if (now - published_at_ms_ >= 250) {
      PublishOldest();
      published_at_ms_ = now;
    }
    if (dead_unreported_ > 0 && now - dead_reported_at_ms_ >= kDeadEventEveryMs) {
      Emit("queue_dead", queue_,
           std::to_string(dead_unreported_) +
               " job(s) dead after max_attempts (see ficus jobs dead)");
      dead_unreported_ = 0;
      dead_reported_at_ms_ = now;
    }
    if (now - pruned_at_ms_ >= kPruneEveryMs) {
      writer_.Submit(new PruneWork(queue_, now - cfg_.retention.count(),
                                   static_cast<int64_t>(cfg_.retention_bytes), counters_));
      pruned_at_ms_ = now;
    }
    // Calls that ended at Start (no endpoint, no socket) are completed before polling.
    int timeout = 100;
    fds.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    for (const auto& a : inflight_) {
      fds.push_back({a->call.done() ? -1 : a->call.fd(), a->call.events(), 0});
      timeout =
          a->call.done() ? 0 : std::min<int>(timeout, std::max<int64_t>(0, a->deadline_ms - now));
    }
    if (!later_.empty())
      timeout = std::min<int>(timeout, std::max<int64_t>(0, later_.top().at_ms - now));
    if (cfg_.rate != 0 && !ready_.empty() && inflight_.size() < cfg_.concurrency) {
      timeout = std::min(timeout, static_cast<int>(1000 / cfg_.rate) + 1);
    }
    callbacks_.Poll(fds, &timeout, now);
    ::poll(fds.data(), fds.size(), timeout);
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      [[maybe_unused]] ssize_t n = ::read(wake_fd_, &v, sizeof v);
    }
    now = WallMillis();
    size_t kept = 0;
    for (size_t i = 0; i < inflight_.size(); ++i) {
      Attempt& a = *inflight_[i];
      bool done = a.call.done();
      if (!done && fds[i + 1].revents != 0) done = a.call.Advance();
      if (!done && now >= a.deadline_ms) {
        a.timed_out = true;
        a.call.Fail("timed out after " + config::FormatDuration(cfg_.attempt_timeout) + " " +
                    a.call.Waiting());
        done = true;
      }
      if (done) {
        Complete(a, now);
      } else {
        inflight_[kept++] = std::move(inflight_[i]);
      }
    }
    inflight_.resize(kept);
    callbacks_.Advance(fds, now);
  }
}

}  // namespace ficus::queue::internal
