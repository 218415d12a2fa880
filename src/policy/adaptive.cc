#include "policy/internal/adaptive.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace ficus::policy::internal {

namespace {
constexpr double kSmoothing = 0.2;   // how far the limit moves toward its target per window
constexpr double kLongAlpha = 0.01;  // the long-term RTT: ~100 windows of memory
}  // namespace

AdaptiveLimiter::AdaptiveLimiter(const config::AdaptiveConcurrency& c)
    : config_(c), limit_(c.initial_limit), estimate_(c.initial_limit) {}

std::shared_ptr<AdaptiveLimiter> AdaptiveLimiter::For(const std::string& cluster,
                                                      const config::AdaptiveConcurrency& c) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<AdaptiveLimiter>> live;
  std::lock_guard lock(mu);
  std::weak_ptr<AdaptiveLimiter>& slot = live[cluster];
  std::shared_ptr<AdaptiveLimiter> l = slot.lock();
  if (!l || !(l->config() == c)) {
    l = std::make_shared<AdaptiveLimiter>(c);
    slot = l;
  }
  return l;
}

bool AdaptiveLimiter::TryAcquire(config::PriorityClass cls) {
  const int64_t limit = limit_.load(std::memory_order_relaxed);
  // Sheddable requests stop at 80 %: the rest is kept for the others.
  const int64_t share =
      cls == config::PriorityClass::kSheddable ? std::max<int64_t>(1, limit * 8 / 10) : limit;
  int64_t cur = in_flight_.load(std::memory_order_relaxed);
  while (cur < share) {
    if (in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) {
      int64_t m = max_in_flight_.load(std::memory_order_relaxed);
      while (cur + 1 > m &&
             !max_in_flight_.compare_exchange_weak(m, cur + 1, std::memory_order_relaxed)) {
      }
      return true;
    }
  }
  rejected[static_cast<int>(cls)].fetch_add(1, std::memory_order_relaxed);
  return false;
}

void AdaptiveLimiter::Release(int64_t rtt_ns, int64_t now_ns) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  if (rtt_ns > 0) {
    sum_ns_.fetch_add(rtt_ns, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
  }
  int64_t end = window_end_ns_.load(std::memory_order_relaxed);
  if (now_ns < end) return;
  if (!mu_.try_lock()) return;
  std::lock_guard lock(mu_, std::adopt_lock);
  if (window_end_ns_.load(std::memory_order_relaxed) != end) return;  // someone just did it
  window_end_ns_.store(now_ns + std::chrono::nanoseconds(config_.window).count(),
                       std::memory_order_relaxed);
  const int64_t count = count_.exchange(0, std::memory_order_relaxed);
  const int64_t sum = sum_ns_.exchange(0, std::memory_order_relaxed);
  const int64_t max_in_flight = max_in_flight_.exchange(in_flight_.load(std::memory_order_relaxed),
                                                        std::memory_order_relaxed);
  Update(sum, count, max_in_flight);
}

void AdaptiveLimiter::Update(int64_t sum_ns, int64_t count, int64_t max_in_flight) {
  if (count <= 0) return;  // no evidence: keep the limit
  const double short_rtt = static_cast<double>(sum_ns) / static_cast<double>(count);
  if (long_rtt_ <= 0) {
    long_rtt_ = short_rtt;
  } else {
    long_rtt_ += (short_rtt - long_rtt_) * kLongAlpha;
    // Recovery: the average still remembers an overload that is over.
    if (long_rtt_ > 2 * short_rtt) long_rtt_ = std::max(short_rtt, long_rtt_ * 0.9);
  }
  // App-limited: traffic never came near the limit, so latency says nothing about it.
  if (static_cast<double>(max_in_flight) < estimate_ / 2) return;
  const double gradient = std::clamp(config_.tolerance * long_rtt_ / short_rtt, 0.5, 1.0);
  const double target = estimate_ * gradient + std::sqrt(estimate_);
  estimate_ =
      std::clamp(estimate_ * (1 - kSmoothing) + target * kSmoothing,
                 static_cast<double>(config_.min_limit), static_cast<double>(config_.max_limit));
  limit_.store(static_cast<int64_t>(estimate_), std::memory_order_relaxed);
}

void AdaptiveLimiter::UpdateForTest(int64_t sum_ns, int64_t count, int64_t max_in_flight) {
  std::lock_guard lock(mu_);
  Update(sum_ns, count, max_in_flight);
}

double AdaptiveLimiter::long_rtt_ns() const {
  std::lock_guard lock(mu_);
  return long_rtt_;
}

}  // namespace ficus::policy::internal
