// Adaptive concurrency per cluster: a limit on the cluster's requests in flight, learned from
// their upstream latency the way Netflix's gradient2 does (and Envoy's adaptive concurrency
// filter in spirit): the mean RTT of each window against a long-term RTT.
//
// Each window (config `window`) with samples: gradient = clamp(tolerance * long / short,
// 0.5, 1); target = limit * gradient + sqrt(limit); limit moves a fifth of the way there,
// within [min_limit, max_limit]. The long-term RTT is a slow average of the windows' RTTs.
// What the failures users report of such controllers taught:
//  - no min-RTT probe: the long-term RTT replaces the periodic probe that drops concurrency to a
//    floor (and sheds the burst that arrives meanwhile), so there is no probe to shed anything;
//  - recovery: when the sampled RTT falls under half the long-term RTT (the overload is over
//    but the average still remembers it), the long-term RTT decays fast, so the limit grows
//    back instead of staying pinned at the floor;
//  - a window without samples changes nothing (an idle cluster keeps its limit), and neither
//    does a window whose traffic never used half the limit (app-limited: no evidence to grow).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.h"

namespace ficus::policy::internal {

class AdaptiveLimiter {
 public:
  explicit AdaptiveLimiter(const config::AdaptiveConcurrency& c);
  // One limiter per cluster, shared by its routes' policies and carried across reloads while
  // the cluster's config is unchanged (build time only).
  static std::shared_ptr<AdaptiveLimiter> For(const std::string& cluster,
                                              const config::AdaptiveConcurrency& c);

  // A slot under the current limit for class `cls` (sheddable: 80 % of it).
  bool TryAcquire(config::PriorityClass cls);
  // Gives the slot back; `rtt_ns` > 0 is a latency sample. Every thread; the window's update
  // runs on whichever thread ends it.
  void Release(int64_t rtt_ns, int64_t now_ns);

  const config::AdaptiveConcurrency& config() const { return config_; }
  int64_t limit() const { return limit_.load(std::memory_order_relaxed); }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  double long_rtt_ns() const;
  std::atomic<uint64_t> rejected[3] = {};  // by PriorityClass

  // For tests: one window's update from these samples, as Release would run it.
  void UpdateForTest(int64_t sum_ns, int64_t count, int64_t max_in_flight);

 private:
  void Update(int64_t sum_ns, int64_t count, int64_t max_in_flight);
  const config::AdaptiveConcurrency config_;
  std::atomic<int64_t> limit_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> sum_ns_{0};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> max_in_flight_{0};
  std::atomic<int64_t> window_end_ns_{0};
  mutable std::mutex mu_;  // the window's update (try_lock: nobody waits for it)
  double estimate_;
  double long_rtt_ = 0;
};

}  // namespace ficus::policy::internal
