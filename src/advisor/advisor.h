// ficus::advisor — turning measurements into decisions: `ficus assess` (the capacity knee of
// each route or of a scenario, by a step load through the running gateway) and `ficus report`
// (traffic, latency, errors, SLO budgets, trigger points, cacheability, async-offload
// candidates, noisy clients, event correlation, a risk matrix with remedies, capacity and
// growth) from the telemetry store. Runs as a command-line tool next to (never inside) the
// gateway: it only reads and appends to the store, through SQLite's WAL and busy timeouts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "telemetry/telemetry.h"

namespace ficus::advisor {

// ---- ficus assess ------------------------------------------------------------------------------

struct AssessOptions {
  std::string config_path;
  double max_rate = 0;               // the envelope: never more req/s than this (required)
  std::string max_duration = "60s";  // the envelope: all steps of all targets together
  std::vector<std::string> routes;   // route names; empty = every route with a request
  std::string scenario;              // a `ficus load` scenario file instead of routes
  std::string p99 = "500ms";         // latency threshold where no SLO names one
  int steps = 5;                     // rates max_rate/steps, 2*max_rate/steps, ..., max_rate
  int connections = 64;
  std::string data_dir;  // empty: the config's data_dir
  bool json = false;
};

// One step of the step load.
struct Step {
  double rate = 0;         // target req/s
  double achieved = 0;     // sent req/s
  double p99_ms = 0;       // corrected (from the intended send time)
  double error_ratio = 0;  // (transport errors + 5xx + dropped) / scheduled
  uint64_t requests = 0;
  bool ok = false;  // p99 <= threshold and error_ratio < 1 %
};

// The knee from steps run in increasing rate order: the highest passing step before the first
// failing one. stop_reason: "envelope" (every step passed), "latency" or "errors" (the first
// failing step's cause), "duration" (the time envelope ran out first).
struct Knee {
  double rate = 0;  // 0: even the first step failed
  double p99_ms = 0;
  double error_ratio = 0;
  std::string stop_reason;
};
Knee FindKnee(const std::vector<Step>& steps, double threshold_ms, bool out_of_time);

// A request that exercises a route: method and a path its match accepts (exact path, prefix,
// first method); nullopt when the route cannot be exercised blindly (regex, header or host
// matches only).
struct RouteRequest {
  std::string method = "GET";
  std::string path = "/";
  std::string body;
};
std::optional<RouteRequest> RequestFor(const config::Route& route);

// The route's latency threshold: the tightest latency SLO naming it (or every route), else
// `fallback_ms`.
double ThresholdMsFor(const config::Config& config, const std::string& route, double fallback_ms);

int AssessCommand(const AssessOptions& options);

// ---- ficus report ------------------------------------------------------------------------------

struct ReportOptions {
  std::string config_path;      // optional: routes, SLOs, data_dir
  std::string data_dir;         // overrides the config's
  std::string period = "24h";   // any duration: 10m, 1h, 24h, 7d
  std::string format = "text";  // text | markdown | json | html
  std::string output;           // file; empty = stdout
  std::string instance_price = "50/month";
  double active_users = 0;  // 0: the distinct clients seen in the period
  double p99_default_ms = 500;
  int64_t now_ms = 0;  // 0: the wall clock (tests pin it)
};

struct RouteReport {
  std::string name;
  bool reads = true;  // the route accepts GET (or any method)
  uint64_t requests = 0;
  uint64_t errors = 0;
  double share = 0;       // of all requests
  double time_share = 0;  // of all time spent answering
  double p50_ms = 0, p90_ms = 0, p99_ms = 0;
  double threshold_ms = 0;  // its latency target
  double mean_bytes_out = 0;
  double peak_rps = 0;  // the busiest rollup interval
  double growth = 0;    // requests in the period's second half over the first, minus 1
  std::optional<double> capacity_rps;  // the latest assessment's knee
  // Cacheability (GET 200 sampled by the proxy): repeated / (repeated + changed).
  uint64_t repeat_samples = 0;
  std::optional<double> repeat_ratio;
  struct Point {
    int64_t ts_ms = 0;
    uint64_t requests = 0;
    uint64_t errors = 0;
    double p99_ms = 0;
  };
  std::vector<Point> trend;
};

struct SloReport {
  std::string id;  // "storefront/latency"
  double target = 0;
  std::optional<double> sli;
  double budget_remaining = 1;
  std::string severity;  // ok | ticket | page
  double burn_1h = 0, burn_6h = 0;
  uint64_t requests = 0;
};

// A problem found, with what to do about it.
struct Finding {
  std::string kind;  // trigger.p99 | trigger.errors | trigger.capacity | trigger.growth | slow |
                     // cache | offload | noisy_client | correlation
  std::string route;
  std::string summary;    // what was measured
  std::string remedy;     // what to do
  std::string snippet;    // the config that applies it (YAML), may be empty
  bool in_ficus = false;  // the snippet uses keys this ficus has (else: the planned shape)
  int impact = 1;         // 1 low .. 3 high
  int likelihood = 1;     // 1 low .. 3 high
};

struct NoisyClient {
  std::string key;
  uint64_t requests = 0;
  double share = 0;
  double rps = 0;
  double suggested_rate = 0;  // req/s
};

struct Correlation {
  telemetry::Event event;
  double p99_before_ms = 0, p99_after_ms = 0;
  double errors_before = 0, errors_after = 0;  // ratios
  bool shifted = false;
};

struct Growth {
  double multiple = 1;
  double peak_rps = 0;
  int instances = 0;
  double cost_month = 0;
  double cost_per_user = 0;
};

// One `ficus prove` run of a finding's remedy: the same load before and after the change, what
// the statistics said, and whether the change was kept. Recorded as a `proof` event on the
// timeline (its note is this as JSON) so that `ficus report` shows it.
struct ProofPhase {
  double rate = 0;  // sustainable req/s at the SLO (step loads; 0 for a constant load)
  double rate_low = 0, rate_high = 0;  // its bootstrap interval
  bool rate_bounded = false;           // every step passed: the rate is a lower bound (>=)
  double p50_ms = 0, p99_ms = 0;
  double error_ratio = 0;
  uint64_t requests = 0;
  double origin_rps = 0;          // requests ficus sent the origin (cluster) per second
  double origin_concurrency = 0;  // the cluster's requests in flight, mean of the samples
};
struct Proof {
  int64_t ts_ms = 0;
  std::string finding;  // "cache:catalog"
  std::string route;
  std::string load;    // what was measured: "step load of route catalog up to 120 req/s"
  std::string change;  // the snippet applied
  ProofPhase before, after;
  double threshold_ms = 0;
  double p_latency = 1;  // Mann-Whitney, two-sided
  double p_errors = 1;   // two-proportion z-test, two-sided
  std::string outcome;   // better | worse | inconclusive | failed
  std::string decision;  // kept | reverted
  std::string why;
};
std::string ProofJson(const Proof& p);
std::optional<Proof> ParseProof(std::string_view json);

struct Report {
  int64_t from_ms = 0, to_ms = 0;
  std::string period;
  uint64_t requests = 0;
  uint64_t errors = 0;
  double clients = 0;
  double peak_rps = 0;
  std::optional<double> capacity_rps;  // per instance, for the traffic mix
  double price_month = 0;
  double active_users = 0;
  std::vector<RouteReport> routes;  // busiest first
  std::vector<SloReport> slos;
  std::vector<NoisyClient> noisy;
  std::vector<Correlation> correlations;
  std::vector<telemetry::Assessment> assessments;
  // The period's assessment windows: `ficus assess` step loads ran through the gateway then.
  // `synthetic_requests` of them carried the run's registered secret and are kept out of the
  // SLOs; when 0, that step load counted in the SLOs like user traffic.
  struct SyntheticWindow {
    std::string target;
    int64_t from_ms = 0, to_ms = 0;
    uint64_t synthetic_requests = 0;
  };
  std::vector<SyntheticWindow> synthetic_windows;
  std::vector<Finding> findings;  // most severe first
  std::vector<Growth> growth;     // 1x, 2x, 10x, 100x
  std::vector<Proof> proofs;      // `ficus prove` runs in the period, oldest first
};

struct AnalyzeParams {
  int64_t from_ms = 0, to_ms = 0;
  std::string period = "24h";
  double price_month = 50;
  double active_users = 0;
  double p99_default_ms = 500;
};
// Everything above from the store (and the config's routes and SLOs; a null config reports
// the series the store has, with the default latency target).
Report Analyze(const config::Config* config, telemetry::Store& store, const AnalyzeParams& params);

std::string FormatText(const Report& r);
std::string FormatMarkdown(const Report& r);
std::string FormatJson(const Report& r);
// Self-contained: inline CSS and SVG, no script, no network.
std::string FormatHtml(const Report& r);

// "50/month", "50", "0.07/hour" -> per month (730 h); nullopt for anything else.
std::optional<double> ParsePrice(const std::string& text);

int ReportCommand(const ReportOptions& options);

}  // namespace ficus::advisor
