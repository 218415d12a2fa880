// The report's analysis: from per-route rollups, events, assessments, client keys and repeats
// to findings with remedies.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "advisor/advisor.h"
#include "slo/slo.h"

namespace ficus::advisor {
namespace {

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

std::string Fmt(const char* fmt, auto... args) {
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

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

std::string RouteSnippetHeader(const std::string& route) {
  return std::string("routes:\n  - name: ") + route + "\n    # ... match and cluster as now\n";
}

}  // namespace

Report Analyze(const config::Config* config, telemetry::Store& store, const AnalyzeParams& p) {
  Report rep;
  rep.from_ms = p.from_ms;
  rep.to_ms = p.to_ms;
  rep.period = p.period;
  rep.price_month = p.price_month;
  const int64_t span = std::max<int64_t>(p.to_ms - p.from_ms, 10'000);
  // 10 s rows are kept a day: finer trends and peaks for short periods.
  const telemetry::Resolution res =
      span <= 86'400'000 ? telemetry::Resolution::k10s : telemetry::Resolution::k1m;
  const int64_t res_ms = static_cast<int64_t>(res);
  const double res_s = static_cast<double>(res_ms) / 1000.0;

  std::vector<telemetry::Rollup> totals =
      store.Totals(res, telemetry::SeriesKind::kRoute, {}, p.from_ms, p.to_ms);
  std::vector<telemetry::Rollup> rows =
      store.QueryRollups(res, telemetry::SeriesKind::kRoute, {}, p.from_ms, p.to_ms);
  const int64_t bucket_ms = RoundUp(std::max<int64_t>(span / 30, res_ms), res_ms);
  std::vector<telemetry::Rollup> periods =
      store.Periods(res, telemetry::SeriesKind::kRoute, {}, p.from_ms, p.to_ms, bucket_ms);
  rep.assessments = store.Assessments(0, p.to_ms + 1);
  // Which of the period's assessment windows were kept out of the SLOs (their requests are in
  // the synthetic series), and which counted like user traffic.
  for (const auto& a : rep.assessments) {
    const int64_t to = a.ts_ms + a.duration_ms;
    if (to < p.from_ms || a.ts_ms >= p.to_ms) continue;
    Report::SyntheticWindow w{a.target, a.ts_ms, to, 0};
    // The route's synthetic requests in the rollup intervals the window touches. A scenario
    // cannot carry the key (its requests are the file's): it always counted in the SLOs.
    if (a.target.rfind("route:", 0) == 0) {
      const int64_t from_row = a.ts_ms / res_ms * res_ms;
      for (const auto& t : store.Totals(res, telemetry::SeriesKind::kSynthetic,
                                        {a.target.substr(6)}, from_row, to + res_ms))
        w.synthetic_requests += t.requests;
    }
    rep.synthetic_windows.push_back(std::move(w));
  }

  std::map<std::string, const config::Route*> route_cfg;
  if (config) {
    for (const auto& r : config->routes) route_cfg[r.name] = &r;
  }
  // Latest knee per target.
  // Latest knee per target; one that ran into the envelope is only a lower bound (no
  // capacity trigger from it).
  std::map<std::string, double> knee;
  std::set<std::string> bounded;
  for (const auto& a : rep.assessments) {
    knee[a.target] = a.knee_rate;
    if (a.stop_reason == "envelope" || a.stop_reason == "duration") {
      bounded.insert(a.target);
    } else {
      bounded.erase(a.target);
    }
  }

  telemetry::Hll clients;
  double all_time_ms = 0;
  // The assessments' own step load is not the application's traffic: intervals that overlap
  // one are left out of peaks.
  auto assessing = [&](int64_t ts) {
    for (const auto& a : rep.assessments) {
      if (ts < a.ts_ms + a.duration_ms && ts + res_ms > a.ts_ms) return true;
    }
    return false;
  };
  std::map<int64_t, uint64_t> per_interval;  // all routes' requests per rollup interval
  for (const auto& r : rows) {
    if (!assessing(r.ts_ms)) per_interval[r.ts_ms] += r.requests;
  }
  for (const auto& [ts, n] : per_interval)
    rep.peak_rps = std::max(rep.peak_rps, static_cast<double>(n) / res_s);

  std::vector<telemetry::RepeatCount> repeats = store.Repeats(p.from_ms, p.to_ms);
  const int64_t mid = p.from_ms + span / 2;
  for (const auto& t : totals) {
    if (t.requests == 0) continue;
    RouteReport rr;
    rr.name = t.name;
    auto cfg_it = route_cfg.find(t.name);
    rr.reads = cfg_it == route_cfg.end() || AcceptsGet(*cfg_it->second);
    rr.requests = t.requests;
    rr.errors = t.errors;
    rr.p50_ms = t.latency.PercentileMicros(0.50) / 1000.0;
    rr.p90_ms = t.latency.PercentileMicros(0.90) / 1000.0;
    rr.p99_ms = t.latency.PercentileMicros(0.99) / 1000.0;
    rr.threshold_ms = config ? ThresholdMsFor(*config, t.name, p.p99_default_ms) : p.p99_default_ms;
    rr.mean_bytes_out = static_cast<double>(t.bytes_out) / static_cast<double>(t.requests);
    const double ms = TotalMs(t.latency);
    rr.time_share = ms;  // normalized below
    all_time_ms += ms;
    clients.Merge(t.clients);
    uint64_t first = 0, second = 0;
    for (const auto& r : rows) {
      if (r.name != t.name) continue;
      if (!assessing(r.ts_ms))
        rr.peak_rps = std::max(rr.peak_rps, static_cast<double>(r.requests) / res_s);
      (r.ts_ms < mid ? first : second) += r.requests;
    }
    if (first > 0) rr.growth = static_cast<double>(second) / static_cast<double>(first) - 1;
    for (const auto& pr : periods) {
      if (pr.name != t.name) continue;
      rr.trend.push_back(
          {pr.ts_ms, pr.requests, pr.errors, pr.latency.PercentileMicros(0.99) / 1000.0});
    }
    if (auto k = knee.find("route:" + t.name); k != knee.end()) rr.capacity_rps = k->second;
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

  // ---- SLOs: counts from the store, the slo module's math.
  if (config) {
    const auto now = slo::SystemTime(std::chrono::milliseconds(p.to_ms));
    for (const slo::Objective& obj : slo::ObjectivesOf(*config)) {
      auto counts_over = [&](int64_t window_ms) {
        const int64_t from = p.to_ms - window_ms;
        auto r = window_ms <= 86'400'000 ? telemetry::Resolution::k10s : telemetry::Resolution::k1m;
        std::vector<std::pair<std::string, slo::RouteTotals>> named;
        // Users' traffic only: the route's totals less its `ficus assess` requests.
        for (const auto& t : store.SloTotals(r, from, p.to_ms))
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
  std::map<std::string, int> impact;  // route -> 1..3
  for (const auto& rr : rep.routes) {
    int i = rr.share > 0.2 ? 2 : 1;
    if (config) {
      for (const config::Slo& s : config->slos) {
        const bool names = s.routes.empty() ||
                           std::find(s.routes.begin(), s.routes.end(), rr.name) != s.routes.end();
        if (!names) continue;
        const double a = s.availability.value_or(0);
        i = std::max(i, a >= 0.999 ? 3 : 2);
      }
    }
    impact[rr.name] = i;
  }

  // ---- capacity: the mix's capacity per instance (harmonic over the routes' knees, weighted
  // by traffic share), or a scenario's knee when one was assessed.
  {
    double inv = 0, covered = 0;
    for (const auto& rr : rep.routes) {
      if (!rr.capacity_rps || *rr.capacity_rps <= 0) continue;
      inv += rr.share / *rr.capacity_rps;
      covered += rr.share;
    }
    if (covered >= 0.5 && inv > 0) rep.capacity_rps = covered / inv;
    for (const auto& a : rep.assessments) {
      if (a.target.rfind("scenario:", 0) == 0 && a.knee_rate > 0) rep.capacity_rps = a.knee_rate;
    }
  }
  for (double m : {1.0, 2.0, 10.0, 100.0}) {
    Growth g;
    g.multiple = m;
    g.peak_rps = rep.peak_rps * m;
    if (rep.capacity_rps && *rep.capacity_rps > 0) {
      g.instances = std::max(
          1, static_cast<int>(std::ceil(g.peak_rps / (*rep.capacity_rps * kTargetUtilisation))));
      g.cost_month = g.instances * p.price_month;
      g.cost_per_user = rep.active_users > 0 ? g.cost_month / (rep.active_users * m) : 0;
    }
    rep.growth.push_back(g);
  }

  // ---- findings
  auto add = [&](Finding f) { rep.findings.push_back(std::move(f)); };
  for (const auto& rr : rep.routes) {
    if (rr.requests < kMinRequests) continue;
    const double err = static_cast<double>(rr.errors) / static_cast<double>(rr.requests);
    const int imp = impact[rr.name];
    const auto cfg_it = route_cfg.find(rr.name);
    const std::string cluster =
        cfg_it != route_cfg.end() ? cfg_it->second->cluster : std::string("CLUSTER");
    const bool cacheable = rr.reads && rr.repeat_ratio && *rr.repeat_ratio >= kCacheableRepeat &&
                           rr.repeat_samples >= 20;
    const bool worth_caching = rr.share >= kCacheWorthShare || rr.time_share >= kCacheWorthShare;
    if (cacheable && worth_caching) {
      // A TTL long enough that most repeats are served from cache, short enough that a change
      // shows within it: 30 s when nothing changed in the samples, 5 s otherwise.
      const int ttl = *rr.repeat_ratio >= 0.95 ? 30 : 5;
      const double hit = *rr.repeat_ratio;
      Finding f;
      f.kind = "cache";
      f.route = rr.name;
      f.summary =
          Fmt("%.0f%% of sampled GET responses repeat the previous body for the same URL "
              "(%llu samples); peak %.1f req/s",
              hit * 100, static_cast<unsigned long long>(rr.repeat_samples), rr.peak_rps);
      f.remedy =
          Fmt("cache it for %ds: estimated hit rate %.0f%%, saving the origin about "
              "%.1f req/s at peak and %.0f%% of this route's load",
              ttl, hit * 100, hit * rr.peak_rps, hit * 100);
      f.snippet = RouteSnippetHeader(rr.name) +
                  Fmt("    cache: { ttl: %ds, stale_while_revalidate: %ds }\n", ttl, ttl * 2);
      f.impact = imp;
      f.likelihood = rr.share > 0.2 ? 3 : 2;
      add(f);
    }
    // Over its latency target, or a read slow enough to dominate where the time goes.
    const bool over = rr.p99_ms > rr.threshold_ms;
    if (over || (rr.reads && rr.p90_ms >= kSlowMs)) {
      Finding f;
      f.kind = over ? "trigger.p99" : "slow";
      f.route = rr.name;
      f.summary = over ? Fmt("p99 %.0f ms over its %.0f ms target (p50 %.0f ms)", rr.p99_ms,
                             rr.threshold_ms, rr.p50_ms)
                       : Fmt("slow read: p50 %.0f ms, p90 %.0f ms; %.0f%% of all time spent "
                             "answering for %.1f%% of the requests",
                             rr.p50_ms, rr.p90_ms, rr.time_share * 100, rr.share * 100);
      if (rr.reads && cacheable) {
        f.remedy =
            "serve repeats from the cache (see the cache finding); the origin answers only misses";
      } else if (rr.reads) {
        f.remedy =
            "the work is redone on every request: precompute or cache the result with a short TTL "
            "(a report may lag by seconds), or offload it as a job the client polls";
        f.snippet =
            RouteSnippetHeader(rr.name) + "    cache: { ttl: 10s, stale_while_revalidate: 60s }\n";
      } else {
        f.remedy = "answer 202 and do the slow part in a background job (async offload)";
        f.snippet = RouteSnippetHeader(rr.name) +
                    Fmt("    offload: { queue: %s, max_attempts: 5 }\n", rr.name.c_str());
      }
      f.impact = imp;
      f.likelihood = over ? 3 : 2;
      add(f);
    }
    if (!rr.reads && rr.p90_ms >= kSlowMs && rr.mean_bytes_out <= kSmallResponse) {
      Finding f;
      f.kind = "offload";
      f.route = rr.name;
      f.summary = Fmt("slow write: p50 %.0f ms, p90 %.0f ms, for a %.0f-byte answer", rr.p50_ms,
                      rr.p90_ms, rr.mean_bytes_out);
      f.remedy =
          "the client only needs an acknowledgement: queue the work (e.g. the email) and "
          "answer 202 Accepted at once";
      f.snippet = RouteSnippetHeader(rr.name) +
                  Fmt("    offload: { queue: %s, max_attempts: 5 }\n", rr.name.c_str());
      f.impact = imp;
      f.likelihood = 2;
      add(f);
    }
    if (err > kErrorTrigger) {
      Finding f;
      f.kind = "trigger.errors";
      f.route = rr.name;
      f.summary = Fmt("%.1f%% of requests failed with 5xx (%llu of %llu)", err * 100,
                      static_cast<unsigned long long>(rr.errors),
                      static_cast<unsigned long long>(rr.requests));
      f.remedy =
          "errors grow with concurrency (the upstream runs out of a pool): cap requests in "
          "flight so excess waits or fails fast, retry 503 within a budget, and add capacity";
      f.snippet =
          Fmt("clusters:\n  - name: %s\n    circuit_breakers: { max_requests: 4 }   # set to what "
              "the upstream sustains\n    retry: { on: [connect_failure, \"503\"], max_tries: 2, "
              "budget: { ratio: 0.2 } }\n",
              cluster.c_str());
      f.in_ficus = true;
      f.impact = imp;
      f.likelihood = 3;
      add(f);
    }
    if (rr.capacity_rps && *rr.capacity_rps > 0 &&
        rr.peak_rps > kCapacityTrigger * *rr.capacity_rps) {
      Finding f;
      f.kind = "trigger.capacity";
      f.route = rr.name;
      f.summary = Fmt("peak %.1f req/s is %.0f%% of the measured capacity %.1f req/s", rr.peak_rps,
                      100 * rr.peak_rps / *rr.capacity_rps, *rr.capacity_rps);
      f.remedy =
          "add endpoints (instances) before the next peak, or take load off with the "
          "cache/offload findings";
      f.snippet =
          Fmt("clusters:\n  - name: %s\n    endpoints: [EXISTING, NEW:PORT]\n    "
              "load_balancer: p2c_ewma\n",
              cluster.c_str());
      f.in_ficus = true;
      f.impact = imp;
      f.likelihood = 3;
      add(f);
    }
    if (rr.growth > kGrowthTrigger && rr.requests >= 4 * kMinRequests) {
      Finding f;
      f.kind = "trigger.growth";
      f.route = rr.name;
      f.summary = Fmt("traffic grew %.0f%% from the first to the second half of the period",
                      rr.growth * 100);
      f.remedy = "re-run `ficus assess` and check the capacity table below against the trend";
      f.impact = imp;
      f.likelihood = 2;
      add(f);
    }
  }
  const bool mix_bounded = !bounded.empty();  // some part of the mix is only a lower bound
  if (rep.capacity_rps && !mix_bounded && rep.peak_rps > kCapacityTrigger * *rep.capacity_rps) {
    Finding f;
    f.kind = "trigger.capacity";
    f.route = "*";
    f.summary = Fmt("peak %.1f req/s is %.0f%% of the measured capacity %.1f req/s per instance",
                    rep.peak_rps, 100 * rep.peak_rps / *rep.capacity_rps, *rep.capacity_rps);
    f.remedy = "add an instance (see capacity and growth)";
    f.impact = 3;
    f.likelihood = 3;
    add(f);
  }

  // ---- noisy clients: keys over their fair share of all requests.
  {
    std::map<std::string, uint64_t> per_key;
    for (const auto& k : store.ClientKeys(p.from_ms, p.to_ms)) {
      // `ficus assess` marks its own step load with this key: not a client.
      if (k.key != "key:ficus-assess") per_key[k.key] += k.count;
    }
    std::vector<std::pair<std::string, uint64_t>> keys(per_key.begin(), per_key.end());
    std::sort(keys.begin(), keys.end(), [](auto& a, auto& b) { return a.second > b.second; });
    const double secs = static_cast<double>(span) / 1000.0;
    // The typical key: the median of the others seen (the sketch keeps only heavy keys, so
    // this overstates the typical rate: a safe side for a limit).
    for (size_t i = 0; i < keys.size() && rep.requests > 0; ++i) {
      const double share = static_cast<double>(keys[i].second) / static_cast<double>(rep.requests);
      if (share < kNoisyShare || keys[i].second < kMinRequests) continue;
      std::vector<uint64_t> others;
      for (size_t j = 0; j < keys.size(); ++j)
        if (j != i) others.push_back(keys[j].second);
      double typical = 0;
      // A sole client is not noisy among others; nor is one merely above a few peers.
      if (others.empty()) continue;
      std::nth_element(others.begin(), others.begin() + others.size() / 2, others.end());
      const uint64_t median = others[others.size() / 2];
      if (keys[i].second < 3 * median) continue;
      typical = static_cast<double>(median) / secs;
      NoisyClient n;
      n.key = keys[i].first;
      n.requests = keys[i].second;
      n.share = share;
      n.rps = static_cast<double>(keys[i].second) / secs;
      n.suggested_rate = std::max(1.0, std::ceil(std::max(typical * 5, n.rps / 4)));
      rep.noisy.push_back(n);
      Finding f;
      f.kind = "noisy_client";
      f.route = "*";
      f.summary = Fmt("%s sent %.0f%% of all requests (%.1f req/s on average)", n.key.c_str(),
                      share * 100, n.rps);
      const std::string key_kind = n.key.rfind("key:", 0) == 0    ? "header: X-Api-Key"
                                   : n.key.rfind("user:", 0) == 0 ? "header: X-User"
                                                                  : "client_ip";
      f.remedy =
          Fmt("rate-limit per client key at %.0f req/s (burst %.0f): the others keep "
              "their latency, the heavy client gets 429 with Retry-After",
              n.suggested_rate, n.suggested_rate * 2);
      f.snippet =
          Fmt("routes:\n  - name: ROUTE   # each route it uses\n    rate_limit: { key: { %s }, "
              "rate: %.0f/s, burst: %.0f }\n",
              key_kind.c_str(), n.suggested_rate, n.suggested_rate * 2);
      f.impact = 2;
      f.likelihood = share > 0.4 ? 3 : 2;
      add(f);
    }
  }

  // ---- event correlation: p99 and errors in the 10 minutes before and after each event.
  {
    auto events = store.Events(p.from_ms, p.to_ms, "", 200);
    for (const auto& e : events) {
      if (e.kind != "deploy" && e.kind != "config_reload") continue;
      auto window = [&](int64_t from, int64_t to) {
        auto t =
            store.Totals(telemetry::Resolution::k10s, telemetry::SeriesKind::kRoute, {}, from, to);
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
      if (c.shifted) {
        Finding f;
        f.kind = "correlation";
        f.route = "*";
        f.summary = Fmt("after %s %s %s: p99 %.0f -> %.0f ms, errors %.2f%% -> %.2f%%",
                        e.kind.c_str(), e.service.c_str(), e.version.c_str(), c.p99_before_ms,
                        c.p99_after_ms, c.errors_before * 100, c.errors_after * 100);
        f.remedy = "compare the change with the previous version; roll back if it is the cause";
        f.impact = 2;
        f.likelihood = 3;
        add(f);
      }
      rep.correlations.push_back(c);
    }
  }
  std::stable_sort(rep.findings.begin(), rep.findings.end(),
                   [](const Finding& a, const Finding& b) {
                     return a.impact * a.likelihood > b.impact * b.likelihood;
                   });
  return rep;
}

}  // namespace ficus::advisor
