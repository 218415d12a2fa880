// ficus::slo — service level objectives: SLIs and error budgets from counts, burn rates over
// the SRE workbook's windows, multiwindow multi-burn-rate alert states with a minimum-traffic
// guard, webhooks on state changes (Notifier), and Prometheus rule export. Everything except
// the Notifier is pure computation; counts come from a Source (the telemetry store).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/outcome.h"
#include "config/config.h"
#include "observe/observe.h"

namespace ficus::slo {

using Seconds = std::chrono::seconds;
using SystemTime = std::chrono::system_clock::time_point;

// Good and total events of one SLI over one window. Ratios are always taken from summed counts
// (good over total of the whole window), never averaged over sub-windows.
struct Counts {
  uint64_t good = 0;
  uint64_t total = 0;
  uint64_t bad() const { return total >= good ? total - good : 0; }
  Counts& operator+=(const Counts& o) {
    good += o.good;
    total += o.total;
    return *this;
  }
};

enum class Sli { kAvailability, kLatency };
std::string_view SliName(Sli sli);  // "availability", "latency"

// The burn-rate windows, shortest first; kWindowNames[i] is how rules and JSON name them.
inline constexpr int kWindowCount = 6;
inline constexpr std::array<Seconds, kWindowCount> kWindows = {
    Seconds(5 * 60),   Seconds(30 * 60),   Seconds(3600),
    Seconds(6 * 3600), Seconds(24 * 3600), Seconds(3 * 24 * 3600)};
inline constexpr std::array<std::string_view, kWindowCount> kWindowNames = {"5m", "30m", "1h",
                                                                            "6h", "1d",  "3d"};
enum Window { k5m = 0, k30m, k1h, k6h, k1d, k3d };

enum class Severity { kNone = 0, kTicket = 1, kPage = 2 };
std::string_view SeverityName(Severity s);  // "ok", "ticket", "page"

// One multiwindow burn-rate condition: fires when the burn rate exceeds `factor` over both
// windows (the long one says the budget really is burning, the short one that it still is,
// so the alert resets soon after the problem ends).
struct AlertRule {
  Severity severity;
  Window long_window;
  Window short_window;
  double factor;
};
// The SRE workbook's defaults (chapter 5, "multiwindow, multi-burn-rate alerts"): with a 30 d
// window, 14.4x over 1 h spends 2 % of the budget, 6x over 6 h spends 5 %, 1x over 3 d 10 %.
inline constexpr std::array<AlertRule, 3> kAlertRules = {{
    {Severity::kPage, k1h, k5m, 14.4},
    {Severity::kPage, k6h, k30m, 6.0},
    {Severity::kTicket, k3d, k6h, 1.0},
}};

// One SLI of one SLO, resolved from the config: the unit the engine evaluates and alerts on.
struct Objective {
  std::string slo;  // the SLO's name
  Sli sli = Sli::kAvailability;
  double target = 0.999;                   // the objective as a fraction (0, 1)
  std::chrono::milliseconds threshold{0};  // latency SLI: good = completed within this
  std::vector<std::string> routes;         // empty = every route
  Seconds window{30 * 24 * 3600};          // the SLO window (budget and SLI)
  uint64_t min_requests = 100;             // minimum-traffic guard, per burn-rate window
  std::string Id() const;                  // "slo/sli", e.g. "api/latency"
};
// Every objective of every SLO in the config, in config order (availability before latency).
std::vector<Objective> ObjectivesOf(const config::Config& config);

// Where counts come from: (good, total) of an objective's SLI over the `window` that ends at
// `now`. The telemetry store implements it (or RouteSource below over per-route totals).
// Called from the evaluating thread only; may block (SQLite): never call it on a worker.
class Source {
 public:
  virtual ~Source() = default;
  virtual Counts Get(const Objective& objective, Seconds window, SystemTime now) = 0;
};

// What a store of per-route rollups knows about one route over a window: responses by status
// class and the duration histogram in observe::Histogram's bucket layout.
struct RouteTotals {
  std::array<uint64_t, 5> responses{};  // 1xx..5xx
  std::array<uint64_t, observe::Histogram::kBuckets> duration{};
};
// A Source over per-route totals: sums the objective's routes (all routes when it names
// none), then availability good = responses that are not 5xx of all responses; latency good =
// CountWithin(duration, threshold) of all recorded durations.
class RouteSource : public Source {
 public:
  // Totals of every route (name -> totals) over [now - window, now].
  using Fetch = std::function<std::vector<std::pair<std::string, RouteTotals>>(Seconds window,
                                                                               SystemTime now)>;
  explicit RouteSource(Fetch fetch) : fetch_(std::move(fetch)) {}
  Counts Get(const Objective& objective, Seconds window, SystemTime now) override;
  // The same computation for totals already at hand.
  static Counts CountsOf(const Objective& objective,
                         const std::vector<std::pair<std::string, RouteTotals>>& routes);

