// Each finding rule alone, on facts written by hand: its trigger, and what it says.
#include "advisor/internal/rules.h"

#include <gtest/gtest.h>

#include "route_rules.h"

namespace ficus::advisor::internal {
namespace {

RouteReport Healthy() {
  RouteReport rr;
  rr.name = "catalog";
  rr.requests = 1000;
  rr.p50_ms = 5;
  rr.p90_ms = 10;
  rr.p99_ms = 20;
  rr.threshold_ms = 250;
  rr.share = 0.5;
  return rr;
}

// A client key with half of the requests, 40 req/s; the report would suggest 10 req/s.
NoisyClient Noisy(const char* key) {
  NoisyClient n;
  n.key = key;
  n.requests = 5000;
  n.share = 0.5;
  n.rps = 40;
  n.suggested_rate = 10;
  return n;
}

TEST(FindingRulesTest, TheTableHasEveryRuleOnceInListingOrder) {
  std::span<const FindingRule> rules = FindingRules();
  ASSERT_EQ(rules.size(), 10u);
  for (size_t i = 0; i < rules.size(); ++i) EXPECT_EQ(static_cast<size_t>(rules[i].id), i);
}

TEST(FindingRulesTest, AHealthyRouteRaisesNothing) { EXPECT_TRUE(OnRoute(Healthy()).empty()); }

TEST(FindingRulesTest, CacheOnlyWhenRepeatsAndLoad) {
  RouteReport rr = Healthy();
  rr.repeat_ratio = 0.97;
  rr.repeat_samples = 40;
  rr.peak_rps = 10;
  EXPECT_TRUE(OnRoute(rr, /*cacheable=*/true, /*worth_caching=*/false).empty());
  std::vector<Finding> f = OnRoute(rr, true, true);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "cache");
  EXPECT_NE(f[0].remedy.find("cache it for 30s"), std::string::npos) << f[0].remedy;
  EXPECT_NE(f[0].snippet.find("ttl: 30s, stale_while_revalidate: 60s"), std::string::npos);
  // Ranked by the origin time it saves, not by its share of the requests.
  EXPECT_EQ(f[0].likelihood, 1);  // a busy route with no share of the time
  rr.time_share = 0.4;
  EXPECT_EQ(OnRoute(rr, true, true)[0].likelihood, 3);
}

// A cache on a route whose answers cost nothing saves nothing: a 1 ms health check with a
// status-sized body is never worth a cache finding, however busy; a costly or large one is.
TEST(FindingRulesTest, WorthCachingNeedsOriginTimeOrABody) {
  RouteReport rr = Healthy();
  rr.share = 0.6;
  rr.time_share = 0.3;
  rr.peak_rps = 300;
  rr.mean_ms = 1;
  rr.mean_bytes_out = 20;
  EXPECT_FALSE(WorthCaching(rr));
  rr.mean_ms = 8;
  EXPECT_TRUE(WorthCaching(rr));
  rr.mean_ms = 1;
  rr.mean_bytes_out = 4000;
  EXPECT_TRUE(WorthCaching(rr));
  rr.share = rr.time_share = 0.01;  // and it must carry load
  EXPECT_FALSE(WorthCaching(rr));
}

// Shares are relative: on an idle origin a 3 ms route holds most of the time and still saves
// nothing. The cache must save absolute work: a quarter of a request in flight at peak (rate x
// time), or answers slow enough (20 ms) that a hit is felt.
TEST(FindingRulesTest, WorthCachingNeedsAbsoluteWorkNotOnlyAShare) {
  RouteReport rr = Healthy();
  rr.share = 0.85;
  rr.time_share = 0.9;
  rr.mean_ms = 3;
  rr.mean_bytes_out = 4000;
  rr.peak_rps = 40;  // 0.12 requests in flight
  EXPECT_FALSE(WorthCaching(rr));
  rr.peak_rps = 100;  // 0.3 in flight
  EXPECT_TRUE(WorthCaching(rr));
  rr.peak_rps = 2;
  rr.mean_ms = 25;  // rare but slow
  EXPECT_TRUE(WorthCaching(rr));
}

TEST(FindingRulesTest, LatencyOverTargetOrASlowRead) {
  RouteReport over = Healthy();
  over.p99_ms = 400;
  std::vector<Finding> f = OnRoute(over);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "trigger.p99");
  EXPECT_EQ(f[0].summary, "p99 400 ms over its 250 ms target (p50 5 ms)");
  EXPECT_EQ(f[0].likelihood, 3);

