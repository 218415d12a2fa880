// The advisor's analysis on directly written telemetry (the real write path is covered by the
// telemetry tests and tests/integration/test_report.py): the shop's planted problems are all
// found with the right remedy, a healthy upstream raises nothing.
#include "advisor/advisor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "load/load.h"

namespace ficus::advisor {
namespace {

constexpr char kShopConfig[] = R"(
listeners: [{ name: public, listen: 127.0.0.1:8080 }]
clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]
routes:
  - { name: health, match: { path: /health }, cluster: shop }
  - { name: catalog, match: { path_prefix: /api/products, methods: [GET, HEAD] }, cluster: shop }
  - { name: cart, match: { path_prefix: /api/cart }, cluster: shop }
  - { name: checkout, match: { path: /api/checkout, methods: [POST] }, cluster: shop }
  - { name: signup, match: { path: /api/signup, methods: [POST] }, cluster: shop }
  - { name: reports, match: { path_prefix: /api/reports/ }, cluster: shop }
slos:
  - { name: storefront, routes: [catalog, cart, checkout], availability: 99.9%,
      latency: { threshold: 250ms, objective: 99% } }
  - { name: signup, routes: [signup], availability: 99.5%, latency: { threshold: 1s, objective: 99% } }
  - { name: reports, routes: [reports], availability: 99%, latency: { threshold: 1s, objective: 95% } }
)";

constexpr int64_t kStart = 1'700'000'000'000;  // aligned to 10 s
constexpr int kIntervals = 60;                 // 10 minutes of 10 s rows

struct RouteShape {
  uint64_t per_interval;
  uint64_t errors;
  uint64_t micros;  // every request takes this long
  uint64_t bytes_out;
};

class AdvisorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("advisor_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    telemetry::StoreOptions so;
    so.path = (dir_ / "ficus.db").string();
    so.durable = false;
    store_ = std::make_unique<telemetry::Store>(so);
    auto loaded = config::LoadString(kShopConfig, "shop.yaml");
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
    config_ = loaded.config;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // `shape(i)` for interval i of every route.
  void Write(const std::map<std::string, std::function<RouteShape(int)>>& routes) {
    std::vector<telemetry::Rollup> rows;
    for (int i = 0; i < kIntervals; ++i) {
      for (const auto& [name, shape_of] : routes) {
        RouteShape s = shape_of(i);
        telemetry::Rollup r;
        r.kind = telemetry::SeriesKind::kRoute;
        r.name = name;
        r.ts_ms = kStart + i * 10'000;
        r.requests = s.per_interval;
        r.errors = s.errors;
        r.bytes_out = s.bytes_out * s.per_interval;
        r.latency.buckets[observe::Histogram::BucketFor(s.micros)] = s.per_interval;
        for (uint64_t c = 0; c < 5; ++c) r.clients.AddHash((c + 1) * 0x9E3779B97F4A7C15ull);
        rows.push_back(r);
      }
    }
    store_->WriteRollups(telemetry::Resolution::k10s, rows);
    // And the 1 min rows the telemetry thread writes beside them (long SLO windows read them).
    std::map<std::pair<int64_t, std::string>, telemetry::Rollup> minutes;
    for (const auto& r : rows) {
      const int64_t m = r.ts_ms / 60'000 * 60'000;
      auto [it, fresh] = minutes.try_emplace({m, r.name}, r);
      if (!fresh) it->second.Merge(r);
      it->second.ts_ms = m;
    }
    std::vector<telemetry::Rollup> coarse;
    for (auto& [k, r] : minutes) coarse.push_back(r);
    store_->WriteRollups(telemetry::Resolution::k1m, coarse);
  }

  Report Run() {
    AnalyzeParams p;
    p.from_ms = kStart;
    p.to_ms = kStart + kIntervals * 10'000;
    p.period = "10m";
    return Analyze(config_.get(), *store_, p);
  }

  static const Finding* Find(const Report& r, std::string_view kind, std::string_view route) {
    for (const auto& f : r.findings)
      if (f.kind == kind && f.route == route) return &f;
    return nullptr;
  }

  std::filesystem::path dir_;
  std::unique_ptr<telemetry::Store> store_;
  std::shared_ptr<const config::Config> config_;
};

