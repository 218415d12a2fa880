// The advisor's analysis on directly written telemetry (the real write path is covered by the
// telemetry tests and tests/integration/test_report.py): the shop's planted problems are all
// found with the right remedy, a healthy upstream raises nothing.
#include "advisor/advisor.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

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
         return RouteShape{100, 0, 5'000, 600};
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