 private:
  Fetch fetch_;
};

// Requests known to have completed within `threshold`, from per-bucket (not cumulative)
// histogram counts: the sum of every bucket whose upper bound is <= threshold. A threshold
// that falls inside a bucket leaves that whole bucket out, so the result never counts a slow
// request as fast (it may count up to one bucket of fast requests as slow: <= 50 % relative
// bucket width). Exact when the threshold is a bucket edge (1ms, 2.5ms, 250ms, 300ms, 1s, ...).
uint64_t CountWithin(std::span<const uint64_t> buckets, std::chrono::microseconds threshold);
// The largest histogram bucket edge <= threshold (what CountWithin effectively measures).
std::chrono::microseconds EffectiveThreshold(std::chrono::microseconds threshold);

// Burn rate: how fast the window's errors spend the budget. 1 = exactly on budget over the SLO
// window. (bad / total) / (1 - target); 0 for a window without events.
double BurnRate(const Counts& c, double target);

// The evaluation of one objective at one instant.
struct SloStatus {
  Objective objective;
  SystemTime at{};
  Counts window_counts;                       // over the SLO window
  std::optional<double> sli;                  // good / total; none without events
  double budget_remaining = 1.0;              // 1 - bad / (total x (1 - target)); < 0 = overspent
  std::array<Counts, kWindowCount> counts{};  // per burn-rate window
  std::array<double, kWindowCount> burn{};    // per burn-rate window
  std::array<bool, kWindowCount> enough_traffic{};  // total >= min_requests
  std::array<bool, kAlertRules.size()> firing{};    // per kAlertRules entry
  Severity severity = Severity::kNone;              // the highest firing rule's
};
// Pure: the status from the counts of the SLO window and of each burn-rate window.
SloStatus Evaluate(const Objective& objective, const Counts& window_counts,
                   const std::array<Counts, kWindowCount>& counts, SystemTime at);

// An alert state change of one objective, what webhooks are told.
struct Transition {
  Severity from = Severity::kNone;
  SloStatus status;   // status.severity is the new state
  bool test = false;  // sent by `ficus slo test-webhooks`, not by a real change ("test":true)
};
// The webhook body: {"slo","sli","from","to","at","objective","sli_value","budget_remaining",
// "burn_rates":{"5m":..},"requests":{"5m":..},"firing":[{"severity","long","short","factor"}]}.
std::string TransitionJson(const Transition& t);
// GET /slo's body: {"slos":[{...status...}]} for the latest evaluation.
std::string StatusJson(const std::vector<SloStatus>& statuses);

// Sends transitions as JSON POSTs to webhook URLs from one background thread, retrying each
// failed delivery with exponential backoff. Bounded: when `max_queue` deliveries wait, new ones
// are dropped and counted (never blocks the caller). Thread-safe.
class Notifier {
 public:
  struct Options {
    int max_attempts = 5;
    std::chrono::milliseconds first_backoff{500};  // doubles per retry, capped at max_backoff
    std::chrono::milliseconds max_backoff{30000};
    std::chrono::milliseconds timeout{5000};  // connect, send and receive, each
    size_t max_queue = 1000;
  };
  struct Stats {
    uint64_t delivered = 0;  // a 2xx answer
    uint64_t failed = 0;     // gave up after max_attempts
    uint64_t attempts = 0;
    uint64_t dropped = 0;  // queue full
  };
  explicit Notifier(Options options);
  Notifier() : Notifier(Options{}) {}
  ~Notifier();  // stops the thread; undelivered notifications are abandoned
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Queues one POST of `body` to each hook.
  void Post(const std::vector<config::Webhook>& hooks, std::string body);
  // Waits until nothing is queued or in flight, or until `timeout`. True when idle.
  bool Flush(std::chrono::milliseconds timeout);
  Stats stats() const;
  // The delay before retry `attempt` (1 = the first retry): first_backoff x 2^(attempt-1),
  // capped at max_backoff.
  std::chrono::milliseconds Backoff(int attempt) const;

