// The report's finding rules: each looks at the facts Analyze gathered about one subject (a
// route, the traffic mix, a client key, an event) and, when its trigger holds, says what was
// measured and what to do about it. One table, in the order findings are listed before they
// are ranked by severity.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

constexpr double kErrorTrigger = 0.01;       // errors over 1 %
constexpr double kCapacityTrigger = 0.70;    // peak over 70 % of measured capacity
constexpr double kGrowthTrigger = 0.50;      // +50 % between the period's halves
constexpr double kTargetUtilisation = 0.70;  // instances are sized for this
constexpr uint64_t kMinRequests = 20;        // below this a route's ratios are noise
constexpr double kSlowMs = 200;              // "slow" for offload candidates
constexpr double kSmallResponse = 2048;      // bytes: a status, not a document
constexpr double kNoisyShare = 0.20;         // one key with over 20 % of all requests
constexpr double kCacheableRepeat = 0.5;     // at least half the sampled responses repeat
// A cache is worth suggesting only for a route that carries load: a share of the requests or
// of the time answering them (a health check that repeats its body saves nothing).
constexpr double kCacheWorthShare = 0.05;
// A hit saves the origin's time and the body's making: under this time per request and with a
// status-sized body there is nothing to save (a 1 ms health check), whatever the share.
constexpr double kNegligibleMs = 2;
constexpr double kNegligibleBytes = 512;

// Shares alone mislead when every route is cheap: a 3 ms route with 85 % of the time of an
// idle origin saves nothing. A cache must also save absolute work: at peak the route keeps at
// least kCacheWorthBusy of the origin's requests in flight (rate x time, Little's law), or each
// answer is slow enough (kCacheWorthMs) that a hit is a gain the client feels.
constexpr double kCacheWorthBusy = 0.25;
constexpr double kCacheWorthMs = 20;

// Whether a cache on this route saves the origin anything worth a finding: it carries load
// (kCacheWorthShare of the requests or of the time), its answers are not negligible, and the
// work it saves is not negligible in absolute terms either.
inline bool WorthCaching(const RouteReport& rr) {
  const bool carries_load = rr.share >= kCacheWorthShare || rr.time_share >= kCacheWorthShare;
  const bool negligible = rr.mean_ms < kNegligibleMs && rr.mean_bytes_out < kNegligibleBytes;
  const bool saves_work =
      rr.peak_rps * rr.mean_ms / 1000 >= kCacheWorthBusy || rr.mean_ms >= kCacheWorthMs;
  return carries_load && !negligible && saves_work;
}

enum class RuleId : uint8_t {
  kCache,          // repeated GET bodies on a route that carries load
  kLatency,        // p99 over the route's target, or a slow read
  kOffload,        // a slow write with a small answer
  kErrors,         // 5xx over 1 %
  kRouteCapacity,  // a route's peak near its measured knee
  kGrowth,         // traffic grew between the period's halves
  kMixCapacity,    // the mix's peak near the capacity per instance
  kNoisyClient,    // one key with far more than its share
  kCorrelation,    // p99 or errors shifted after a deploy or reload
  kQueueBacklog,   // a job queue's backlog grew: delivery slower than enqueue (queues.cc)
};

// What a route rule sees besides the route's report.
struct RouteFacts {
  const RouteReport& route;
  int impact = 1;       // 1..3: traffic share and the availability its SLOs ask for
  std::string cluster;  // the route's cluster, "CLUSTER" when the config is not known
  double error_ratio = 0;
  bool cacheable = false;      // a read whose sampled bodies mostly repeat
  bool worth_caching = false;  // and it carries load
};

enum class Subject : uint8_t { kRoute, kMix, kClient, kEvent, kQueue };

// The facts one rule is evaluated on: the report so far and the subject of its kind.
struct Facts {
  const Report& report;
  bool mix_bounded = false;  // some capacity of the mix is only a lower bound
  const RouteFacts* route = nullptr;
  const NoisyClient* client = nullptr;
  const Correlation* event = nullptr;
  const QueueReport* queue = nullptr;
};

struct FindingRule {
  RuleId id;
  Subject subject;
  bool (*applies)(const Facts&);   // the trigger
  Finding (*build)(const Facts&);  // REQUIRES: applies(facts). Summary, remedy, snippet, rank
};

// Every rule, in listing order (a subject's rules run in this order).
std::span<const FindingRule> FindingRules();

// The findings of every rule whose trigger holds on `facts` (of its subject), in table order.
void ApplyRules(Subject subject, const Facts& facts, std::vector<Finding>& out);

}  // namespace ficus::advisor::internal
