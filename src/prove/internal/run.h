// One finding's proof: baseline, apply, measure again, decide, keep or restore, record.
#pragma once

#include <atomic>
#include <string>

#include "advisor/advisor.h"
#include "prove/internal/decide.h"
#include "prove/internal/gateway.h"
#include "prove/internal/workload.h"
#include "telemetry/telemetry.h"

namespace ficus::prove::internal {

struct RunContext {
  const Gateway* gateway = nullptr;
  telemetry::Store* store = nullptr;
  const std::atomic<bool>* stop = nullptr;
  DecideParams decide;
  bool keep_inconclusive = false;
  int64_t settle_ms = 1000;
  // The config the gateway runs now (YAML text); a kept change becomes the new one.
  std::string* running = nullptr;
};

enum class RunEnd {
  kDone,         // measured and decided (kept or reverted), recorded
  kSkipped,      // nothing changed: the load could not start, the merge does not validate...
  kInterrupted,  // stop was set: the old config is back
  kBroken,       // the old config could not be restored: the gateway runs the change
};

struct RunResult {
  RunEnd end = RunEnd::kSkipped;
  advisor::Proof proof;  // filled when kDone
  std::string message;   // why, when not kDone
};

// REQUIRES: `merged` is the running config with the finding's remedy, and validates.
RunResult ProveOne(const std::string& id, const advisor::Finding& f, const Workload& w,
                   const std::string& merged, RunContext& cx);

}  // namespace ficus::prove::internal