  RouteReport slow = Healthy();
  slow.p90_ms = kSlowMs;
  slow.p99_ms = 240;
  f = OnRoute(slow);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "slow");
  EXPECT_NE(f[0].snippet.find("cache: { ttl: 10s"), std::string::npos);
}

TEST(FindingRulesTest, ASlowWriteWithASmallAnswerIsOffloaded) {
  RouteReport rr = Healthy();
  rr.name = "signup";
  rr.reads = false;
  rr.p90_ms = 300;
  rr.p99_ms = 240;
  rr.mean_bytes_out = 100;
  std::vector<Finding> f = OnRoute(rr);
  ASSERT_EQ(f.size(), 1u);  // a slow write under its target: no latency finding
  EXPECT_EQ(f[0].kind, "offload");
  rr.p99_ms = 400;
  f = OnRoute(rr);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "trigger.p99");
  EXPECT_NE(f[0].snippet.find("offload: { queue: signup"), std::string::npos);
  EXPECT_EQ(f[1].kind, "offload");
  rr.mean_bytes_out = 100'000;  // a document, not an acknowledgement
  EXPECT_EQ(OnRoute(rr).size(), 1u);
}

TEST(FindingRulesTest, ErrorsOverOnePercentNameTheCluster) {
  RouteReport rr = Healthy();
  rr.errors = 10;  // exactly 1 %: not over
  EXPECT_TRUE(OnRoute(rr).empty());
  rr.errors = 50;
  rr.error_statuses = {{503, 50}};  // the retry goes on the cluster
  std::vector<Finding> f = OnRoute(rr);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].kind, "trigger.errors");
  EXPECT_EQ(f[0].summary,
            "5.0% of requests failed with 5xx (50 of 1000); the upstream answered 503");
  EXPECT_NE(f[0].snippet.find("name: shop"), std::string::npos);
  EXPECT_NE(f[0].snippet.find("concurrency: { max: 4"), std::string::npos) << f[0].snippet;
  EXPECT_EQ(f[0].snippet.find("circuit_breakers"), std::string::npos) << f[0].snippet;
  EXPECT_TRUE(f[0].in_ficus);
}

// Retries only for what the upstream answered and a retry can cure; errors that come at any
// load get no concurrency limit; the root cause is always named as needing a fix.
TEST(FindingRulesTest, ErrorsRemedyFollowsTheStatusesAndTheLoad) {
  RouteReport rr = Healthy();
  rr.errors = 50;
  rr.error_statuses = {{500, 40}};
  std::vector<Finding> f = OnRoute(rr);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].snippet.find("retry"), std::string::npos) << f[0].snippet;
  EXPECT_NE(f[0].remedy.find("no retry: the upstream answered 500"), std::string::npos);
  EXPECT_NE(f[0].remedy.find("root cause"), std::string::npos);
  EXPECT_NE(f[0].snippet.find("concurrency: {"), std::string::npos);
  EXPECT_NE(f[0].remedy.find("if the errors grow with concurrency"), std::string::npos);

  rr.error_statuses = {{503, 30}, {500, 10}};
  rr.errors_busy_over_quiet = 4;
  rr.load_varied = true;
  f = OnRoute(rr);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].snippet.find("on: [\"503\"]"), std::string::npos) << f[0].snippet;
  EXPECT_NE(f[0].remedy.find("errors grow with concurrency"), std::string::npos);
  EXPECT_NE(f[0].summary.find("4.0x higher when the route is busier"), std::string::npos);

  // Under 1 % of users' requests failed, but the step load's knee was set by errors.
  RouteReport few = Healthy();
  few.errors = 3;
  EXPECT_TRUE(OnRoute(few).empty());
  few.errors = 0;  // users have not met them yet: a latent risk
  few.capacity_rps = 60;
  few.assessed = "knee";
  few.assess_stop = "errors";
  f = OnRoute(few);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_NE(f[0].summary.find("the step load failed with errors past 60.0 req/s"),
            std::string::npos);
  EXPECT_NE(f[0].snippet.find("concurrency: {"), std::string::npos);
  EXPECT_EQ(f[0].likelihood, 2);

  rr.errors_busy_over_quiet = 1.0;  // as many errors when quiet as when busy: not a pool
  f = OnRoute(rr);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].snippet.find("concurrency:"), std::string::npos) << f[0].snippet;
  EXPECT_NE(f[0].remedy.find("a defect or a failing dependency"), std::string::npos);
  EXPECT_NE(f[0].remedy.find("root cause needs a fix"), std::string::npos);
}

