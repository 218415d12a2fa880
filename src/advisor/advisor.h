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
  double error_ratio = 0;  // (transport errors + 5xx) / scheduled
  uint64_t requests = 0;
  bool ok = false;  // p99 <= threshold, error_ratio < 1 % and under 1 % dropped (saturation)
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
  std::string path = "/";  // with a query string when one was recorded
  std::string body;
  std::string content_type;  // as recorded; empty: application/json when there is a body
};
std::optional<RouteRequest> RequestFor(const config::Route& route);

// The route's most frequent request that was answered 2xx or 3xx in the gateway's JSON Lines
// access log (its last `max_bytes`), reads preferred: a request the route really answers.
// nullopt when the log is unreadable or has none. (The log has no query strings or bodies.)
std::optional<RouteRequest> ObservedRequest(const std::string& access_log_path,
                                            const std::string& route, uint64_t max_bytes = 8 << 20);
// The route's most frequent request in its `record:` capture (the file's last `max_bytes`),
// reads preferred, with its query string, body and Content-Type; when `access_log_path` is
// given, only a request whose method and path the log shows answered 2xx/3xx. Requests with a
// redacted credential, a truncated or binary body are passed over. nullopt when none.
std::optional<RouteRequest> CapturedRequest(const std::string& capture_path,
                                            const std::string& route,
                                            const std::string& access_log_path,
                                            uint64_t max_bytes = 8 << 20);

// The route's recorded mix: the distinct requests of its `record:` capture (the file's last
// `max_bytes`; passed over and filtered by the access log as CapturedRequest does) with how
// often each came, the `max_requests` most frequent, most frequent first. Empty when none.
struct WeightedRequest {
  RouteRequest request;
  uint64_t count = 0;
};
std::vector<WeightedRequest> CapturedMix(const std::string& capture_path, const std::string& route,
                                         const std::string& access_log_path,
                                         size_t max_requests = 16, uint64_t max_bytes = 8 << 20);
// A `ficus load` scenario (JSON, which YAML reads) sending `mix` weighted by count, each request
// with `headers` ("Name: value") and its Content-Type when it has a body. Paths and bodies are
// sent as recorded (a literal "{{" is escaped, not a template).
std::string MixScenario(const std::vector<WeightedRequest>& mix,
                        const std::vector<std::string>& headers);

// The route's latency threshold: the tightest latency SLO naming it (or every route), else
// `fallback_ms`.
double ThresholdMsFor(const config::Config& config, const std::string& route, double fallback_ms);

int AssessCommand(const AssessOptions& options);

// ficus's own load is not users' traffic: each run (assess, `ficus load`/`ficus replay` given
// the admin token) registers a fresh 128-bit secret with the gateway's admin API
// (POST /synthetic-key, bearer token) and sends it in X-Ficus-Synthetic; ficus then counts
// these requests in the route's metrics and rollups but keeps them out of its SLOs, the
// report's users' figures, the heavy client keys and the cacheability samples. The secret is
// cleared when this object goes (and expires by itself after `ttl_s`, at most an hour, if the
// run dies). key() is empty when the gateway would not take it (no token, admin unreachable);
// why() says why.
class SyntheticKey {
 public:
  SyntheticKey(const std::string& admin_host, int admin_port, const std::string& token,
               int64_t ttl_s);
  SyntheticKey(const config::Config& cfg, int64_t ttl_s);  // the config's admin address, token
  ~SyntheticKey();
  SyntheticKey(const SyntheticKey&) = delete;
  SyntheticKey& operator=(const SyntheticKey&) = delete;
  const std::string& key() const { return key_; }
  const std::string& why() const { return why_; }

 private:
  config::Webhook hook_;
  std::vector<std::pair<std::string, std::string>> auth_;
  std::string key_;
  std::string why_;
};

// ---- ficus report ------------------------------------------------------------------------------

