// The decision: the same load before and after a change, compared with the statistics of
// stats.h, into "better", "worse" or "inconclusive" with the reasons in words.
#pragma once

#include <string>

#include "advisor/advisor.h"
#include "prove/internal/measure.h"

namespace ficus::prove::internal {

struct DecideParams {
  double alpha = 0.01;      // significance level of each test
  double min_effect = 0.2;  // the least relative change that counts (p99, error ratio)
  bool step_load = true;    // false: a constant load (no sustainable rate to compare)
  double threshold_ms = 0;  // the latency target: a slower "after" within it is not worse
  int replicates = 1000;    // bootstrap replicates of the sustainable rate
  double confidence = 0.95;
  uint64_t seed = 1;
};

struct Verdict {
  std::string outcome;  // better | worse | inconclusive
  std::string why;      // each test's result, in words
  double p_latency = 1, p_errors = 1;
  advisor::ProofPhase before, after;
};

// Compares the steps both phases ran (the same rates), so the samples come from the same load.
Verdict Decide(const Phase& before, const Phase& after, const DecideParams& params);

}  // namespace ficus::prove::internal