TEST(FindingRulesTest, CapacityAndGrowth) {
  RouteReport rr = Healthy();
  rr.capacity_rps = 100;
  rr.assessed = "knee";
  rr.mean_ms = 40;
  rr.peak_rps = 70;  // exactly 70 %: not over
  EXPECT_TRUE(OnRoute(rr).empty());
  rr.peak_rps = 80;
  rr.growth = 0.6;
  std::vector<Finding> f = OnRoute(rr);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].kind, "trigger.capacity");
  EXPECT_EQ(f[0].summary,
            "peak 80.0 req/s is 80% of the measured knee 100.0 req/s; at the knee about 4 "
            "requests are in flight at once (Little's law: 100.0 req/s x 40 ms)");
  EXPECT_NE(f[0].remedy.find("more than 4 requests in flight"), std::string::npos) << f[0].remedy;
  rr.assessed = "lower_bound";  // the knee is further up: no trigger
  EXPECT_EQ(OnRoute(rr).size(), 1u);
  rr.assessed = "knee";
  EXPECT_EQ(f[1].kind, "trigger.growth");
  rr.requests = 4 * kMinRequests - 1;  // too few to call it growth
  EXPECT_EQ(OnRoute(rr).size(), 1u);
}

TEST(FindingRulesTest, MixCapacityNotFromALowerBound) {
  Report report;
  report.peak_rps = 90;
  report.capacity_rps = 100;
  std::vector<Finding> out;
  ApplyRules(Subject::kMix, Facts{.report = report, .mix_bounded = true}, out);
  EXPECT_TRUE(out.empty());
  ApplyRules(Subject::kMix, Facts{.report = report}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].route, "*");
  EXPECT_EQ(out[0].impact * out[0].likelihood, 9);
}

TEST(FindingRulesTest, NoisyClientGetsARateLimitOnItsKey) {
  Report report;
  NoisyClient n = Noisy("key:scraper");
  std::vector<Finding> out;
  ApplyRules(Subject::kClient, Facts{.report = report, .client = &n}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, "noisy_client");
  EXPECT_NE(out[0].snippet.find("key: \"header:X-Api-Key\", rate: 10/s, burst: 20"),
            std::string::npos)
      << out[0].snippet;
  EXPECT_EQ(out[0].likelihood, 3);
}

// A limit already in place that still lets the client take an outsized share is lowered on the
// routes that have it, not added again.
TEST(FindingRulesTest, NoisyClientOverALooserLimitGetsItLowered) {
  Report report;
  NoisyClient n = Noisy("key:scraper");
  n.limited = 120;
  n.limit_rate = 50;
  n.limit_spec = "50/1s";
  n.limit_burst = 100;
  n.limit_routes = {"catalog"};
  std::vector<Finding> out;
  ApplyRules(Subject::kClient, Facts{.report = report, .client = &n}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].remedy.find("already limited at 50/1s (burst 100) on catalog: 120 requests "
                               "refused in the period, yet it keeps an outsized share: lower the "
                               "limit to 10 req/s"),
            std::string::npos)
      << out[0].remedy;
  EXPECT_NE(out[0].snippet.find("  - name: catalog\n    rate_limit: { key: \"header:X-Api-Key\", "
                                "rate: 10/s, burst: 20 }"),
            std::string::npos)
      << out[0].snippet;
  EXPECT_TRUE(out[0].in_ficus);
}

TEST(FindingRulesTest, OnlyAShiftedEventIsAFinding) {
  Report report;
  Correlation c;
  c.event.kind = "deploy";
  c.event.service = "shop";
  c.event.version = "v2";
  c.p99_before_ms = 10;
  c.p99_after_ms = 80;
  std::vector<Finding> out;
  ApplyRules(Subject::kEvent, Facts{.report = report, .event = &c}, out);
  EXPECT_TRUE(out.empty());
  c.shifted = true;
  ApplyRules(Subject::kEvent, Facts{.report = report, .event = &c}, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].summary, "after deploy shop v2: p99 10 -> 80 ms, errors 0.00% -> 0.00%");
}

}  // namespace
}  // namespace ficus::advisor::internal