 private:
  struct Delivery {
    config::Webhook hook;
    std::shared_ptr<const std::string> body;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
  };
  void Loop();

  Options options_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Delivery> queue_;
  int in_flight_ = 0;
  bool stop_ = false;
  Stats stats_;
  std::thread thread_;
};

// One blocking HTTP/1.1 POST with a JSON body (Connection: close). Returns the status code;
// fails when no response came (the message says why). Resolves DNS names with getaddrinfo.
// Off the hot path only. `extra_headers`: more fields, sent in order (e.g. an Authorization for
// the admin API).
Outcome<int> HttpPost(const config::Webhook& hook, std::string_view body,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& extra_headers = {});

// Evaluates every objective of a config against a Source, remembers the latest statuses for
// Status(), and hands each alert state change to the Notifier (when the SLO has webhooks).
// Update and SloStatus may be called from different threads.
class Engine {
 public:
  Engine(std::shared_ptr<const config::Config> config, Notifier* notifier);
  // Evaluates everything at `now` and returns the transitions it found (also sent as webhooks).
  std::vector<Transition> Update(Source& source, SystemTime now);
  std::vector<SloStatus> Status() const;
  std::string StatusJson() const { return slo::StatusJson(Status()); }
  // After a reload: takes over `previous`'s latest statuses of the objectives this engine also
  // has (same Objective::Id()), so an alert that is still firing is not notified again and one
  // that stops is notified as a change from its old state.
  void CarryOver(const Engine& previous);

 private:
  std::shared_ptr<const config::Config> config_;
  std::vector<Objective> objectives_;
  Notifier* notifier_;     // may be null
  mutable std::mutex mu_;  // guards statuses_
  std::vector<SloStatus> statuses_;
};

// `ficus slo rules`: Prometheus recording and alerting rules (a rule file, YAML) equivalent to
// this config's SLOs, over the metrics ficus exports (ficus_route_responses_total,
// ficus_route_request_duration_seconds). A latency SLI counts within `le` = its threshold, a
// bucket edge that /metrics exports for every route (Registry::SetRouteLatencyBounds), so the
// rules compute what GET /slo does. A threshold between edges (only in a config built in code:
// the reader refuses it) counts to the edge below, as the engine does, noted in *notes (and as
// a comment in the file).
std::string PrometheusRules(const config::Config& config, std::vector<std::string>* notes);
// The `le` bounds ficus exports for duration histograms, in microseconds, ascending (must match
// observe's Prometheus render: checked by tests/slo).
std::span<const uint64_t> ExportedLeMicros();

// The `ficus slo` subcommands; return the process exit code, print to stdout/stderr.
// rules: loads the config, writes PrometheusRules to `output` ("-" = stdout), notes to stderr;
// 0, or 1 when the config is invalid or the file cannot be written.
int RulesCommand(const std::string& config_path, const std::string& output);
// test-webhooks: POSTs a test transition (the current state of nothing: "test":true) of every
// SLO to its webhooks through a Notifier (with its retries); 0 when every one got a 2xx.
int TestWebhooksCommand(const std::string& config_path, const Notifier::Options& options);

}  // namespace ficus::slo
