// The report's analysis in steps: per-route facts from the rollups, the SLOs, capacity and
// growth, noisy clients and event correlation; then the finding rules (internal/rules.h) over
// what was gathered.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>

#include "advisor/advisor.h"
#include "advisor/internal/limits.h"
#include "advisor/internal/proof.h"
#include "advisor/internal/queues.h"
#include "advisor/internal/rules.h"
#include "advisor/internal/section_cache.h"
#include "advisor/internal/section_db.h"
#include "slo/slo.h"

namespace ficus::advisor {
namespace {

using internal::kMinRequests;

// Mean latency in ms from bucket midpoints (time share: where the time goes).
double TotalMs(const telemetry::LatencyHistogram& h) {
  double total = 0;
  for (int i = 0; i < telemetry::LatencyHistogram::kBuckets; ++i) {
    if (h.buckets[i] == 0) continue;
    const double hi = i + 1 < telemetry::LatencyHistogram::kBuckets
                          ? static_cast<double>(observe::Histogram::UpperBoundMicros(i))
                          : 1e9;
    const double lo = i > 0 ? static_cast<double>(observe::Histogram::UpperBoundMicros(i - 1)) : 0;
    total += static_cast<double>(h.buckets[i]) * (lo + hi) / 2 / 1000.0;
  }
  return total;
}

bool AcceptsGet(const config::Route& r) {
  const auto& m = r.match.methods;
  return m.empty() || std::find(m.begin(), m.end(), "GET") != m.end();
}

slo::RouteTotals ToTotals(const telemetry::Rollup& r) {
  slo::RouteTotals t;
  t.responses[4] = r.errors;
  t.responses[1] = r.requests >= r.errors ? r.requests - r.errors : 0;
  for (int i = 0; i < observe::Histogram::kBuckets; ++i) t.duration[i] = r.latency.buckets[i];
  return t;
}

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Users' rows: each route row less the same route's and interval's synthetic row (ficus's own
// load: assess steps, scenario assessments, `ficus load`/`ficus replay` with the admin token).
// Adds what was taken out per route to `synthetic` when given.
std::vector<telemetry::Rollup> UsersOnly(std::vector<telemetry::Rollup> rows,
                                         const std::vector<telemetry::Rollup>& synthetic_rows,
                                         std::map<std::string, uint64_t>* synthetic = nullptr) {
  std::map<std::pair<std::string, int64_t>, const telemetry::Rollup*> by_key;
  for (const auto& s : synthetic_rows) by_key[{s.name, s.ts_ms}] = &s;
  for (auto& r : rows) {
    auto it = by_key.find({r.name, r.ts_ms});
    if (it == by_key.end()) continue;
    if (synthetic) (*synthetic)[r.name] += std::min(r.requests, it->second->requests);
    telemetry::SubtractSynthetic(r, *it->second);
  }
  return rows;
}

// What every step reads: the inputs and the period's resolution.
struct Context {
  const config::Config* config;
  telemetry::Store& store;
  const AnalyzeParams& p;
  int64_t span = 0;  // ms, at least 10 s
  telemetry::Resolution res = telemetry::Resolution::k10s;
  int64_t res_ms = 0;
  double res_s = 0;
  std::map<std::string, const config::Route*> routes;  // by name
};

// Which of the period's assessment windows were kept out of the SLOs (their requests are in
// the synthetic series), and which counted like user traffic.
void FindSyntheticWindows(const Context& cx, Report& rep) {
  for (const auto& a : rep.assessments) {
    const int64_t to = a.ts_ms + a.duration_ms;
    if (to < cx.p.from_ms || a.ts_ms >= cx.p.to_ms || a.stop_reason == "skipped") continue;
    Report::SyntheticWindow w{a.target, a.ts_ms, to, 0};
    // The synthetic requests in the rollup intervals the window touches: the route's, or for a
    // scenario every route's.
    std::vector<std::string> names;
    if (a.target.rfind("route:", 0) == 0) names.push_back(a.target.substr(6));
    const int64_t from_row = a.ts_ms / cx.res_ms * cx.res_ms;
    for (const auto& t : cx.store.Totals(cx.res, telemetry::SeriesKind::kSynthetic, names, from_row,
                                         to + cx.res_ms))
      w.synthetic_requests += t.requests;
    rep.synthetic_windows.push_back(std::move(w));
  }
}

// The rate of an assessment's first step, from its steps (assess writes them as
// [{"rate":R,...},...]); nullopt when none ran.
std::optional<double> FirstStepRate(const telemetry::Assessment& a) {
  const size_t at = a.detail.find("\"rate\":");
  if (at == std::string::npos) return std::nullopt;
  const char* begin = a.detail.c_str() + at + 7;
  char* end = nullptr;
  const double rate = std::strtod(begin, &end);
  if (end == begin || !(rate > 0)) return std::nullopt;
  return rate;
}

// What a route's latest assessment measured (RouteReport::assessed).
void AssessedAs(const telemetry::Assessment& a, RouteReport& rr) {
  const std::string& why = a.stop_reason;
  rr.assess_stop = why;
  if (why == "not_assessed" || why == "skipped") {
    rr.assessed = why;
    return;
  }
  if (a.knee_rate <= 0) {
    // The first step failed: capacity is below its rate (the envelope over the steps).
    rr.assessed = "failed_first";
    if (auto rate = FirstStepRate(a)) rr.capacity_rps = *rate;
    return;
  }
  rr.capacity_rps = a.knee_rate;
  rr.assessed = why == "envelope" || why == "duration" ? "lower_bound" : "knee";
}

// Whether the route's 5xx grow with its load: its rollup intervals (less the first and the
// last, which the period or the traffic may cover only in part) split into a quieter and a
// busier half by request count, and each half's error ratio compared. Only a real spread of
// load (the busier half at least twice the quieter's rate, six intervals or more) can show that
// errors do not grow with it.
void ErrorsAgainstLoad(const std::vector<telemetry::Rollup>& rows, RouteReport& rr) {
  std::vector<const telemetry::Rollup*> mine;
  for (const auto& r : rows) {
    if (r.name == rr.name && r.requests > 0) mine.push_back(&r);  // rows come ordered by time
  }
  if (mine.size() < 8 || rr.errors < kMinRequests / 2) return;
  mine.erase(mine.begin());
  mine.pop_back();
  std::sort(mine.begin(), mine.end(), [](const telemetry::Rollup* a, const telemetry::Rollup* b) {
    return a->requests < b->requests;
  });
  double req[2] = {0, 0}, err[2] = {0, 0};
  for (size_t i = 0; i < mine.size(); ++i) {
    const int half = i < mine.size() / 2 ? 0 : 1;
    req[half] += static_cast<double>(mine[i]->requests);
    err[half] += static_cast<double>(mine[i]->errors);
  }
  const double quiet_rate = req[0] / static_cast<double>(mine.size() / 2);
  const double busy_rate = req[1] / static_cast<double>(mine.size() - mine.size() / 2);
  rr.load_varied = busy_rate >= 2 * quiet_rate && err[0] >= 5;
  const double quiet = err[0] / std::max(req[0], 1.0), busy = err[1] / std::max(req[1], 1.0);
  rr.errors_busy_over_quiet = quiet > 0 ? busy / quiet : (busy > 0 ? 1e9 : 0);
}

// Per route: counts, latencies, peaks, growth, trend, knee and cacheability; the totals of
// the period. Routes busiest first.
void GatherRoutes(const Context& cx, Report& rep) {
  const AnalyzeParams& p = cx.p;
  using telemetry::SeriesKind;
  // Every figure below is users' traffic: ficus's own load is taken out and shown apart.
  std::map<std::string, uint64_t> synthetic;
  std::vector<telemetry::Rollup> totals = UsersOnly(
      cx.store.Totals(cx.res, SeriesKind::kRoute, {}, p.from_ms, p.to_ms),
      cx.store.Totals(cx.res, SeriesKind::kSynthetic, {}, p.from_ms, p.to_ms), &synthetic);
  std::vector<telemetry::Rollup> rows =
      UsersOnly(cx.store.QueryRollups(cx.res, SeriesKind::kRoute, {}, p.from_ms, p.to_ms),
                cx.store.QueryRollups(cx.res, SeriesKind::kSynthetic, {}, p.from_ms, p.to_ms));
  const int64_t bucket_ms = RoundUp(std::max<int64_t>(cx.span / 30, cx.res_ms), cx.res_ms);
  std::vector<telemetry::Rollup> periods = UsersOnly(
      cx.store.Periods(cx.res, SeriesKind::kRoute, {}, p.from_ms, p.to_ms, bucket_ms),
      cx.store.Periods(cx.res, SeriesKind::kSynthetic, {}, p.from_ms, p.to_ms, bucket_ms));
  for (const auto& [name, n] : synthetic) {
    if (n > 0) rep.synthetic.push_back({name, n});
    rep.synthetic_requests += n;
  }
  // Latest assessment per target.
  std::map<std::string, const telemetry::Assessment*> latest;
  for (const auto& a : rep.assessments) latest[a.target] = &a;

  telemetry::Hll clients;
  double all_time_ms = 0;
  // An assessment that could not mark its step load (no admin token) is still not the
  // application's traffic: intervals that overlap one are left out of peaks.
  auto assessing = [&](int64_t ts) {
    for (const auto& w : rep.synthetic_windows) {
      if (w.synthetic_requests == 0 && ts < w.to_ms && ts + cx.res_ms > w.from_ms) return true;
    }
    return false;
  };
  std::map<int64_t, uint64_t> per_interval;  // all routes' requests per rollup interval
  for (const auto& r : rows) {
    if (!assessing(r.ts_ms)) per_interval[r.ts_ms] += r.requests;
  }
  for (const auto& [ts, n] : per_interval)
    rep.peak_rps = std::max(rep.peak_rps, static_cast<double>(n) / cx.res_s);

  std::vector<telemetry::RepeatCount> repeats = cx.store.Repeats(p.from_ms, p.to_ms);
  const int64_t mid = p.from_ms + cx.span / 2;
  for (const auto& t : totals) {
    if (t.requests == 0) continue;
    RouteReport rr;
    rr.name = t.name;
    auto cfg_it = cx.routes.find(t.name);
    rr.reads = cfg_it == cx.routes.end() || AcceptsGet(*cfg_it->second);
    rr.requests = t.requests;
    rr.errors = t.errors;
    rr.p50_ms = t.latency.PercentileMicros(0.50) / 1000.0;
    rr.p90_ms = t.latency.PercentileMicros(0.90) / 1000.0;
    rr.p99_ms = t.latency.PercentileMicros(0.99) / 1000.0;
    rr.threshold_ms =
        cx.config ? ThresholdMsFor(*cx.config, t.name, p.p99_default_ms) : p.p99_default_ms;
    rr.mean_bytes_out = static_cast<double>(t.bytes_out) / static_cast<double>(t.requests);
    const double ms = TotalMs(t.latency);
    rr.mean_ms = ms / static_cast<double>(t.requests);
    rr.time_share = ms;  // normalized below
    all_time_ms += ms;
    clients.Merge(t.clients);
    uint64_t first = 0, second = 0;
    for (const auto& r : rows) {
      if (r.name != t.name) continue;
      if (!assessing(r.ts_ms))
        rr.peak_rps = std::max(rr.peak_rps, static_cast<double>(r.requests) / cx.res_s);
      (r.ts_ms < mid ? first : second) += r.requests;
    }
    if (first > 0) rr.growth = static_cast<double>(second) / static_cast<double>(first) - 1;
    ErrorsAgainstLoad(rows, rr);
    std::map<int, uint64_t> statuses;
    for (const auto& e : cx.store.ErrorSamples(t.name, 500)) {
      if (e.ts_ms >= p.from_ms && e.ts_ms < p.to_ms && e.status >= 500) ++statuses[e.status];
    }
    rr.error_statuses.assign(statuses.begin(), statuses.end());
    std::stable_sort(rr.error_statuses.begin(), rr.error_statuses.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    for (const auto& pr : periods) {
      if (pr.name != t.name) continue;
      rr.trend.push_back(
          {pr.ts_ms, pr.requests, pr.errors, pr.latency.PercentileMicros(0.99) / 1000.0});
    }
    if (auto k = latest.find("route:" + t.name); k != latest.end()) AssessedAs(*k->second, rr);
    for (const auto& rc : repeats) {
      if (rc.route != t.name) continue;
      rr.repeat_samples = rc.repeated + rc.changed;
      if (rr.repeat_samples > 0)
        rr.repeat_ratio = static_cast<double>(rc.repeated) / static_cast<double>(rr.repeat_samples);
    }
    rep.requests += t.requests;
    rep.errors += t.errors;
    rep.routes.push_back(std::move(rr));
  }
  rep.clients = clients.Estimate();
  rep.active_users = p.active_users > 0 ? p.active_users : rep.clients;
  for (auto& rr : rep.routes) {
    rr.share =
        rep.requests ? static_cast<double>(rr.requests) / static_cast<double>(rep.requests) : 0;
    rr.time_share = all_time_ms > 0 ? rr.time_share / all_time_ms : 0;
  }
  std::sort(rep.routes.begin(), rep.routes.end(),
            [](const RouteReport& a, const RouteReport& b) { return a.requests > b.requests; });
}

// Counts from the store, the slo module's math.
void EvaluateSlos(const Context& cx, Report& rep) {
  if (!cx.config) return;
  const int64_t to_ms = cx.p.to_ms;
  const auto now = slo::SystemTime(std::chrono::milliseconds(to_ms));
  for (const slo::Objective& obj : slo::ObjectivesOf(*cx.config)) {
    auto counts_over = [&](int64_t window_ms) {
      const int64_t from = to_ms - window_ms;
      auto r = window_ms <= 86'400'000 ? telemetry::Resolution::k10s : telemetry::Resolution::k1m;
      std::vector<std::pair<std::string, slo::RouteTotals>> named;
      // Users' traffic only: the route's totals less its `ficus assess` requests.
      for (const auto& t : cx.store.SloTotals(r, from, to_ms))
        named.emplace_back(t.name, ToTotals(t));
      return slo::RouteSource::CountsOf(obj, named);
    };
    std::array<slo::Counts, slo::kWindowCount> counts{};
    for (int i = 0; i < slo::kWindowCount; ++i)
      counts[i] = counts_over(
          std::chrono::duration_cast<std::chrono::milliseconds>(slo::kWindows[i]).count());
    const slo::Counts window =
        counts_over(std::chrono::duration_cast<std::chrono::milliseconds>(obj.window).count());
    slo::SloStatus st = slo::Evaluate(obj, window, counts, now);
    SloReport sr;
    sr.id = obj.Id();
    sr.target = obj.target;
    sr.sli = st.sli;
    sr.budget_remaining = st.budget_remaining;
    sr.severity = std::string(slo::SeverityName(st.severity));
    sr.burn_1h = st.burn[slo::k1h];
    sr.burn_6h = st.burn[slo::k6h];
    sr.requests = window.total;
    rep.slos.push_back(sr);
  }
}

// The mix's capacity per instance (harmonic over the routes' knees, weighted by traffic share,
// or a scenario's knee when one was assessed), and instances and cost at 1x .. 100x the peak.
void PlanCapacity(const Context& cx, Report& rep) {
  double inv = 0, covered = 0;
  bool lower_bound = false;
  for (const auto& rr : rep.routes) {
    // A knee or a lower bound; a route that failed at its first rate, answered 4xx or was
    // skipped gives no figure to plan with.
    if (rr.assessed != "knee" && rr.assessed != "lower_bound") continue;
    if (!rr.capacity_rps || *rr.capacity_rps <= 0) continue;
    inv += rr.share / *rr.capacity_rps;
    covered += rr.share;
    lower_bound = lower_bound || rr.assessed == "lower_bound";
  }
  if (covered >= 0.5 && inv > 0) {
    rep.capacity_rps = covered / inv;
    rep.capacity_lower_bound = lower_bound;
  }
  for (const auto& a : rep.assessments) {
    if (a.target.rfind("scenario:", 0) == 0 && a.knee_rate > 0) {
      rep.capacity_rps = a.knee_rate;
      rep.capacity_lower_bound = a.stop_reason == "envelope" || a.stop_reason == "duration";
    }
  }
  for (double m : {1.0, 2.0, 10.0, 100.0}) {
    Growth g;
    g.multiple = m;
    g.peak_rps = rep.peak_rps * m;
    if (rep.capacity_rps && *rep.capacity_rps > 0) {
      g.instances = std::max(
          1, static_cast<int>(
                 std::ceil(g.peak_rps / (*rep.capacity_rps * internal::kTargetUtilisation))));
      // From a lower bound of the capacity, the count is an upper bound.
      g.instances_at_most = rep.capacity_lower_bound;
      g.cost_month = g.instances * cx.p.price_month;
      g.cost_per_user = rep.active_users > 0 ? g.cost_month / (rep.active_users * m) : 0;
    }
    rep.growth.push_back(g);
  }
}

// p99 and errors in the 10 minutes before and after each deploy or reload.
void CorrelateEvents(const Context& cx, Report& rep) {
  for (const auto& e : cx.store.Events(cx.p.from_ms, cx.p.to_ms, "", 200)) {
    if (e.kind != "deploy" && e.kind != "config_reload") continue;
    auto window = [&](int64_t from, int64_t to) {
      auto t =
          cx.store.Totals(telemetry::Resolution::k10s, telemetry::SeriesKind::kRoute, {}, from, to);
      telemetry::Rollup all;
      for (const auto& r : t) all.Merge(r);
      return all;
    };
    const int64_t w = 600'000;
    telemetry::Rollup before = window(e.ts_ms - w, e.ts_ms);
    telemetry::Rollup after = window(e.ts_ms, e.ts_ms + w);
    Correlation c;
    c.event = e;
    c.p99_before_ms = before.latency.PercentileMicros(0.99) / 1000.0;
    c.p99_after_ms = after.latency.PercentileMicros(0.99) / 1000.0;
    c.errors_before = before.requests ? static_cast<double>(before.errors) / before.requests : 0;
    c.errors_after = after.requests ? static_cast<double>(after.errors) / after.requests : 0;
    const bool enough = before.requests >= kMinRequests && after.requests >= kMinRequests;
    c.shifted =
        enough &&
        ((c.p99_after_ms > 1.5 * c.p99_before_ms && c.p99_after_ms - c.p99_before_ms > 20) ||
         c.errors_after - c.errors_before > 0.01);
    rep.correlations.push_back(c);
  }
}

// A route's impact (1..3): its traffic share and the availability its SLOs ask for.
int ImpactOf(const Context& cx, const RouteReport& rr) {
  int i = rr.share > 0.2 ? 2 : 1;
  if (!cx.config) return i;
  for (const config::Slo& s : cx.config->slos) {
    const bool names =
        s.routes.empty() || std::find(s.routes.begin(), s.routes.end(), rr.name) != s.routes.end();
    if (!names) continue;
    i = std::max(i, s.availability.value_or(0) >= 0.999 ? 3 : 2);
  }
  return i;
}

// Every rule on every subject, ranked most severe first (ties keep the rules' order).
void FindProblems(const Context& cx, Report& rep) {
  using internal::Subject;
  std::vector<Finding> found;
  // A capacity that is only a lower bound gives no capacity trigger (its knee is further up).
  internal::Facts facts{.report = rep, .mix_bounded = rep.capacity_lower_bound};
  for (const auto& rr : rep.routes) {
    if (rr.requests < kMinRequests) continue;
    const auto cfg_it = cx.routes.find(rr.name);
    const internal::RouteFacts route{
        .route = rr,
        .impact = ImpactOf(cx, rr),
        .cluster = cfg_it != cx.routes.end() ? cfg_it->second->cluster : std::string("CLUSTER"),
        .error_ratio = static_cast<double>(rr.errors) / static_cast<double>(rr.requests),
        .cacheable = rr.reads && rr.repeat_ratio &&
                     *rr.repeat_ratio >= internal::kCacheableRepeat && rr.repeat_samples >= 20,
        .worth_caching = internal::WorthCaching(rr),
    };
    facts.route = &route;
    internal::ApplyRules(Subject::kRoute, facts, found);
  }
  facts.route = nullptr;
  internal::ApplyRules(Subject::kMix, facts, found);
  for (const NoisyClient& n : rep.noisy) {
    facts.client = &n;
    internal::ApplyRules(Subject::kClient, facts, found);
  }
  facts.client = nullptr;
  for (const Correlation& c : rep.correlations) {
    facts.event = &c;
    internal::ApplyRules(Subject::kEvent, facts, found);
  }
  facts.event = nullptr;
  for (const QueueReport& q : rep.queues) {
    facts.queue = &q;
    internal::ApplyRules(Subject::kQueue, facts, found);
  }
  std::stable_sort(found.begin(), found.end(), [](const Finding& a, const Finding& b) {
    return a.impact * a.likelihood > b.impact * b.likelihood;
  });
  rep.findings = std::move(found);
}

}  // namespace

Report Analyze(const config::Config* config, telemetry::Store& store, const AnalyzeParams& params) {
  // 10 s rows are kept a day: finer trends and peaks for short periods.
  const telemetry::Resolution res = params.to_ms - params.from_ms <= 86'400'000
                                        ? telemetry::Resolution::k10s
                                        : telemetry::Resolution::k1m;
  // Rows are stamped with their interval's start: the period starts at the start of the
  // interval it falls in, so its first (partly covered) interval is counted, not dropped.
  AnalyzeParams p = params;
  const int64_t res_ms = static_cast<int64_t>(res);
  p.from_ms -= ((p.from_ms % res_ms) + res_ms) % res_ms;
  const int64_t span = std::max<int64_t>(p.to_ms - p.from_ms, 10'000);
  Context cx{.config = config,
             .store = store,
             .p = p,
             .span = span,
             .res = res,
             .res_ms = static_cast<int64_t>(res),
             .res_s = static_cast<double>(res) / 1000.0,
             .routes = {}};
  if (config) {
    for (const auto& r : config->routes) cx.routes[r.name] = &r;
  }
  Report rep;
  rep.from_ms = p.from_ms;
  rep.to_ms = p.to_ms;
  rep.period = p.period;
  rep.price_month = p.price_month;
  rep.assessments = store.Assessments(0, p.to_ms + 1);
  FindSyntheticWindows(cx, rep);
  GatherRoutes(cx, rep);
  EvaluateSlos(cx, rep);
  PlanCapacity(cx, rep);
  rep.noisy = internal::FindNoisyClients(cx.store.ClientKeys(cx.p.from_ms, cx.p.to_ms),
                                         rep.requests, static_cast<double>(cx.span) / 1000.0);
  internal::AddLimits(config, store, p.from_ms, p.to_ms, rep.noisy);
  CorrelateEvents(cx, rep);
  rep.queues = internal::ReadQueues(config, store, p.from_ms, p.to_ms);
  FindProblems(cx, rep);
  rep.proofs = internal::ReadProofs(store, p.from_ms, p.to_ms);
  rep.caches = internal::ReadCaches(store, p.from_ms, p.to_ms, rep.routes);
  internal::AnalyzeDatabase(store, p.from_ms, p.to_ms, rep);  // and its findings
  return rep;
}

}  // namespace ficus::advisor