struct ReportOptions {
  std::string config_path;      // optional: routes, SLOs, data_dir
  std::string data_dir;         // overrides the config's
  std::string period;           // any duration: 10m, 1h, 24h, 7d (default 24h)
  std::string from, to;         // ParseReportTime; with one of them the period runs from/to it
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
  double mean_ms = 0;       // time answering one request, on average (what a cache hit saves)
  double threshold_ms = 0;  // its latency target
  double mean_bytes_out = 0;
  double peak_rps = 0;  // the busiest rollup interval
  double growth = 0;    // requests in the period's second half over the first, minus 1
  std::optional<double> capacity_rps;  // the latest assessment's knee (see `assessed`)
  // How the latest assessment ended: "" (none), "knee" (a step failed after one passed),
  // "lower_bound" (every step passed, or time ran out: capacity is at least capacity_rps),
  // "failed_first" (the first step already failed: capacity is below its rate, capacity_rps),
  // "not_assessed" (the route answered the step load mostly 4xx: no knee), "skipped" (a regex
  // or header match assess cannot build a request for).
  std::string assessed;
  std::string assess_stop;  // the latest assessment's stop reason (latency, errors, envelope...)
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
  // 5xx statuses the upstream answered (from the error samples), most frequent first.
  std::vector<std::pair<int, uint64_t>> error_statuses;
  // Do errors grow with load? The 5xx ratio in the busier half of the rollup intervals over the
  // quieter half's: 0 when unknown (too few errors, or the rate hardly varied).
  double errors_busy_over_quiet = 0;
  bool load_varied = false;  // the busier half's rate was at least 2x the quieter half's
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
                     // cache | offload | noisy_client | correlation | queue_backlog
  std::string route;
  std::string summary;    // what was measured
  std::string remedy;     // what to do
  std::string snippet;    // the config that applies it (YAML), may be empty
  bool in_ficus = false;  // the snippet uses keys this ficus has (else: the planned shape,
                          // or comments on config already in place: nothing to apply)
  int impact = 1;         // 1 low .. 3 high
  int likelihood = 1;     // 1 low .. 3 high
};

struct NoisyClient {
  std::string key;
  uint64_t requests = 0;
  double share = 0;
  double rps = 0;
  double suggested_rate = 0;  // req/s
  // What ficus already does about it: its requests a rate limit or concurrency limit refused in
  // the period, and the rate limit in place for its kind of key on the routes it used.
  uint64_t limited = 0;
  double limit_rate = 0;   // req/s; 0: no rate limit keyed by its kind of key
  std::string limit_spec;  // that limit as the config writes it: "20/1s"
  uint64_t limit_burst = 0;
  std::vector<std::string> limit_routes;  // the routes it used that have that limit
  std::vector<std::string> routes;        // the routes it used (heavy-key rows)
};

