// RetryBudget: a sliding-window rate of retries per worker. See internal/retry_budget.h.
#include "upstream/internal/retry_budget.h"

#include <algorithm>

namespace ficus::upstream {

RetryBudget::RetryBudget(const config::RetryPolicy& policy, int64_t now_ms)
    : slot_ms_(std::max<int64_t>(1, policy.budget_window.count() / kSlots)),
      slot_end_ms_(now_ms + slot_ms_),
      ratio_(policy.budget_ratio),
      floor_(static_cast<double>(policy.budget_min_per_second) *
             static_cast<double>(slot_ms_ * kSlots) / 1000.0) {}

void RetryBudget::Advance(int64_t now_ms) {
  if (now_ms < slot_end_ms_) return;
  const int64_t passed = (now_ms - slot_end_ms_) / slot_ms_ + 1;
  if (passed >= kSlots) {  // idle for a whole window: nothing in it counts any more
    for (Slot& s : slots_) s = Slot{};
  } else {
    for (int64_t k = 0; k < passed; ++k) {
      current_ = current_ + 1 == kSlots ? 0 : current_ + 1;
      slots_[current_] = Slot{};
    }
  }
  slot_end_ms_ += passed * slot_ms_;
}

uint64_t RetryBudget::requests() const {
  uint64_t n = 0;
  for (const Slot& s : slots_) n += s.requests;
  return n;
}

uint64_t RetryBudget::retries() const {
  uint64_t n = 0;
  for (const Slot& s : slots_) n += s.retries;
  return n;
}

uint64_t RetryBudget::connect_retries_beyond_ratio() const {
  uint64_t n = 0;
  for (const Slot& s : slots_) n += s.connect_extra;
  return n;
}

double RetryBudget::allowed() const { return ratio_ * static_cast<double>(requests()) + floor_; }

bool RetryBudget::TryRetry(bool connect_failure) {
  Slot& now = slots_[current_];
  if (static_cast<double>(retries()) + 1 <= allowed()) {
    ++now.retries;
    return true;
  }
  if (connect_failure && static_cast<double>(connect_retries_beyond_ratio()) + 1 <= floor_) {
    ++now.connect_extra;
    return true;
  }
  return false;
}

}  // namespace ficus::upstream
