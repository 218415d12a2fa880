// The process's overload guard: a thread samples resident memory and open descriptors every
// 100 ms; while either is over its set point (config `overload:`), every route sheds new
// requests with 503 before ficus itself runs out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "policy/policy.h"

namespace ficus::policy::internal {

class OverloadMonitor {
 public:
  static OverloadMonitor& Get();
  ~OverloadMonitor();
  // The running config's set points (every snapshot build); starts the sampler when one is set.
  void Configure(const config::Overload& o);
  bool overloaded() const { return overloaded_.load(std::memory_order_relaxed); }
  uint64_t rss_bytes() const { return rss_.load(std::memory_order_relaxed); }
  uint64_t open_fds() const { return fds_.load(std::memory_order_relaxed); }
  std::atomic<uint64_t> shed{0};
  // One sample now (tests; the thread calls it every 100 ms).
  void Sample();

 private:
  void Run();
  void SampleLocked();
  std::mutex mu_;
  std::condition_variable cv_;
  config::Overload set_points_;
  bool stop_ = false;
  std::thread thread_;
  std::atomic<bool> overloaded_{false};
  std::atomic<uint64_t> rss_{0};
  std::atomic<uint64_t> fds_{0};
};

class OverloadGuard final : public Policy {
 public:
  Order order() const override { return Order::kAuth; }  // first: shed before any work
  Decision Admit(Context& ctx) override;
};

}  // namespace ficus::policy::internal