// One job queue over the period (telemetry's queue minutes; advisor/queues.cc).
struct QueueReport {
  std::string name;
  std::string route;         // an offload route that feeds it ("" when the config is not known)
  std::string cluster;       // where its jobs go
  uint32_t concurrency = 0;  // configured deliveries in flight (0: the config is not known)
  uint32_t rate = 0;         // configured delivery attempts per second (0: no limit)
  uint64_t enqueued = 0, succeeded = 0, failed = 0, dead = 0, attempts = 0;
  double enqueue_rps = 0, delivery_rps = 0;  // jobs stored / finished per second
  int64_t backlog_start = 0, backlog_end = 0, backlog_peak = 0;  // unfinished jobs
  int64_t oldest_age_ms = 0;       // of the oldest unfinished job at the period's end
  int64_t oldest_age_peak_ms = 0;  // the longest any job was seen waiting
  int64_t dead_letters = 0;        // at the period's end
  bool growing = false;            // delivery slower than enqueue: the backlog grew
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
  bool instances_at_most = false;  // from a lower-bound capacity: at most this many
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

// A cached route's cache in the period (section_cache.cc), from the store's cache counters.
struct CacheReport {
  std::string route;
  telemetry::CacheCounters counts;
  uint64_t lookups = 0;         // GET/HEAD the cache saw: hits + stale-while-revalidate + misses
  uint64_t served = 0;          // answered without asking the origin: hits + stale-while-
                                // revalidate + answered from another request's fill
  uint64_t origin_fetches = 0;  // lookups that reached the origin: misses - coalesced
  double hit_ratio = 0;         // served / lookups
  double saved_rps = 0;         // served per second of the period: the origin load saved
  uint64_t route_requests = 0;  // the route's requests in the period (every method, users')
};

// The database section (section_db.cc): what the PostgreSQL proxy stored in the period.
struct DatabaseReport {
  struct Query {  // a normalised query (fingerprint), by total time
    std::string fingerprint, text;
    uint64_t calls = 0, errors = 0, rows = 0;
    double total_ms = 0, mean_ms = 0, p99_ms = 0;
    double time_share = 0;  // of all query time
  };
  struct Route {  // an HTTP route joined to its queries by trace id
    std::string route;
    uint64_t requests = 0, with_queries = 0, queries = 0;
    double queries_per_request = 0;
    double p90_queries = 0;  // the 90th percentile's bucket bound (queries per request)
    double db_share = 0;     // database time / time answering the route's requests
    std::vector<uint64_t> queries_per_request_buckets;  // telemetry::kQueriesPerRequest, +Inf
  };
  struct NPlusOne {  // one fingerprint repeated in many requests of a route
    std::string route, fingerprint, text;
    uint64_t requests = 0;     // requests that ran it at least 5 times
    uint64_t of_requests = 0;  // the route's joined requests
    double mean_repeats = 0;
    uint64_t max_repeats = 0;
  };
  struct Pool {
    std::string pool;
    int64_t pool_size = 0, peak_waiting = 0, peak_open = 0;
    uint64_t waits = 0, wait_timeouts = 0, wait_rejected = 0;
    double mean_wait_ms = 0;
  };
  // A plan ficus captured (EXPLAIN without ANALYZE of a sampled query) and the indexes it lacks.
  struct Index {
    std::string table;
    std::vector<std::string> columns;
    std::string statement, reason;
  };
  struct Plan {
    std::string fingerprint, text;
    double total_cost = 0;
    int64_t at_ms = 0;
    std::vector<Index> indexes;
  };
  // A server of a database: how long it was down, a replica's replay lag.
  struct Server {
    std::string database, server;
    bool primary = false;
    double down_share = 0;    // of the samples (every 200 ms)
    int64_t max_lag_ms = -1;  // -1: none known
    double mean_lag_ms = -1;
    uint64_t checks_failed = 0;
  };
  std::vector<Query> top;  // at most 10
  std::vector<Route> routes;
  std::vector<NPlusOne> n_plus_one;
  std::vector<Pool> pools;
  std::vector<Plan> plans;  // by fingerprint
  std::vector<Server> servers;
  const Plan* PlanOf(const std::string& fingerprint) const {
    for (const Plan& p : plans)
      if (p.fingerprint == fingerprint) return &p;
    return nullptr;
  }
  bool empty() const { return top.empty() && routes.empty() && pools.empty() && servers.empty(); }
};

struct Report {
  int64_t from_ms = 0, to_ms = 0;
  std::string period;
  uint64_t requests = 0;
  uint64_t errors = 0;
  double clients = 0;
  double peak_rps = 0;
  std::optional<double> capacity_rps;  // per instance, for the traffic mix
  bool capacity_lower_bound = false;   // a part of it only a lower bound: "≥ capacity_rps"
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
  // ficus's own load in the period (every request that carried a registered synthetic key:
  // assess steps, scenario assessments, `ficus load`/`ficus replay` given the admin token),
  // per route. Kept out of every figure above (counts, shares, percentiles, peaks, clients).
  struct SyntheticLoad {
    std::string route;
    uint64_t requests = 0;
  };
  std::vector<SyntheticLoad> synthetic;
  uint64_t synthetic_requests = 0;
  std::vector<Finding> findings;    // most severe first
  std::vector<Growth> growth;       // 1x, 2x, 10x, 100x
  std::vector<Proof> proofs;        // `ficus prove` runs in the period, oldest first
  std::vector<CacheReport> caches;  // cached routes with cache traffic in the period, by route
  DatabaseReport database;          // the PostgreSQL proxy's queries, routes and pools
  std::vector<QueueReport> queues;  // job queues with data in the period, by name
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

// A route's measured capacity as the report prints it: "120.0", "≥ 120.0", "< 20.0 (failed at
// its first rate)", "not assessed (mostly 4xx)", "skipped (regex or header match)" or "-".
std::string CapacityText(const RouteReport& rr);

std::string FormatText(const Report& r);
std::string FormatMarkdown(const Report& r);
std::string FormatJson(const Report& r);
// Self-contained: inline CSS and SVG, no script, no network.
std::string FormatHtml(const Report& r);

// A report's window edge as Unix ms: "now"; a time ago ("2h", "-2h", "now-2h", "90m"); a UTC
// date and time ("2026-12-04T21:00:00Z", "2026-12-04T21:00Z", "2026-12-04 21:00:00", a date
// alone "2026-12-04" = its midnight); or Unix seconds ("@1764882000"). nullopt and *why for
// anything else.
std::optional<int64_t> ParseReportTime(const std::string& text, int64_t now_ms, std::string* why);

// "50/month", "50", "0.07/hour" -> per month (730 h); nullopt for anything else.
std::optional<double> ParsePrice(const std::string& text);

int ReportCommand(const ReportOptions& options);

}  // namespace ficus::advisor
