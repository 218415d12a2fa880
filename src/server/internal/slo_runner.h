// Live SLOs in the gateway: a background thread evaluates the config's SLOs against the
// telemetry store every `telemetry.slo_interval` (slo::Engine), posts a webhook on every alert
// state change through one long-lived slo::Notifier (retried), and keeps the latest statuses
// for GET /slo. A reload swaps the engine and carries alert states over by objective id.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "slo/slo.h"
#include "telemetry/telemetry.h"

namespace ficus::server {

// (good, total) of an objective from the store: every route's counts over the window are
// summed first (slo::RouteSource), availability from requests and 5xx errors, latency from the
// stored log-linear histogram (slo::CountWithin). Windows up to a day come from the 10 s rows
// plus what the live counters added since the last tick (Telemetry::Window); longer ones from
// the 1 min rows plus the same live part. Each window is fetched once per evaluation, however
// many objectives use it. Not thread-safe: one per evaluation.
class TelemetrySloSource : public slo::Source {
 public:
  explicit TelemetrySloSource(telemetry::Telemetry& telemetry);
  slo::Counts Get(const slo::Objective& objective, slo::Seconds window,
                  slo::SystemTime now) override;
  // The per-route totals over `window` ending at `now` (cached by window).
  const std::vector<std::pair<std::string, slo::RouteTotals>>& Fetch(slo::Seconds window,
                                                                     slo::SystemTime now);

 private:
  telemetry::Telemetry& telemetry_;
  std::vector<std::pair<int64_t, std::vector<std::pair<std::string, slo::RouteTotals>>>> cache_;
};

class SloRunner {
 public:
  SloRunner(telemetry::Telemetry& telemetry, std::shared_ptr<const config::Config> config,
            slo::Notifier::Options notifier_options = {});
  ~SloRunner();  // Stop()
  SloRunner(const SloRunner&) = delete;
  SloRunner& operator=(const SloRunner&) = delete;

  void Start();
  void Stop();  // joins the thread; queued webhooks are abandoned with the notifier
  // A reload (any thread): evaluates the new config's SLOs from now on, states carried over.
  void SetConfig(std::shared_ptr<const config::Config> config);
  // One evaluation now (the thread does this every interval). Returns the transitions.
  std::vector<slo::Transition> Evaluate();
  // GET /slo: the latest evaluation, {"slos":[...]}.
  std::string StatusJson() const;
  slo::Notifier::Stats notifier_stats() const { return notifier_.stats(); }

 private:
  void Run();

  telemetry::Telemetry& telemetry_;
  slo::Notifier notifier_;  // outlives every engine (they hold a pointer to it)
  mutable std::mutex mu_;   // guards config_, engine_, stop_
  std::shared_ptr<const config::Config> config_;
  std::shared_ptr<slo::Engine> engine_;
  std::mutex eval_mu_;  // one evaluation at a time (the thread, a reload's first evaluation)
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ficus::server
