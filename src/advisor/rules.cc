// The finding rules: a trigger and a builder each, over the facts Analyze gathered.
#include "advisor/internal/rules.h"

#include <algorithm>
#include <cmath>

#include "advisor/internal/limits.h"
#include "advisor/internal/queues.h"
#include "base/text.h"

namespace ficus::advisor::internal {
namespace {

std::string RouteSnippetHeader(const std::string& route) {
  return std::string("routes:\n  - name: ") + route + "\n    # ... match and cluster as now\n";
}

// A queue named after the route, the route offloaded to it, and a route that serves its job URLs
// (`/jobs/<queue>/<id>`, the queue's default jobs_path).
std::string OffloadSnippet(const std::string& route, const std::string& cluster) {
  return Format(
             "queues:\n  - { name: %s, concurrency: 4 }   # deliveries the application takes at "
             "once\n",
             route.c_str()) +
         RouteSnippetHeader(route) +
         Format(
             "    offload: { queue: %s, max_attempts: 5 }\n  - name: %s-jobs\n    match: { "
             "path_prefix: /jobs/%s/ }\n    cluster: %s\n    jobs: { queue: %s }\n",
             route.c_str(), route.c_str(), route.c_str(), cluster.c_str(), route.c_str());
}

Finding On(const RouteFacts& f, const char* kind) {
  Finding out;
  out.kind = kind;
  out.route = f.route.name;
  out.impact = f.impact;
  return out;
}

// ---- route rules

bool Cache(const Facts& f) { return f.route->cacheable && f.route->worth_caching; }
Finding CacheFinding(const Facts& facts) {
  const RouteReport& rr = facts.route->route;
  // A TTL long enough that most repeats are served from cache, short enough that a change
  // shows within it: 30 s when nothing changed in the samples, 5 s otherwise.
  const double hit = *rr.repeat_ratio;
  const int ttl = hit >= 0.95 ? 30 : 5;
  Finding f = On(*facts.route, "cache");
  f.summary = Format(
      "%.0f%% of sampled GET responses repeat the previous body for the same URL (%llu "
      "samples); peak %.1f req/s",
      hit * 100, static_cast<unsigned long long>(rr.repeat_samples), rr.peak_rps);
  f.remedy = Format(
      "cache it for %ds: estimated hit rate %.0f%%, saving the origin about %.1f req/s at peak "
      "and %.0f%% of this route's load",
      ttl, hit * 100, hit * rr.peak_rps, hit * 100);
  f.snippet = RouteSnippetHeader(rr.name) +
              Format("    cache: { ttl: %ds, stale_while_revalidate: %ds }\n", ttl, ttl * 2);
  f.in_ficus = true;
  // Ranked by the origin time it saves, not by the request count: a cheap route that is merely
  // busy is a low finding.
  f.likelihood = rr.time_share > 0.2 ? 3 : rr.time_share >= kCacheWorthShare ? 2 : 1;
  return f;
}

// Over its latency target, or a read slow enough to dominate where the time goes.
bool Latency(const Facts& f) {
  const RouteReport& rr = f.route->route;
  return rr.p99_ms > rr.threshold_ms || (rr.reads && rr.p90_ms >= kSlowMs);
}
Finding LatencyFinding(const Facts& facts) {
  const RouteReport& rr = facts.route->route;
  const bool over = rr.p99_ms > rr.threshold_ms;
  Finding f = On(*facts.route, over ? "trigger.p99" : "slow");
  f.summary = over ? Format("p99 %.0f ms over its %.0f ms target (p50 %.0f ms)", rr.p99_ms,
                            rr.threshold_ms, rr.p50_ms)
                   : Format(
                         "slow read: p50 %.0f ms, p90 %.0f ms; %.0f%% of all time spent "
                         "answering for %.1f%% of the requests",
                         rr.p50_ms, rr.p90_ms, rr.time_share * 100, rr.share * 100);
  if (rr.reads && facts.route->cacheable) {
    f.remedy =
        "serve repeats from the cache (see the cache finding); the origin answers only misses";
  } else if (rr.reads) {
    f.remedy =
        "the work is redone on every request: precompute or cache the result with a short TTL "
        "(a report may lag by seconds), or offload it as a job the client polls";
    f.snippet =
        RouteSnippetHeader(rr.name) + "    cache: { ttl: 10s, stale_while_revalidate: 60s }\n";
    f.in_ficus = true;
  } else {
    f.remedy = "answer 202 and do the slow part in a background job (async offload)";
    f.snippet = OffloadSnippet(rr.name, facts.route->cluster);
    f.in_ficus = true;
  }
  f.likelihood = over ? 3 : 2;
  return f;
}

bool Offload(const Facts& f) {
  const RouteReport& rr = f.route->route;
  return !rr.reads && rr.p90_ms >= kSlowMs && rr.mean_bytes_out <= kSmallResponse;
}
Finding OffloadFinding(const Facts& facts) {
  const RouteReport& rr = facts.route->route;
  Finding f = On(*facts.route, "offload");
  f.summary = Format("slow write: p50 %.0f ms, p90 %.0f ms, for a %.0f-byte answer", rr.p50_ms,
                     rr.p90_ms, rr.mean_bytes_out);
  f.remedy =
      "the client only needs an acknowledgement: queue the work (e.g. the email) and answer 202 "
      "Accepted at once";
  f.snippet = OffloadSnippet(rr.name, facts.route->cluster);
  f.in_ficus = true;
  f.likelihood = 2;
  return f;
}

// The step load's knee was set by errors: they grow with the load (concurrency).
bool KneeByErrors(const RouteReport& rr) {
  return rr.assessed == "knee" && rr.assess_stop == "errors" && rr.capacity_rps;
}

// Over 1 % 5xx in users' traffic; or the step load's knee was set by the route's own errors
// (5xx or transport failures, not the generator's drops): they come with concurrency, a risk
// at the next peak even when users have not met it yet.
bool Errors(const Facts& f) {
  return f.route->error_ratio > kErrorTrigger || KneeByErrors(f.route->route);
}

// The 5xx statuses a retry may fix among those the upstream answered: 503 (the upstream says
// it did not take the request) always; 502 and 504 only for a read (a write may have been
// done before the answer was lost).
std::vector<int> RetryableStatuses(const RouteReport& rr) {
  std::vector<int> out;
  for (const auto& [status, n] : rr.error_statuses) {
    if (status == 503 || (rr.reads && (status == 502 || status == 504))) out.push_back(status);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Finding ErrorsFinding(const Facts& facts) {
  const RouteReport& rr = facts.route->route;
  Finding f = On(*facts.route, "trigger.errors");
  f.summary = Format("%.1f%% of requests failed with 5xx (%llu of %llu)",
                     facts.route->error_ratio * 100, static_cast<unsigned long long>(rr.errors),
                     static_cast<unsigned long long>(rr.requests));
  std::string returned;
  for (const auto& [status, n] : rr.error_statuses)
    returned += Format("%s%d", returned.empty() ? "" : ", ", status);
  if (!returned.empty()) f.summary += "; the upstream answered " + returned;
  const bool grows = rr.errors_busy_over_quiet > 1.5 || KneeByErrors(rr);
  if (KneeByErrors(rr))
    f.summary += Format("; the step load failed with errors past %.1f req/s", *rr.capacity_rps);
  // Users have not met them yet: likely at a higher peak, not now.
  const bool latent = facts.route->error_ratio <= kErrorTrigger;
  const bool flat =
      !grows && rr.load_varied && rr.errors_busy_over_quiet > 0 && rr.errors_busy_over_quiet <= 1.2;
  if (rr.errors_busy_over_quiet > 1.5)
    f.summary += Format("; the error ratio is %.1fx higher when the route is busier",
                        std::min(rr.errors_busy_over_quiet, 99.0));
  if (flat) f.summary += "; the error ratio does not grow with the load";

  const std::vector<int> retryable = RetryableStatuses(rr);
  std::string retry_on, retry_text;
  for (int st : retryable) {
    retry_on += Format("%s\"%d\"", retry_on.empty() ? "" : ", ", st);
    retry_text += Format("%s%d", retry_text.empty() ? "" : "/", st);
  }
  std::string retry_clause;
  if (!retryable.empty()) {
    retry_clause = "retry " + retry_text + " within a budget";
  } else if (!returned.empty()) {
    retry_clause =
        "no retry: the upstream answered " + returned + ", which a retry could repeat or not cure";
  } else {
    retry_clause = "no retry until the error samples show which statuses the upstream returns";
  }
  const std::string retry_snippet =
      retryable.empty() ? std::string()
                        : Format(
                              "clusters:\n  - name: %s\n    retry: { on: [%s], max_tries: 2, "
                              "budget: { ratio: 0.2 } }\n",
                              facts.route->cluster.c_str(), retry_on.c_str());
  if (flat) {
    // A limit would not cure errors that come at any load.
    f.remedy =
        "the errors come at any load: a defect or a failing dependency, which a "
        "concurrency limit would not cure; the error samples (GET /error-samples) show "
        "the failing requests; " +
        retry_clause + "; the root cause needs a fix";
    f.snippet = retry_snippet;
  } else {
    f.remedy = std::string(grows ? "errors grow with concurrency"
                                 : "if the errors grow with concurrency") +
               " (the upstream runs out of a pool): cap this route's requests in flight so the "
               "excess waits briefly or fails fast with 503 (the cluster's other routes keep "
               "their share); " +
               retry_clause + "; the root cause (the pool, a lock, a slow query) still needs a fix";
    f.snippet = RouteSnippetHeader(rr.name) +
                "    concurrency: { max: 4, queue: 32, queue_timeout: 500ms }   # max: what the "
                "upstream sustains\n" +
                retry_snippet;
  }
  f.in_ficus = true;
  f.likelihood = latent ? 2 : 3;
  return f;
}

bool RouteCapacity(const Facts& f) {
  const RouteReport& rr = f.route->route;
  return rr.assessed == "knee" && rr.capacity_rps && *rr.capacity_rps > 0 &&
         rr.peak_rps > kCapacityTrigger * *rr.capacity_rps;
}
Finding RouteCapacityFinding(const Facts& facts) {
  const RouteReport& rr = facts.route->route;
  Finding f = On(*facts.route, "trigger.capacity");
  // Little's law: requests in flight = arrival rate x time in the system.
  f.summary = Format(
      "peak %.1f req/s is %.0f%% of the measured knee %.1f req/s; at the knee about %.0f "
      "requests are in flight at once (Little's law: %.1f req/s x %.0f ms)",
      rr.peak_rps, 100 * rr.peak_rps / *rr.capacity_rps, *rr.capacity_rps,
      std::ceil(*rr.capacity_rps * rr.mean_ms / 1000), *rr.capacity_rps, rr.mean_ms);
  f.remedy = Format(
      "add capacity before the next peak: endpoints (instances) that together hold more than "
      "%.0f requests in flight; or cut the time per request on %s (%.0f ms on average), or take "
      "load off it with the cache/offload findings",
      std::ceil(*rr.capacity_rps * rr.mean_ms / 1000), rr.name.c_str(), rr.mean_ms);
  // No snippet: the new instances' addresses are the team's to give (a snippet must load).
  f.in_ficus = true;
  f.likelihood = 3;
  return f;
}

bool Growth(const Facts& f) {
  const RouteReport& rr = f.route->route;
  return rr.growth > kGrowthTrigger && rr.requests >= 4 * kMinRequests;
}
Finding GrowthFinding(const Facts& facts) {
  Finding f = On(*facts.route, "trigger.growth");
  f.summary = Format("traffic grew %.0f%% from the first to the second half of the period",
                     facts.route->route.growth * 100);
  f.remedy = "re-run `ficus assess` and check the capacity table below against the trend";
  f.likelihood = 2;
  return f;
}

// ---- the mix, clients, events

bool MixCapacity(const Facts& f) {
  const Report& r = f.report;
  return r.capacity_rps && !f.mix_bounded && r.peak_rps > kCapacityTrigger * *r.capacity_rps;
}
Finding MixCapacityFinding(const Facts& facts) {
  const Report& r = facts.report;
  Finding f;
  f.kind = "trigger.capacity";
  f.route = "*";
  // Little's law over the whole mix: the time per request is the requests' mean.
  double total_ms = 0, requests = 0;
  for (const RouteReport& rr : r.routes) {
    total_ms += rr.mean_ms * static_cast<double>(rr.requests);
    requests += static_cast<double>(rr.requests);
  }
  const double mean_ms = requests > 0 ? total_ms / requests : 0;
  f.summary = Format(
      "peak %.1f req/s is %.0f%% of the measured capacity %.1f req/s per instance; at that rate "
      "about %.0f requests are in flight at once (Little's law: %.1f req/s x %.0f ms)",
      r.peak_rps, 100 * r.peak_rps / *r.capacity_rps, *r.capacity_rps,
      std::ceil(*r.capacity_rps * mean_ms / 1000), *r.capacity_rps, mean_ms);
  // The routes where most of the time goes, the first places to cut it.
  std::vector<const RouteReport*> by_time;
  for (const RouteReport& rr : r.routes) by_time.push_back(&rr);
  std::sort(by_time.begin(), by_time.end(), [](const RouteReport* a, const RouteReport* b) {
    return a->time_share > b->time_share;
  });
  std::string heavy;
  for (size_t i = 0; i < by_time.size() && i < 3 && by_time[i]->time_share >= 0.1; ++i)
    heavy += Format("%s%s (%.0f%% of the time, %.0f ms each)", heavy.empty() ? "" : ", ",
                    by_time[i]->name.c_str(), by_time[i]->time_share * 100, by_time[i]->mean_ms);
  f.remedy = "add an instance before the next peak (see capacity and growth)";
  if (!heavy.empty()) f.remedy += ", or cut the time per request where it goes: " + heavy;
  f.impact = 3;
  f.likelihood = 3;
  return f;
}

// Analyze lists only the keys over their fair share.
bool Noisy(const Facts&) { return true; }
Finding NoisyFinding(const Facts& facts) {
  const NoisyClient& n = *facts.client;
  Finding f;
  f.kind = "noisy_client";
  f.route = "*";
  f.summary = Format("%s sent %.0f%% of all requests (%.1f req/s on average)", n.key.c_str(),
                     n.share * 100, n.rps);
  const char* key_kind = n.key.rfind("key:", 0) == 0    ? "\"header:X-Api-Key\""
                         : n.key.rfind("user:", 0) == 0 ? "\"header:X-User\""
                                                        : "client_ip";
  if (n.limited > 0) {
    f.summary += Format("; ficus refused %llu of its requests (rate or concurrency limit)",
                        static_cast<unsigned long long>(n.limited));
  }
  std::string routes;  // the routes that already limit it
  for (const std::string& r : n.limit_routes) routes += (routes.empty() ? "" : ", ") + r;
  const std::string in_place =
      Format("already limited at %s (burst %llu) on %s: %llu requests refused in the period",
             n.limit_spec.c_str(), static_cast<unsigned long long>(n.limit_burst), routes.c_str(),
             static_cast<unsigned long long>(n.limited));
  if (n.limit_rate > 0 && n.limit_rate <= n.suggested_rate) {
    // The limit in place is no looser than the one the report would suggest: nothing to add.
    f.remedy = in_place +
               "; the limit holds it back, keep it (lower it only if the other clients' "
               "latency still suffers)";
    f.snippet = Format(
        "# in place, nothing to add: rate_limit { key: %s, rate: %s, burst: %llu } on %s\n"
        "# %llu of its requests refused in the period\n",
        LimitKeyFor(n.key), n.limit_spec.c_str(), static_cast<unsigned long long>(n.limit_burst),
        routes.c_str(), static_cast<unsigned long long>(n.limited));
    f.impact = 2;
    f.likelihood = 1;  // limited already: the others are protected
    return f;          // in_ficus stays false: the snippet only documents config in place
  }
  if (n.limit_rate > 0) {
    f.remedy = in_place + Format(
                              ", yet it keeps an outsized share: lower the limit to %.0f req/s "
                              "(burst %.0f)",
                              n.suggested_rate, n.suggested_rate * 2);
    f.snippet = Format("# was %s (burst %llu)\nroutes:\n", n.limit_spec.c_str(),
                       static_cast<unsigned long long>(n.limit_burst));
    for (const std::string& r : n.limit_routes)
      f.snippet += Format("  - name: %s\n    rate_limit: { key: %s, rate: %.0f/s, burst: %.0f }\n",
                          r.c_str(), key_kind, n.suggested_rate, n.suggested_rate * 2);
  } else {
    f.remedy = Format(
        "rate-limit per client key at %.0f req/s (burst %.0f): the others keep their latency, "
        "the heavy client gets 429 with Retry-After",
        n.suggested_rate, n.suggested_rate * 2);
    f.snippet = Format(
        "routes:\n  - name: ROUTE   # each route it uses\n    rate_limit: { key: %s, rate: "
        "%.0f/s, burst: %.0f }\n",
        key_kind, n.suggested_rate, n.suggested_rate * 2);
  }
  f.in_ficus = true;
  f.impact = 2;
  f.likelihood = n.share > 0.4 ? 3 : 2;
  return f;
}

bool Shifted(const Facts& f) { return f.event->shifted; }
Finding ShiftedFinding(const Facts& facts) {
  const Correlation& c = *facts.event;
  Finding f;
  f.kind = "correlation";
  f.route = "*";
  f.summary = Format("after %s %s %s: p99 %.0f -> %.0f ms, errors %.2f%% -> %.2f%%",
                     c.event.kind.c_str(), c.event.service.c_str(), c.event.version.c_str(),
                     c.p99_before_ms, c.p99_after_ms, c.errors_before * 100, c.errors_after * 100);
  f.remedy = "compare the change with the previous version; roll back if it is the cause";
  f.impact = 2;
  f.likelihood = 3;
  return f;
}

constexpr FindingRule kRules[] = {
    {RuleId::kCache, Subject::kRoute, Cache, CacheFinding},
    {RuleId::kLatency, Subject::kRoute, Latency, LatencyFinding},
    {RuleId::kOffload, Subject::kRoute, Offload, OffloadFinding},
    {RuleId::kErrors, Subject::kRoute, Errors, ErrorsFinding},
    {RuleId::kRouteCapacity, Subject::kRoute, RouteCapacity, RouteCapacityFinding},
    {RuleId::kGrowth, Subject::kRoute, Growth, GrowthFinding},
    {RuleId::kMixCapacity, Subject::kMix, MixCapacity, MixCapacityFinding},
    {RuleId::kNoisyClient, Subject::kClient, Noisy, NoisyFinding},
    {RuleId::kCorrelation, Subject::kEvent, Shifted, ShiftedFinding},
    {RuleId::kQueueBacklog, Subject::kQueue, QueueBacklog, QueueBacklogFinding},  // queues.cc
};

}  // namespace

std::span<const FindingRule> FindingRules() { return kRules; }

void ApplyRules(Subject subject, const Facts& facts, std::vector<Finding>& out) {
  for (const FindingRule& rule : kRules) {
    if (rule.subject == subject && rule.applies(facts)) out.push_back(rule.build(facts));
  }
}

}  // namespace ficus::advisor::internal
