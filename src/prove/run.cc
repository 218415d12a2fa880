// The loop for one finding. The gateway runs the change only between ApplyConfig and either a
// decision to keep it or the restore, which every path out of ProveOne (a failed measurement,
// an interruption, a worse or inconclusive result) goes through.
#include "prove/internal/run.h"

#include <chrono>
#include <thread>

#include "base/text.h"

namespace ficus::prove::internal {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Sleeps up to `ms`, returning early when stop is set.
void Settle(int64_t ms, const std::atomic<bool>& stop) {
  for (int64_t t = 0; t < ms && !stop.load(); t += 50)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// Most answers were 4xx other than 429: the load did not send requests the route serves.
bool NotExercised(const Phase& p) {
  uint64_t requests = 0, client_errors = 0;
  for (const StepResult& s : p.steps) {
    requests += s.requests;
    client_errors += s.client_errors;
  }
  return client_errors * 2 > std::max<uint64_t>(requests, 1);
}

// One second of the workload's first step, not measured: both phases start warm (a new cache
// filled with the first answers, connections open), as the users' traffic found them.
void WarmUp(const Workload& w, const Gateway& gateway, const std::atomic<bool>& stop) {
  Workload warm = w;
  warm.rates = {w.rates.front()};
  warm.step_ns = 1'000'000'000;
  warm.flood.reset();
  (void)Measure(warm, gateway, stop);
}

}  // namespace

RunResult ProveOne(const std::string& id, const advisor::Finding& f, const Workload& w,
                   const std::string& merged, RunContext& cx) {
  RunResult out;
  const std::atomic<bool>& stop = *cx.stop;
  const int64_t started = NowMs();
  WarmUp(w, *cx.gateway, stop);
  Outcome<Phase> before = Measure(w, *cx.gateway, stop);
  if (!before) {
    out.message = "the baseline load could not run: " + before.message();
    return out;
  }
  if (stop.load()) {
    out.end = RunEnd::kInterrupted;
    out.message = "interrupted during the baseline; nothing was changed";
    return out;
  }
  if (NotExercised(*before)) {
    out.message =
        "most answers to the load were 4xx: it does not send requests the route serves (give a "
        "--scenario with them); nothing was changed";
    return out;
  }

  Outcome<std::string> applied = cx.gateway->ApplyConfig(merged);
  if (!applied) {
    out.message = "the gateway refused the change (its config is unchanged): " + applied.message();
    return out;
  }
  // From here the gateway runs the change: every way out restores the old config unless kept.
  auto restore = [&](RunEnd end, std::string why) {
    Outcome<std::string> back = cx.gateway->ApplyConfig(*cx.running);
    out.end = back ? end : RunEnd::kBroken;
    out.message =
        back ? std::move(why) : why + "; and restoring the old config FAILED: " + back.message();
    return out;
  };
  Settle(cx.settle_ms, stop);
  if (stop.load()) return restore(RunEnd::kInterrupted, "interrupted; the old config is back");
  WarmUp(w, *cx.gateway, stop);
  Outcome<Phase> after = Measure(w, *cx.gateway, stop);
  if (!after)
    return restore(RunEnd::kSkipped, "the load after the change could not run (" + after.message() +
                                         "); the old config is back");
  if (stop.load() || after->interrupted)
    return restore(RunEnd::kInterrupted, "interrupted; the old config is back");

  DecideParams params = cx.decide;
  params.threshold_ms = w.threshold_ms;
  params.step_load = !w.flood && w.rates.size() > 1;
  const Verdict v = Decide(*before, *after, params);
  advisor::Proof& p = out.proof;
  p.ts_ms = started;
  p.finding = id;
  p.route = f.route;
  p.load = w.description;
  p.change = f.snippet;
  p.before = v.before;
  p.after = v.after;
  p.threshold_ms = w.threshold_ms;
  p.p_latency = v.p_latency;
  p.p_errors = v.p_errors;
  p.outcome = v.outcome;
  const bool keep = v.outcome == "better" || (v.outcome == "inconclusive" && cx.keep_inconclusive);
  p.decision = keep ? "kept" : "reverted";
  p.why = v.why;
  if (keep) {
    *cx.running = merged;
    out.end = RunEnd::kDone;
  } else {
    Outcome<std::string> back = cx.gateway->ApplyConfig(*cx.running);
    out.end = back ? RunEnd::kDone : RunEnd::kBroken;
    if (!back) {
      p.decision = "revert failed";
      out.message = "restoring the old config FAILED: " + back.message();
    }
  }
  telemetry::Event e;
  e.ts_ms = NowMs();
  e.kind = "proof";
  e.service = id;
  e.version = p.decision;
  e.note = advisor::ProofJson(p);
  try {
    cx.store->AppendEvent(e);
  } catch (const std::exception& ex) {
    out.message += std::string(out.message.empty() ? "" : "; ") +
                   "the result could not be recorded in the store: " + ex.what();
  }
  return out;
}

}  // namespace ficus::prove::internal
