// The rate-limit policy of a route: every `rate_limit:` of the route, checked in config order
// against tables shared by all worker threads (gcra.h).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "policy/internal/gcra.h"
#include "policy/policy.h"

namespace ficus::policy::internal {

// Per-worker counters, one cache line each, so counting never shares a line between workers.
struct alignas(64) LimitCell {
  std::atomic<uint64_t> allowed{0};
  std::atomic<uint64_t> limited{0};
  std::atomic<uint64_t> shadow_limited{0};
};
inline constexpr size_t kCells = 64;  // config's worker maximum

// What outlives a reload when the limit's config is unchanged: the table and the counters.
struct LimitState {
  explicit LimitState(uint64_t max_keys) : table(max_keys) {}
  GcraTable table;
  std::array<LimitCell, kCells> cells;
  std::atomic<int64_t> last_shadow_log_ns{0};
};

class RateLimitPolicy final : public Policy {
 public:
  struct Limit {
    config::RateLimit config;
    std::shared_ptr<LimitState> state;
    int64_t interval_ns = 0;
    int64_t tolerance_ns = 0;
    std::string policy_field;  // "name";q=100;w=1
    std::string problem;       // the 429's RFC 9457 body
  };
  // `previous`: the running snapshot's policy of this route (state is taken from its limits of
  // the same name and config), or null.
  RateLimitPolicy(const config::Route& route, const RateLimitPolicy* previous);

  Order order() const override { return Order::kRateLimit; }
  Decision Admit(Context& ctx) override;

  const std::vector<Limit>& limits() const { return limits_; }
  // Tests: the clock (ns) the limits read.
  void set_clock(int64_t (*clock)()) { clock_ = clock; }

 private:
  uint64_t KeyOf(const Limit& limit, const Context& ctx) const;
  std::vector<Limit> limits_;
  std::string route_name_;
  int64_t (*clock_)();
};

}  // namespace ficus::policy::internal
