// The retry budget of one cluster on one worker: retries as a rate over a sliding window
// (Finagle's RetryBudget), so that the handful of requests that fail together when an
// endpoint dies are all retried while a retry storm under overload stays capped.
#pragma once

#include <cstdint>

#include "config/config.h"

namespace ficus::upstream {

// Over the last `window` (ten slots of window / 10; the window slides slot by slot):
//   retries <= ratio x requests + min_per_second x window seconds.
// A connect-failure retry that this refuses may still go while the connect-failure retries
// let through beyond it stay under min_per_second x window seconds: such a request never
// reached the application, so its retry adds no application load, and the floor bounds what
// a cluster whose endpoints all refuse connections costs.
//
// Owned by one worker thread; nothing is atomic. Counting a request is one increment; the
// window moves in Advance (the worker's tick, and before each retry decision), never per
// request, so no clock is read per request.
class RetryBudget {
 public:
  static constexpr int kSlots = 10;

  RetryBudget(const config::RetryPolicy& policy, int64_t now_ms);

  void RequestStarted() { ++slots_[current_].requests; }
  // Slides the window to `now_ms` (slots older than the window are forgotten).
  void Advance(int64_t now_ms);
  // Reserves one retry: true (counted) or false (over budget). `connect_failure`: the failed
  // try never reached the application (refused, unreachable, connect timeout).
  bool TryRetry(bool connect_failure);

  // Over the current window (tests, diagnostics).
  uint64_t requests() const;
  uint64_t retries() const;
  uint64_t connect_retries_beyond_ratio() const;
  // What the window allows in all: ratio x requests + the floor.
  double allowed() const;

 private:
  struct Slot {
    uint32_t requests = 0;
    uint32_t retries = 0;
    uint32_t connect_extra = 0;  // connect-failure retries the ratio refused but the floor took
  };
  Slot slots_[kSlots];
  int current_ = 0;
  int64_t slot_ms_;
  int64_t slot_end_ms_;
  double ratio_;
  double floor_;  // min_per_second x window seconds
};

}  // namespace ficus::upstream
