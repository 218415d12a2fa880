// One measurement of `ficus prove`: a load through the gateway (a step load, or a constant load
// with a flood alongside) and what ficus's own metrics say the origin saw meanwhile.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "advisor/advisor.h"
#include "base/outcome.h"
#include "load/load.h"
#include "prove/internal/gateway.h"

namespace ficus::prove::internal {

// What load proves a finding: built once, run before and after the change.
struct Workload {
  std::string description;  // "step load of route catalog, 4 x 3s up to 120 req/s"
  double threshold_ms = 0;  // the route's latency target (its SLO, else the default)
  std::string cluster;      // whose origin figures are read
  load::Options requests;   // what the measured load sends (a URL, a scenario, or a replay)
  // Increasing step rates; one rate: a constant load. A replay (requests.replay) keeps the
  // capture's timing: one step of step_ns, its rate what the capture's timeline gave.
  std::vector<double> rates;
  int64_t step_ns = 0;
  // A second load at `flood_rate` during every step (a noisy client's; a replay keeps its
  // capture's timeline instead): only `requests` is measured.
  std::optional<load::Options> flood;
  double flood_rate = 0;
  int connections = 64;
};

struct StepResult {
  double rate = 0;
  load::Histogram latency;     // corrected (from the intended send time)
  uint64_t requests = 0;       // scheduled
  uint64_t errors = 0;         // transport errors, 5xx, 429 and dropped
  uint64_t client_errors = 0;  // other 4xx: the request was not one the route serves
  double p99_ms = 0;
  bool ok = false;  // p99 within the threshold and errors under 1 %
};

struct Phase {
  std::vector<StepResult> steps;  // up to the first failing step
  double origin_rps = 0;
  double origin_concurrency = 0;  // the cluster's requests in flight (sampled) + deliveries
  bool interrupted = false;       // `stop` ended it early
};

inline constexpr double kMaxErrorRatio = 0.01;

// Runs the workload (every step, stopping after the first one that fails), sampling the
// gateway's /metrics every 250 ms. Fails when the load cannot start (nothing was sent).
Outcome<Phase> Measure(const Workload& w, const Gateway& gateway, const std::atomic<bool>& stop);

}  // namespace ficus::prove::internal