TEST_F(AdvisorTest, FindsEveryPlantedProblemOfTheShop) {
  Write({
      {"catalog",
       [](int) {
         return RouteShape{100, 0, 25'000, 600};
       }},
      {"cart",
       [](int) {
         return RouteShape{10, 0, 3'000, 200};
       }},
      {"checkout",
       [](int) {
         return RouteShape{6, 1, 50'000, 60};
       }},
      {"signup",
       [](int) {
         return RouteShape{3, 0, 300'000, 40};
       }},
      {"reports",
       [](int) {
         return RouteShape{2, 0, 600'000, 900};
       }},
      {"health",
       [](int) {
         return RouteShape{2, 0, 1'000, 20};
       }},
  });
  std::vector<telemetry::ErrorSample> samples;
  for (int i = 0; i < 5; ++i)
    samples.push_back({0, kStart + i * 1000, "checkout", 503, "id", "POST", "HTTP/1.1 503"});
  store_->AppendErrorSamples(samples);
  store_->WriteRepeats({{kStart, "catalog", 200, 190, 10},
                        {kStart, "reports", 20, 5, 15},
                        {kStart, "health", 40, 39, 0}});
  std::vector<telemetry::ClientKeyCount> keys;
  keys.push_back({kStart, "catalog", "key:partner-scraper-7", 3700});
  for (int i = 0; i < 24; ++i)
    keys.push_back({kStart, "catalog", "key:web-" + std::to_string(i), 180});
  store_->WriteClientKeys(keys);
  telemetry::Assessment a;
  a.ts_ms = kStart;
  a.target = "scenario:traffic.yaml";
  a.knee_rate = 15;
  store_->AppendAssessment(a);

  Report r = Run();
  ASSERT_EQ(r.routes.size(), 6u);
  EXPECT_EQ(r.routes[0].name, "catalog");

  const Finding* cache = Find(r, "cache", "catalog");
  ASSERT_NE(cache, nullptr);
  EXPECT_NE(cache->snippet.find("cache: { ttl: 30s"), std::string::npos) << cache->snippet;
  EXPECT_NE(cache->remedy.find("hit rate 95%"), std::string::npos) << cache->remedy;
  // The health check repeats its body too, but carries 1.6 % of the requests and next to no
  // time: caching it would save nothing.
  EXPECT_EQ(Find(r, "cache", "health"), nullptr);

  // 600 ms is within the reports SLO (1 s) but it is where the time goes.
  const Finding* report = Find(r, "slow", "reports");
  ASSERT_NE(report, nullptr);
  EXPECT_NE(report->remedy.find("precompute or cache"), std::string::npos);
  EXPECT_NE(report->snippet.find("cache:"), std::string::npos);
  EXPECT_EQ(Find(r, "cache", "reports"), nullptr);  // its body changes: not a plain cache

  const Finding* signup = Find(r, "offload", "signup");
  ASSERT_NE(signup, nullptr);
  EXPECT_NE(signup->snippet.find("offload: { queue: signup"), std::string::npos);
  EXPECT_EQ(Find(r, "trigger.p99", "signup"), nullptr);  // within its 1 s SLO

  const Finding* checkout = Find(r, "trigger.errors", "checkout");
  ASSERT_NE(checkout, nullptr);
  EXPECT_NE(checkout->snippet.find("concurrency: { max:"), std::string::npos);
  EXPECT_NE(checkout->snippet.find("\"503\""), std::string::npos);
  EXPECT_TRUE(checkout->in_ficus);
  EXPECT_EQ(Find(r, "offload", "checkout"), nullptr);  // 50 ms is not slow

  const Finding* noisy = Find(r, "noisy_client", "*");
  ASSERT_NE(noisy, nullptr);
  EXPECT_NE(noisy->summary.find("key:partner-scraper-7"), std::string::npos);
  EXPECT_NE(noisy->snippet.find("rate_limit: { key: \"header:X-Api-Key\""), std::string::npos);
  ASSERT_EQ(r.noisy.size(), 1u);
  EXPECT_NEAR(r.noisy[0].share, 3700.0 / 7380.0, 1e-9);

  EXPECT_NE(Find(r, "trigger.capacity", "*"), nullptr);  // peak 12.3 req/s of 15
  ASSERT_TRUE(r.capacity_rps);
  EXPECT_EQ(*r.capacity_rps, 15);
  ASSERT_EQ(r.growth.size(), 4u);
  EXPECT_EQ(r.growth[1].instances, 3);  // 24.6 / (15 * 0.7) = 2.34 -> 3
  EXPECT_EQ(r.growth[1].cost_month, 150);

  // The storefront SLO: checkout's 16.7 % errors burn the 99.9 % budget.
  ASSERT_FALSE(r.slos.empty());
  EXPECT_EQ(r.slos[0].id, "storefront/availability");
  EXPECT_LT(r.slos[0].budget_remaining, 0);
  EXPECT_EQ(r.slos[0].severity, "page");

  // Every rendering carries the findings.
  for (const std::string& out : {FormatText(r), FormatMarkdown(r), FormatJson(r), FormatHtml(r)}) {
    EXPECT_NE(out.find("partner-scraper-7"), std::string::npos);
    EXPECT_NE(out.find("catalog"), std::string::npos);
  }
  EXPECT_NE(FormatHtml(r).find("<svg id=\"chart-risk\""), std::string::npos);
}

TEST_F(AdvisorTest, HealthyUpstreamRaisesNoFalseAlarm) {
  auto fast = [](uint64_t n) { return [n](int) { return RouteShape{n, 0, 4'000, 300}; }; };
  Write({{"catalog", fast(40)},
         {"cart", fast(20)},
         {"checkout", fast(10)},
         {"signup", fast(5)},
         {"reports", fast(5)},
         {"health", fast(2)}});
  // Responses differ (personalised): nothing to cache.
  store_->WriteRepeats({{kStart, "catalog", 200, 10, 190}});
  std::vector<telemetry::ClientKeyCount> keys;
  for (int i = 0; i < 25; ++i)
    keys.push_back({kStart, "catalog", "key:k" + std::to_string(i), 200});
  store_->WriteClientKeys(keys);
  telemetry::Assessment a;
  a.target = "scenario:traffic.yaml";
  a.knee_rate = 2000;
  a.ts_ms = kStart;
  store_->AppendAssessment(a);
  Report r = Run();
  EXPECT_TRUE(r.findings.empty()) << r.findings[0].kind << " " << r.findings[0].summary;
  EXPECT_TRUE(r.noisy.empty());
  for (const auto& s : r.slos) EXPECT_EQ(s.severity, "ok") << s.id;
  EXPECT_NE(FormatText(r).find("none: no trigger point crossed"), std::string::npos);
  EXPECT_EQ(r.growth[3].instances, 1);  // 100 x 8.2 req/s at 70 % of 2000
}

TEST_F(AdvisorTest, CorrelatesALatencyShiftWithADeploy) {
  Write({{"catalog", [](int i) { return RouteShape{40, 0, i < 30 ? 4'000u : 80'000u, 300}; }}});
  telemetry::Event e;
  e.ts_ms = kStart + 30 * 10'000;
  e.kind = "deploy";
  e.service = "shop";
  e.version = "v2";
  store_->AppendEvent(e);
  Report r = Run();
  ASSERT_EQ(r.correlations.size(), 1u);
  EXPECT_TRUE(r.correlations[0].shifted);
  EXPECT_NE(Find(r, "correlation", "*"), nullptr);
}

TEST_F(AdvisorTest, GrowthAndRouteCapacityTriggers) {
  Write({{"cart", [](int i) { return RouteShape{i < 30 ? 10u : 30u, 0, 3'000, 100}; }}});
  telemetry::Assessment a;
  a.target = "route:cart";
  a.knee_rate = 4;  // peak 3 req/s is 75 % of it
  store_->AppendAssessment(a);
  Report r = Run();
  EXPECT_NE(Find(r, "trigger.growth", "cart"), nullptr);
  EXPECT_NE(Find(r, "trigger.capacity", "cart"), nullptr);
}

// ficus's own load (rows of the synthetic series) is taken out of every users' figure: a
// client with 60 % of the real traffic stays a noisy client however much assess sent, the
// health check the step load hammered is not the busiest route, and the peak is the users'.
TEST_F(AdvisorTest, OwnLoadIsKeptOutOfUsersFigures) {
  Write({{"catalog",
          [](int) {
            return RouteShape{20, 0, 20'000, 5000};
          }},
         {"health", [](int i) {
            return RouteShape{i == 7 ? 5'002u : 2u, 0, 1'000, 20};
          }}});
  // 5,000 assess requests on health in interval 7, 1 ms each, and 30 per interval on catalog.
  std::vector<telemetry::Rollup> syn;
  for (int i = 0; i < kIntervals; ++i) {
    telemetry::Rollup s;
    s.kind = telemetry::SeriesKind::kSynthetic;
    s.name = i == 7 ? "health" : "catalog";
    s.ts_ms = kStart + i * 10'000;
    s.requests = i == 7 ? 5'000 : 0;
    s.latency.buckets[observe::Histogram::BucketFor(1'000)] = s.requests;
    if (s.requests) syn.push_back(s);
  }
  store_->WriteRollups(telemetry::Resolution::k10s, syn);
  std::vector<telemetry::ClientKeyCount> keys;
  keys.push_back({kStart, "catalog", "key:scraper", 720});  // 60 % of 1,200 catalog requests
  for (int i = 0; i < 10; ++i) keys.push_back({kStart, "catalog", "key:u" + std::to_string(i), 48});
  store_->WriteClientKeys(keys);
  Report r = Run();
  ASSERT_EQ(r.routes.size(), 2u);
  EXPECT_EQ(r.routes[0].name, "catalog");
  EXPECT_EQ(r.routes[1].requests, 120u);  // health: 2 per interval
  EXPECT_EQ(r.requests, 1'320u);
  EXPECT_NEAR(r.peak_rps, 2.2, 1e-9);  // not the 500 req/s of the step load
  EXPECT_EQ(r.synthetic_requests, 5'000u);
  ASSERT_EQ(r.synthetic.size(), 1u);
  EXPECT_EQ(r.synthetic[0].route, "health");
  ASSERT_EQ(r.noisy.size(), 1u);
  EXPECT_EQ(r.noisy[0].key, "key:scraper");
  for (const std::string& out : {FormatText(r), FormatMarkdown(r), FormatHtml(r)})
    EXPECT_NE(out.find("own load (assess, scenario assessments"), std::string::npos) << out;
  EXPECT_NE(FormatJson(r).find("\"synthetic_requests\":5000"), std::string::npos);
}

// Caching saves the origin's time: a 1 ms health check with a tiny body is no finding however
// busy and repetitive it is; a costly route with the same share is.
TEST_F(AdvisorTest, CacheFindingNeedsOriginTimeToSave) {
  Write({{"health",
          [](int) {
            return RouteShape{200, 0, 1'000, 20};
          }},
         {"catalog",
          [](int) {
            return RouteShape{100, 0, 30'000, 8'000};
          }},
         {"cart", [](int) {
            return RouteShape{100, 0, 30'000, 200};
          }}});
  store_->WriteRepeats({{kStart, "health", 400, 400, 0}, {kStart, "catalog", 200, 200, 0}});
  Report r = Run();
  EXPECT_EQ(Find(r, "cache", "health"), nullptr);
  const Finding* catalog = Find(r, "cache", "catalog");
  ASSERT_NE(catalog, nullptr);
  EXPECT_EQ(catalog->likelihood, 3);  // half of all the time answering
}

// A step load that stopped by its envelope measured a lower bound: shown as such, the cost
// forecast says "at most", and it raises no capacity trigger.
TEST_F(AdvisorTest, LowerBoundCapacityIsMarkedAndNotATrigger) {
  Write({{"cart", [](int) { return RouteShape{40, 0, 3'000, 100}; }}});
  telemetry::Assessment a;
  a.target = "route:cart";
  a.knee_rate = 5;  // peak 4 req/s is 80 % of it, but every step passed
  a.stop_reason = "envelope";
  a.steps = 5;
  a.max_rate = 5;
  store_->AppendAssessment(a);
  Report r = Run();
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].assessed, "lower_bound");
  EXPECT_EQ(CapacityText(r.routes[0]), "≥ 5.0");
  EXPECT_TRUE(r.capacity_lower_bound);
  EXPECT_TRUE(r.growth[0].instances_at_most);
  EXPECT_EQ(Find(r, "trigger.capacity", "cart"), nullptr);
  EXPECT_EQ(Find(r, "trigger.capacity", "*"), nullptr);
  EXPECT_NE(FormatText(r).find("≥ 5.0"), std::string::npos);
  EXPECT_NE(FormatText(r).find("≤ 2 instance"), std::string::npos) << FormatText(r);
  EXPECT_NE(FormatMarkdown(r).find("a lower bound"), std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"instances_at_most\":true"), std::string::npos);
}

// Peak near a real knee: the finding gives the concurrency the knee implies (Little's law) and
// names where the time goes.
TEST_F(AdvisorTest, CapacityFindingNamesConcurrencyAndWhereTheTimeGoes) {
  Write({{"cart",
          [](int) {
            return RouteShape{50, 0, 3'000, 100};
          }},
         {"reports", [](int) {
            return RouteShape{30, 0, 200'000, 900};
          }}});
  telemetry::Assessment a;
  a.target = "scenario:mix.yaml";
  a.knee_rate = 10;  // peak 8 req/s is 80 % of it
  a.stop_reason = "latency";
  store_->AppendAssessment(a);
  Report r = Run();
  const Finding* f = Find(r, "trigger.capacity", "*");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->summary.find("Little's law"), std::string::npos) << f->summary;
  // Mean time per request ~ (50 x 3 ms + 30 x 200 ms) / 80 = 77 ms: ~1 request in flight at 10/s.
  EXPECT_NE(f->summary.find("requests are in flight"), std::string::npos);
  EXPECT_NE(f->remedy.find("reports ("), std::string::npos) << f->remedy;
  EXPECT_EQ(f->remedy.find("cart ("), std::string::npos) << f->remedy;
}

// How an assessment ended shows in the table: a failure at the first rate, a route that
// answered 4xx, a route assess could not build a request for. None gives a capacity figure.
TEST_F(AdvisorTest, FailedNotAssessedAndSkippedRoutesAreShownAsSuch) {
  Write({{"cart",
          [](int) {
            return RouteShape{50, 0, 3'000, 100};
          }},
         {"catalog",
          [](int) {
            return RouteShape{50, 0, 3'000, 100};
          }},
         {"reports", [](int) {
            return RouteShape{50, 0, 3'000, 100};
          }}});
  telemetry::Assessment a;
  a.target = "route:cart";
  a.stop_reason = "latency";
  a.steps = 1;
  a.detail =
      R"([{"rate":20.00,"achieved":19.90,"p99_ms":900.000,"error_ratio":0.00000,"requests":100,"ok":false}])";
  store_->AppendAssessment(a);
  a.target = "route:catalog";
  a.stop_reason = "not_assessed";
  store_->AppendAssessment(a);
  a.target = "route:reports";
  a.stop_reason = "skipped";
  a.detail = "[]";
  store_->AppendAssessment(a);
  Report r = Run();
  std::map<std::string, std::string> text;
  for (const auto& rr : r.routes) text[rr.name] = CapacityText(rr);
  EXPECT_EQ(text["cart"], "< 20.0 (failed at its first rate)");
  EXPECT_EQ(text["catalog"], "not assessed (mostly 4xx)");
  EXPECT_EQ(text["reports"], "skipped (regex or header match)");
  EXPECT_FALSE(r.capacity_rps);
  for (const std::string& out : {FormatText(r), FormatMarkdown(r), FormatHtml(r)}) {
    EXPECT_NE(out.find("not assessed"), std::string::npos);
    EXPECT_NE(out.find("skipped"), std::string::npos);
    EXPECT_NE(out.find("failed at its first rate"), std::string::npos);
  }
}

// Errors that rise in the busier intervals get the route's concurrency limit; errors at the
// same ratio at any load are a defect: no limit, the root cause named.
TEST_F(AdvisorTest, ErrorsThatGrowWithLoadAreToldFromErrorsAtAnyLoad) {
  Write({{"checkout", [](int i) {
            return i % 2 ? RouteShape{40, 8, 50'000, 60} : RouteShape{10, 0, 50'000, 60};
          }}});
  Report r = Run();
  const Finding* grows = Find(r, "trigger.errors", "checkout");
  ASSERT_NE(grows, nullptr);
  EXPECT_NE(grows->snippet.find("concurrency: {"), std::string::npos);
  EXPECT_NE(grows->remedy.find("errors grow with concurrency"), std::string::npos) << grows->remedy;
}

TEST_F(AdvisorTest, ErrorsAtAnyLoadGetNoConcurrencyLimit) {
  Write({{"checkout", [](int i) {
            return i % 2 ? RouteShape{40, 2, 50'000, 60} : RouteShape{10, 1, 50'000, 60};
          }}});
  Report r = Run();
  const Finding* flat = Find(r, "trigger.errors", "checkout");
  ASSERT_NE(flat, nullptr);
  EXPECT_EQ(flat->snippet.find("concurrency:"), std::string::npos) << flat->snippet;
  EXPECT_NE(flat->remedy.find("a defect or a failing dependency"), std::string::npos);
}

// A period that starts inside a rollup interval counts that interval (rows are stamped with
// their start): the first bucket is not dropped.
TEST_F(AdvisorTest, ThePeriodsFirstIntervalIsCounted) {
  Write({{"cart", [](int) { return RouteShape{10, 0, 3'000, 100}; }}});
  AnalyzeParams p;
  p.from_ms = kStart + 4'000;
  p.to_ms = kStart + kIntervals * 10'000;
  Report r = Analyze(config_.get(), *store_, p);
  EXPECT_EQ(r.requests, 10u * kIntervals);
  EXPECT_EQ(r.from_ms, kStart);
}

TEST(ParseReportTimeTest, AgoAbsoluteAndUnix) {
  const int64_t now = 1'764'882'000'000;  // 2025-12-04T21:00:00Z
  std::string why;
  EXPECT_EQ(ParseReportTime("now", now, &why), now);
  EXPECT_EQ(ParseReportTime("2h", now, &why), now - 7'200'000);
  EXPECT_EQ(ParseReportTime("-90m", now, &why), now - 5'400'000);
  EXPECT_EQ(ParseReportTime("now-1d", now, &why), now - 86'400'000);
  EXPECT_EQ(ParseReportTime("2025-12-04T21:00:00Z", now, &why), now);
  EXPECT_EQ(ParseReportTime("2025-12-04T20:30Z", now, &why), now - 1'800'000);
  EXPECT_EQ(ParseReportTime("2025-12-04 21:00:00", now, &why), now);
  EXPECT_EQ(ParseReportTime("2025-12-04", now, &why), now - 21 * 3'600'000LL);
  EXPECT_EQ(ParseReportTime("@1764882000", now, &why), now);
  for (const char* bad : {"", "yesterday", "2025-13-01", "2025-12-04T25:00Z", "@x", "2h30"}) {
    EXPECT_FALSE(ParseReportTime(bad, now, &why)) << bad;
    EXPECT_FALSE(why.empty());
  }
}

TEST(FindKneeTest, HighestPassingStepBeforeTheFirstFailure) {
  std::vector<Step> steps = {
      {10, 10, 5, 0, 100, true}, {20, 20, 8, 0.001, 200, true}, {30, 29, 400, 0.0, 300, false}};
  Knee k = FindKnee(steps, 250, false);
  EXPECT_EQ(k.rate, 20);
  EXPECT_EQ(k.p99_ms, 8);
  EXPECT_EQ(k.stop_reason, "latency");
  steps[2] = {30, 29, 20, 0.05, 300, false};
  EXPECT_EQ(FindKnee(steps, 250, false).stop_reason, "errors");
  steps.pop_back();
  EXPECT_EQ(FindKnee(steps, 250, false).stop_reason, "envelope");
  EXPECT_EQ(FindKnee(steps, 250, true).stop_reason, "duration");
  EXPECT_EQ(FindKnee({{10, 10, 900, 0, 10, false}}, 250, false).rate, 0);
}

TEST(RequestForTest, PathAndMethodFromTheMatch) {
  auto loaded = config::LoadString(kShopConfig, "shop.yaml");
  ASSERT_TRUE(loaded.config);
  const auto& routes = loaded.config->routes;
  auto catalog = RequestFor(routes[1]);
  ASSERT_TRUE(catalog);
  EXPECT_EQ(catalog->method, "GET");
  EXPECT_EQ(catalog->path, "/api/products");
  auto signup = RequestFor(routes[4]);
  ASSERT_TRUE(signup);
  EXPECT_EQ(signup->method, "POST");
  EXPECT_EQ(signup->body, "{}");
  EXPECT_EQ(ThresholdMsFor(*loaded.config, "signup", 500), 1000);
  EXPECT_EQ(ThresholdMsFor(*loaded.config, "health", 500), 500);
}

// Assess sends what the route answered users: the access log's most frequent 2xx/3xx request of
// the route, reads first; not its 4xx, nor another route's.
TEST(ObservedRequestTest, TheRoutesAnsweredRequestFromTheAccessLog) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("observed_" + std::to_string(::getpid()) + ".log"))
          .string();
  {
    std::ofstream out(path);
    auto line = [&](const char* route, const char* method, const char* p, int status) {
      out << "{\"time\":\"x\",\"method\":\"" << method << "\",\"path\":\"" << p << "\",\"route\":\""
          << route << "\",\"status\":" << status << "}\n";
    };
    for (int i = 0; i < 50; ++i) line("catalog", "GET", "/api/products", 404);  // the bare prefix
    for (int i = 0; i < 5; ++i) line("catalog", "GET", "/api/products/7", 200);
    for (int i = 0; i < 3; ++i) line("catalog", "GET", "/api/products/9", 200);
    for (int i = 0; i < 9; ++i) line("catalog", "POST", "/api/products/7", 201);
    for (int i = 0; i < 20; ++i) line("cart", "GET", "/api/cart", 200);
    out << "not json\n";
  }
  auto catalog = ObservedRequest(path, "catalog");
  ASSERT_TRUE(catalog);
  EXPECT_EQ(catalog->method, "GET");
  EXPECT_EQ(catalog->path, "/api/products/7");
  EXPECT_FALSE(ObservedRequest(path, "signup"));
  EXPECT_FALSE(ObservedRequest(path + ".missing", "catalog"));
  std::filesystem::remove(path);
}

// With a `record:` capture, assess sends the route's recorded request with its query string
// (the access log has none): the most frequent read whose path the log saw answered, never a
// request with a redacted credential or a truncated body.
TEST(CapturedRequestTest, TheRoutesRecordedRequestWithItsQueryString) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string tag = std::to_string(::getpid());
  const std::string capture = dir + "/captured_" + tag + ".jsonl";
  const std::string log = dir + "/captured_" + tag + ".log";
  {
    std::ofstream out(capture);
    auto line = [&](const char* route, const char* method, const char* target,
                    const char* extra = "") {
      out << "{\"t\":1.5,\"route\":\"" << route << "\",\"method\":\"" << method
          << "\",\"target\":\"" << target
          << "\",\"headers\":[[\"Host\",\"shop\"],[\"content-type\",\"text/csv\"]]" << extra
          << ",\"body_bytes\":0,\"truncated\":false}\n";
    };
    for (int i = 0; i < 9; ++i) line("search", "GET", "/api/search?q=REDACTED");
    for (int i = 0; i < 7; ++i) line("search", "GET", "/api/search?q=shoes&page=2");
    for (int i = 0; i < 3; ++i) line("search", "GET", "/api/search?q=hats");
    for (int i = 0; i < 20; ++i) line("search", "GET", "/api/nothing?q=1");  // 404s in the log
    for (int i = 0; i < 4; ++i) line("upload", "POST", "/api/upload?x=1", ",\"body\":\"a,b\"");
    out << "{\"t\":2,\"route\":\"upload\",\"method\":\"POST\",\"target\":\"/api/upload\","
           "\"headers\":[],\"body\":\"cut\",\"body_bytes\":9000,\"truncated\":true}\n";
    out << "not json\n";
  }
  {
    std::ofstream out(log);
    out << "{\"method\":\"GET\",\"path\":\"/api/search\",\"route\":\"search\",\"status\":200}\n"
        << "{\"method\":\"GET\",\"path\":\"/api/nothing\",\"route\":\"search\",\"status\":404}\n";
  }
  auto search = CapturedRequest(capture, "search", log);
  ASSERT_TRUE(search);
  EXPECT_EQ(search->method, "GET");
  EXPECT_EQ(search->path, "/api/search?q=shoes&page=2");
  // Without an access log: the most frequent recorded read, whatever it was answered.
  EXPECT_EQ(CapturedRequest(capture, "search", "")->path, "/api/nothing?q=1");
  auto upload = CapturedRequest(capture, "upload", "");
  ASSERT_TRUE(upload);
  EXPECT_EQ(upload->method, "POST");
  EXPECT_EQ(upload->path, "/api/upload?x=1");
  EXPECT_EQ(upload->body, "a,b");
  EXPECT_EQ(upload->content_type, "text/csv");
  EXPECT_FALSE(CapturedRequest(capture, "cart", ""));
  EXPECT_FALSE(CapturedRequest(capture + ".missing", "search", ""));
  std::filesystem::remove(capture);
  std::filesystem::remove(log);
}

// The recorded mix: every distinct request the log saw answered, weighted by how often it came,
// the most frequent first and at most `max_requests`; as a scenario `ficus load` accepts, with
// recorded "{{" sent as text.
TEST(CapturedMixTest, TheRoutesRecordedRequestsWeightedAndBounded) {
  const std::string dir = std::filesystem::temp_directory_path().string();
  const std::string tag = std::to_string(::getpid());
  const std::string capture = dir + "/mix_" + tag + ".jsonl";
  const std::string log = dir + "/mix_" + tag + ".log";
  const std::string scenario = dir + "/mix_" + tag + ".yaml";
  {
    std::ofstream out(capture);
    auto line = [&](const char* method, const char* target, const char* extra = "") {
      out << "{\"t\":1.5,\"route\":\"search\",\"method\":\"" << method << "\",\"target\":\""
          << target << "\",\"headers\":[[\"Content-Type\",\"text/plain\"]]" << extra
          << ",\"body_bytes\":0,\"truncated\":false}\n";
    };
    for (int i = 0; i < 7; ++i) line("GET", "/api/search?q=shoes");
    for (int i = 0; i < 3; ++i) line("GET", "/api/search?q=hats");
    for (int i = 0; i < 2; ++i) line("POST", "/api/search?q={{x}}", ",\"body\":\"q {{y}}\"");
    for (int i = 0; i < 20; ++i) line("GET", "/api/nothing");  // 404s in the log
  }
  {
    std::ofstream out(log);
    out << "{\"method\":\"GET\",\"path\":\"/api/search\",\"route\":\"search\",\"status\":200}\n"
        << "{\"method\":\"POST\",\"path\":\"/api/search\",\"route\":\"search\",\"status\":201}\n"
        << "{\"method\":\"GET\",\"path\":\"/api/nothing\",\"route\":\"search\",\"status\":404}\n";
  }
  std::vector<WeightedRequest> mix = CapturedMix(capture, "search", log);
  ASSERT_EQ(mix.size(), 3u);
  EXPECT_EQ(mix[0].request.path, "/api/search?q=shoes");
  EXPECT_EQ(mix[0].count, 7u);
  EXPECT_EQ(mix[1].request.path, "/api/search?q=hats");
  EXPECT_EQ(mix[1].count, 3u);
  EXPECT_EQ(mix[2].request.method, "POST");
  EXPECT_EQ(mix[2].request.body, "q {{y}}");
  EXPECT_EQ(mix[2].count, 2u);
  EXPECT_EQ(CapturedMix(capture, "search", log, 2).size(), 2u);
  EXPECT_EQ(CapturedMix(capture, "search", "").front().request.path, "/api/nothing");
  EXPECT_TRUE(CapturedMix(capture + ".missing", "search", "").empty());

  {
    std::ofstream out(scenario);
    out << MixScenario(mix, {"X-Api-Key: ficus-assess"});
  }
  load::Options o;
  o.url = scenario;
  o.target = "http://127.0.0.1:9";
  o.rate = 10;
  o.quiet = true;
  Outcome<load::Plan> plan = load::PlanFrom(o);
  ASSERT_TRUE(plan) << plan.message();
  const std::string text = MixScenario(mix, {"X-Api-Key: ficus-assess"});
  EXPECT_NE(text.find("\"weight\": 7"), std::string::npos) << text;
  EXPECT_NE(text.find("\"path\": \"/api/search?q=\\\\{{x}}\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"X-Api-Key\": \"ficus-assess\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"Content-Type\": \"text/plain\""), std::string::npos) << text;
  std::filesystem::remove(capture);
  std::filesystem::remove(log);
  std::filesystem::remove(scenario);
}

TEST(ParsePriceTest, MonthAndHour) {
  EXPECT_EQ(ParsePrice("50/month"), 50);
  EXPECT_EQ(ParsePrice("50"), 50);
  EXPECT_NEAR(*ParsePrice("0.1/hour"), 73, 1e-9);
  EXPECT_FALSE(ParsePrice("x"));
  EXPECT_FALSE(ParsePrice("5/week"));
  EXPECT_FALSE(ParsePrice("-1"));
}

}  // namespace
}  // namespace ficus::advisor
