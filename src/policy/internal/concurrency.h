// The bulkhead of a route: at most `max` requests in flight (shared by every worker), a bounded
// wait queue ordered by priority class, a queue timeout; 503 with Retry-After over it.
// Below `max` every class is admitted. At `max` the classes decide who goes first: a freed slot
// goes to the oldest critical waiter, then default, then sheddable; a full queue sheds its
// newest sheddable waiter to make room for a more important arrival. So under overload the
// sheddable requests are refused first and critical ones keep every slot they need.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>

#include "policy/internal/adaptive.h"
#include "policy/policy.h"

namespace ficus::policy::internal {

// A request waiting for a slot. Shared by its Wait coroutine, the queue and the timer that
// ends the wait; `outcome` is decided once, under the bulkhead's lock, by whoever ends it.
struct Waiter {
  enum Outcome : int { kQueued, kGranted, kTimedOut, kDisplaced };
  Waiter(net::Loop& loop, config::PriorityClass c) : wakeup(loop), cls(c) {}
  net::Wakeup wakeup;
  config::PriorityClass cls;
  Outcome outcome = kQueued;
};

// The shared state: kept across a reload when the route's concurrency config is unchanged.
class Bulkhead {
 public:
  explicit Bulkhead(const config::ConcurrencyLimit& c);

  // A slot without waiting (false: `max` are in flight).
  bool TryAcquire();
  // Gives a slot back; the first waiter (critical first) that may take it gets it.
  void Release();

  // Under the lock: queue `w`, or take a slot that freed meanwhile (kGranted), or refuse it
  // (kDisplaced) when the queue is full of requests of its class or more important ones; a
  // full queue with a less important waiter displaces that one instead.
  void Enqueue(const std::shared_ptr<Waiter>& w);
  // The queue timeout passed: ends `w` as kTimedOut unless it ended already.
  void Expire(const std::shared_ptr<Waiter>& w);

  const config::ConcurrencyLimit& config() const { return config_; }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  int64_t queued() const { return queued_.load(std::memory_order_relaxed); }
  bool anyone_queued() const { return queued_.load(std::memory_order_seq_cst) > 0; }

  struct Counters {
    std::atomic<uint64_t> admitted{0};
    std::atomic<uint64_t> queued{0};     // had to wait (and then got a slot or not)
    std::atomic<uint64_t> no_room{0};    // refused: the queue was full (or no queue)
    std::atomic<uint64_t> timed_out{0};  // waited queue_timeout in vain
    std::atomic<uint64_t> displaced{0};  // left the queue for a more important request
  };
  std::array<Counters, 3> by_class;  // indexed by PriorityClass

 private:
  void Drain();  // under mu_: grants freed slots to waiters
  void End(const std::shared_ptr<Waiter>& w, Waiter::Outcome o);  // under mu_
  const config::ConcurrencyLimit config_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> queued_{0};
  std::mutex mu_;
  std::array<std::deque<std::shared_ptr<Waiter>>, 3> queues_;
};

// A route's concurrency policy: its own bulkhead (`concurrency:`), its cluster's adaptive limit
// (`adaptive_concurrency:`), or both (the bulkhead first). Exchange state: bit 0 a bulkhead
// slot, bit 1 an adaptive slot, the priority class above.
class ConcurrencyPolicy final : public Policy {
 public:
  ConcurrencyPolicy(const config::Config& config, const config::Route& route,
                    const ConcurrencyPolicy* previous);

  Order order() const override { return Order::kConcurrency; }
  Decision Admit(Context& ctx) override;
  net::Task<Decision> Wait(Context& ctx) override;
  void End(Context& ctx, const Outcome& outcome) override;

  const Bulkhead* bulkhead() const { return bulkhead_.get(); }
  const AdaptiveLimiter* adaptive() const { return adaptive_.get(); }

 private:
  config::PriorityClass ClassOf(const Context& ctx) const;
  Decision Overloaded(Context& ctx);
  // After the bulkhead (or without one): the cluster's adaptive limit.
  Decision Adaptive(Context& ctx);
  std::shared_ptr<Bulkhead> bulkhead_;         // null: no `concurrency:` on the route
  std::shared_ptr<AdaptiveLimiter> adaptive_;  // null: none on the cluster
  std::string class_header_;
  config::PriorityClass default_class_ = config::PriorityClass::kDefault;
};

}  // namespace ficus::policy::internal
