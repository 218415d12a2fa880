// Concurrency limits and load shedding per route (a bulkhead shared by every worker). The fast
// path is one CAS on the in-flight count; the lock is taken only when someone waits.
#include "policy/internal/concurrency.h"

#include <algorithm>
#include <condition_variable>
#include <queue>
#include <thread>

#include "http/http.h"

namespace ficus::policy::internal {

namespace {

using config::PriorityClass;

constexpr std::string_view kOverloadedBody =
    "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
    "\"detail\":\"The route is at its concurrency limit; retry after the time in "
    "Retry-After.\"}";

// Ends waits whose queue timeout passed: one thread for the process, sleeping until the
// earliest deadline. A thread rather than a timer on the worker's loop, so nothing of a wait
// outlives it (a sleeping coroutine would, until its timeout, even after the slot was granted).
class Expiry {
 public:
  static Expiry& Get() {
    static Expiry e;
    return e;
  }
  void Add(std::chrono::steady_clock::time_point at, const std::shared_ptr<Bulkhead>& b,
           const std::shared_ptr<Waiter>& w) {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    const bool earliest = due_.empty() || at < due_.top().at;
    due_.push({at, b, w});
    if (earliest) cv_.notify_one();
  }
  ~Expiry() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Due {
    std::chrono::steady_clock::time_point at;
    std::weak_ptr<Bulkhead> bulkhead;
    std::weak_ptr<Waiter> waiter;
    bool operator<(const Due& o) const { return at > o.at; }  // earliest on top
  };
  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (due_.empty()) {
        cv_.wait(lock);
        continue;
      }
      // A copy: wait_until reads its deadline while it waits, and an Add meanwhile may move
      // the queue's storage.
      const std::chrono::steady_clock::time_point next = due_.top().at;
      if (std::chrono::steady_clock::now() < next) {
        cv_.wait_until(lock, next);
        continue;
      }
      Due d = due_.top();
      due_.pop();
      lock.unlock();
      std::shared_ptr<Bulkhead> b = d.bulkhead.lock();
      std::shared_ptr<Waiter> w = d.waiter.lock();
      if (b && w) b->Expire(w);
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Due> due_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

Bulkhead::Bulkhead(const config::ConcurrencyLimit& c) : config_(c) {}

bool Bulkhead::TryAcquire() {
  // Every class takes a free slot: classes decide only who waits first and who leaves a full
  // queue, so below the limit nothing is shed.
  const int64_t limit = config_.max;
  int64_t cur = in_flight_.load(std::memory_order_relaxed);
  while (cur < limit) {
    if (in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) return true;
  }
  return false;
}

void Bulkhead::Release() {
  in_flight_.fetch_sub(1, std::memory_order_seq_cst);
  // Pairs with Enqueue's queued_ increment before its TryAcquire: either it saw this slot free,
  // or this sees it queued.
  if (!anyone_queued()) return;
  std::lock_guard lock(mu_);
  Drain();
}

void Bulkhead::End(const std::shared_ptr<Waiter>& w, Waiter::Outcome o) {
  w->outcome = o;
  queued_.fetch_sub(1, std::memory_order_seq_cst);
  w->wakeup.Signal();
}

void Bulkhead::Drain() {
  for (auto& q : queues_) {
    while (!q.empty() && TryAcquire()) {
      std::shared_ptr<Waiter> w = std::move(q.front());
      q.pop_front();
      End(w, Waiter::kGranted);
    }
  }
}

void Bulkhead::Enqueue(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  const int c = static_cast<int>(w->cls);
  queues_[c].push_back(w);
  queued_.fetch_add(1, std::memory_order_seq_cst);
  by_class[c].queued.fetch_add(1, std::memory_order_relaxed);
  Drain();  // a slot may have freed since Admit looked
  if (w->outcome != Waiter::kQueued) return;
  if (queued_.load(std::memory_order_relaxed) <= static_cast<int64_t>(config_.queue)) return;
  // Over the queue's size: the newest waiter of the least important class leaves, which is
  // this one unless a less important class is waiting.
  for (int k = 2; k >= 0; --k) {
    if (queues_[k].empty()) continue;
    std::shared_ptr<Waiter> out = std::move(queues_[k].back());
    queues_[k].pop_back();
    if (out == w) {
      by_class[k].no_room.fetch_add(1, std::memory_order_relaxed);
    } else {
      by_class[k].displaced.fetch_add(1, std::memory_order_relaxed);
    }
    End(out, Waiter::kDisplaced);
    return;
  }
}

void Bulkhead::Expire(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  if (w->outcome != Waiter::kQueued) return;
  auto& q = queues_[static_cast<int>(w->cls)];
  q.erase(std::find(q.begin(), q.end(), w));
  by_class[static_cast<int>(w->cls)].timed_out.fetch_add(1, std::memory_order_relaxed);
  End(w, Waiter::kTimedOut);
}

ConcurrencyPolicy::ConcurrencyPolicy(const config::Config& config, const config::Route& route,
                                     const ConcurrencyPolicy* previous) {
  if (route.concurrency) {
    class_header_ = route.concurrency->class_header;
    default_class_ = route.concurrency->default_class;
    if (previous != nullptr && previous->bulkhead_ &&
        previous->bulkhead_->config() == *route.concurrency) {
      bulkhead_ = previous->bulkhead_;
    } else {
      // A changed limit starts over: requests in flight under the old one release into it.
      bulkhead_ = std::make_shared<Bulkhead>(*route.concurrency);
    }
  }
  const config::Cluster& cluster = config.clusters[route.cluster_index];
  if (cluster.adaptive_concurrency)
    adaptive_ = AdaptiveLimiter::For(cluster.name, *cluster.adaptive_concurrency);
}

PriorityClass ConcurrencyPolicy::ClassOf(const Context& ctx) const {
  if (!class_header_.empty()) {
    for (const http::Header& h : ctx.request().headers) {
      if (!http::EqualsIgnoreCase(h.name, class_header_)) continue;
      if (http::EqualsIgnoreCase(h.value, "critical")) return PriorityClass::kCritical;
      if (http::EqualsIgnoreCase(h.value, "sheddable")) return PriorityClass::kSheddable;
      if (http::EqualsIgnoreCase(h.value, "default")) return PriorityClass::kDefault;
      break;
    }
  }
  return default_class_;
}

Decision ConcurrencyPolicy::Overloaded(Context& ctx) {
  ctx.AddResponseHeader("Retry-After", "1");
  return Decision::Respond({503, {}, "application/problem+json", kOverloadedBody});
}

constexpr uint64_t kBulkheadSlot = 1, kAdaptiveSlot = 2;

Decision ConcurrencyPolicy::Adaptive(Context& ctx) {
  if (!adaptive_) return Decision::Pass();
  const auto c = static_cast<PriorityClass>(ctx.state() >> 2);
  if (adaptive_->TryAcquire(c)) {
    ctx.state() |= kAdaptiveSlot;
    return Decision::Pass();
  }
  if ((ctx.state() & kBulkheadSlot) != 0) {  // the route's slot goes back at once
    ctx.state() &= ~kBulkheadSlot;
    bulkhead_->Release();
  }
  return Overloaded(ctx);
}

Decision ConcurrencyPolicy::Admit(Context& ctx) {
  const PriorityClass c = ClassOf(ctx);
  ctx.state() = static_cast<uint64_t>(c) << 2;
  if (!bulkhead_) return Adaptive(ctx);
  // Nobody waiting: take a slot if one is free. Someone waiting: queue behind (Wait).
  if (!bulkhead_->anyone_queued() && bulkhead_->TryAcquire()) {
    ctx.state() |= kBulkheadSlot;
    bulkhead_->by_class[static_cast<int>(c)].admitted.fetch_add(1, std::memory_order_relaxed);
    return Adaptive(ctx);
  }
  if (bulkhead_->config().queue == 0) {
    bulkhead_->by_class[static_cast<int>(c)].no_room.fetch_add(1, std::memory_order_relaxed);
    return Overloaded(ctx);
  }
  return Decision::Wait();
}

net::Task<Decision> ConcurrencyPolicy::Wait(Context& ctx) {
  const auto c = static_cast<PriorityClass>(ctx.state() >> 2);
  auto w = std::make_shared<Waiter>(ctx.loop(), c);
  bulkhead_->Enqueue(w);
  if (!w->wakeup.signaled()) {
    Expiry::Get().Add(std::chrono::steady_clock::now() + bulkhead_->config().queue_timeout,
                      bulkhead_, w);
    co_await w->wakeup;
  }
  // The outcome was written under the lock before the signal that resumed this.
  if (w->outcome == Waiter::kGranted) {
    ctx.state() |= kBulkheadSlot;
    bulkhead_->by_class[static_cast<int>(c)].admitted.fetch_add(1, std::memory_order_relaxed);
    co_return Adaptive(ctx);
  }
  co_return Overloaded(ctx);
}

void ConcurrencyPolicy::End(Context& ctx, const Outcome& outcome) {
  if ((ctx.state() & kAdaptiveSlot) != 0) {
    ctx.state() &= ~kAdaptiveSlot;
    // Only an answer from the upstream says something about its latency.
    adaptive_->Release(outcome.upstream_reached ? outcome.upstream_latency_ns : 0,
                       MonotonicNanos());
  }
  if ((ctx.state() & kBulkheadSlot) != 0) {
    ctx.state() &= ~kBulkheadSlot;
    bulkhead_->Release();
  }
}

}  // namespace ficus::policy::internal
