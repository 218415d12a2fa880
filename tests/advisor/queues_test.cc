// The report's job-queue section and the noisy-client finding's limits already in place, on
// telemetry written directly (the write path is tests/telemetry's): a backlog that grows is a
// finding with the deliverers' remedy, one that keeps up is none; every format has the section;
// a client ficus already limits is told so instead of getting the same limit again.
#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "advisor/advisor.h"

namespace ficus::advisor {
namespace {

constexpr char kConfig[] = R"(
listeners: [{ name: public, listen: 127.0.0.1:8080 }]
clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]
queues:
  - { name: signup, concurrency: 4 }
  - { name: mail, concurrency: 2, rate: 10 }
routes:
  - name: catalog
    match: { path_prefix: /api/products }
    cluster: shop
    rate_limit: { key: "header:x-api-key", rate: 20/s, burst: 40 }
  - { name: cart, match: { path_prefix: /api/cart }, cluster: shop }
  - { name: signup, match: { path: /api/signup }, cluster: shop, offload: { queue: signup } }
  - { name: mail, match: { path: /api/mail }, cluster: shop, offload: { queue: mail } }
)";

constexpr int64_t kStart = 1'700'000'040'000;  // a minute start
constexpr int kMinutes = 10;

class QueuesReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("queues_report_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    telemetry::StoreOptions so;
    so.path = (dir_ / "ficus.db").string();
    so.durable = false;
    store_ = std::make_unique<telemetry::Store>(so);
    auto loaded = config::LoadString(kConfig, "shop.yaml");
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
    config_ = loaded.config;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // `per_min` jobs enqueued a minute on `queue`, `delivered` finished; the backlog follows.
  void WriteQueue(const std::string& queue, uint64_t per_min, uint64_t delivered,
                  uint64_t failed = 0) {
    std::vector<telemetry::QueueMinute> rows;
    int64_t depth = 5;
    for (int i = 0; i < kMinutes; ++i) {
      depth += static_cast<int64_t>(per_min) - static_cast<int64_t>(delivered + failed);
      depth = std::max<int64_t>(depth, 0);
      rows.push_back({kStart + i * 60'000, queue, per_min, delivered, failed, 0,
                      delivered + 3 * failed, depth, depth > 5 ? (i + 1) * 60'000 : 200, 0});
    }
    store_->WriteQueueMinutes(rows);
  }

  Report Run() {
    AnalyzeParams p;
    p.from_ms = kStart;
    p.to_ms = kStart + kMinutes * 60'000;
    p.period = "10m";
    return Analyze(config_.get(), *store_, p);
  }

  static const Finding* Find(const Report& r, std::string_view kind) {
    for (const auto& f : r.findings)
      if (f.kind == kind) return &f;
    return nullptr;
  }

  std::filesystem::path dir_;
  std::unique_ptr<telemetry::Store> store_;
  std::shared_ptr<const config::Config> config_;
};

TEST_F(QueuesReportTest, AGrowingBacklogIsAFindingWithMoreDeliverers) {
  WriteQueue("signup", 600, 300);  // 10 jobs/s in, 5 out
  Report r = Run();
  ASSERT_EQ(r.queues.size(), 1u);
  const QueueReport& q = r.queues[0];
  EXPECT_EQ(q.name, "signup");
  EXPECT_EQ(q.route, "signup");
  EXPECT_EQ(q.cluster, "shop");
  EXPECT_EQ(q.concurrency, 4u);
  EXPECT_NEAR(q.enqueue_rps, 10, 0.01);
  EXPECT_NEAR(q.delivery_rps, 5, 0.01);
  EXPECT_EQ(q.backlog_start, 5);
  EXPECT_EQ(q.backlog_end, 3005);
  EXPECT_EQ(q.oldest_age_ms, 600'000);
  EXPECT_TRUE(q.growing);
  const Finding* f = Find(r, "queue_backlog");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->route, "signup");
  EXPECT_NE(f->summary.find("10.0 jobs/s enqueued but 5.0 jobs/s delivered"), std::string::npos)
      << f->summary;
  EXPECT_NE(f->remedy.find("raise the queue's `concurrency` from 4 to 10"), std::string::npos)
      << f->remedy;
  EXPECT_NE(f->remedy.find("add capacity there"), std::string::npos) << f->remedy;
  EXPECT_EQ(f->snippet, "queues:\n  - name: signup\n    concurrency: 10\n");
  EXPECT_TRUE(f->in_ficus);
  // The snippet is config this ficus loads, merged into the running one.
  YAML::Node base = YAML::Load(kConfig);
  for (YAML::Node q : base["queues"])
    if (q["name"].as<std::string>() == "signup") q["concurrency"] = 10;
  auto loaded = config::LoadString(YAML::Dump(base), "merged.yaml");
  EXPECT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
}

TEST_F(QueuesReportTest, AQueueThatKeepsUpIsNoFinding) {
  WriteQueue("signup", 600, 600);
  Report r = Run();
  ASSERT_EQ(r.queues.size(), 1u);
  EXPECT_FALSE(r.queues[0].growing);
  EXPECT_EQ(r.queues[0].backlog_end, 5);
  EXPECT_EQ(Find(r, "queue_backlog"), nullptr);
}

TEST_F(QueuesReportTest, DeliveriesHeldAtTheQueuesRateGetTheRateRaised) {
  WriteQueue("mail", 1200, 600, 30);  // 20 jobs/s in, 10/s delivered: its rate, 10/s
  Report r = Run();
  const Finding* f = Find(r, "queue_backlog");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->remedy.find("held at the queue's rate (10/s)"), std::string::npos) << f->remedy;
  EXPECT_EQ(f->snippet, "queues:\n  - name: mail\n    rate: 24\n");
  // Failing deliveries are named too: 3 attempts for each failed job.
  EXPECT_EQ(r.queues[0].failed, 300u);
}

TEST_F(QueuesReportTest, EveryFormatHasTheQueueSection) {
  WriteQueue("signup", 600, 300);
  Report r = Run();
  const std::string text = FormatText(r);
  EXPECT_NE(text.find("Job queues (async offload)"), std::string::npos);
  EXPECT_NE(text.find("10.0 jobs/s in, 5.0 jobs/s delivered; backlog 5 -> 3005"), std::string::npos)
      << text;
  EXPECT_NE(text.find("[queue_backlog] signup"), std::string::npos);
  const std::string md = FormatMarkdown(r);
  EXPECT_NE(md.find("## Job queues"), std::string::npos);
  EXPECT_NE(md.find("| signup | 10.0 | 5.0 | 5 | 3005 |"), std::string::npos) << md;
  const std::string html = FormatHtml(r);
  EXPECT_NE(html.find("<section id=\"queues\">"), std::string::npos);
  EXPECT_NE(html.find("<b>no: the backlog grows</b>"), std::string::npos);
  const YAML::Node json = YAML::Load(FormatJson(r));  // JSON is YAML
  ASSERT_TRUE(json["queues"].IsSequence());
  EXPECT_EQ(json["queues"][0]["name"].as<std::string>(), "signup");
  EXPECT_EQ(json["queues"][0]["backlog_end"].as<int>(), 3005);
  EXPECT_TRUE(json["queues"][0]["growing"].as<bool>());
  // No queue data: no section in text, an empty list in JSON.
  Report none;
  EXPECT_EQ(FormatText(none).find("Job queues"), std::string::npos);
  EXPECT_EQ(YAML::Load(FormatJson(none))["queues"].size(), 0u);
}

// Route rows and heavy keys of one noisy client (100 req/s over the 10 minutes) among ten quiet
// ones.
void WriteNoisy(telemetry::Store& store, uint64_t limited) {
  std::vector<telemetry::Rollup> rows;
  telemetry::Rollup row;
  row.kind = telemetry::SeriesKind::kRoute;
  row.name = "catalog";
  row.ts_ms = kStart;
  row.requests = 60'000 + 10 * 180;
  row.latency.buckets[observe::Histogram::BucketFor(5000)] = row.requests;
  store.WriteRollups(telemetry::Resolution::k10s, {row});
  std::vector<telemetry::ClientKeyCount> keys{{kStart, "catalog", "key:scraper", 60'000}};
  for (int i = 0; i < 10; ++i)
    keys.push_back({kStart, "catalog", "key:web-" + std::to_string(i), 180});
  store.WriteClientKeys(keys);
  if (limited) store.WriteLimitedKeys({{kStart, "catalog", "key:scraper", limited}});
}

TEST_F(QueuesReportTest, ANoisyClientAlreadyLimitedIsToldSoNotLimitedAgain) {
  WriteNoisy(*store_, 40'000);
  Report r = Run();
  ASSERT_EQ(r.noisy.size(), 1u);
  const NoisyClient& n = r.noisy[0];
  EXPECT_EQ(n.key, "key:scraper");
  EXPECT_EQ(n.limited, 40'000u);
  EXPECT_EQ(n.limit_rate, 20);
  EXPECT_EQ(n.limit_spec, "20/1s");
  ASSERT_EQ(n.limit_routes.size(), 1u);
  const Finding* f = Find(r, "noisy_client");
  ASSERT_NE(f, nullptr);
  EXPECT_NE(f->summary.find("ficus refused 40000 of its requests"), std::string::npos)
      << f->summary;
  EXPECT_NE(
      f->remedy.find("already limited at 20/1s (burst 40) on catalog: 40000 requests refused"),
      std::string::npos)
      << f->remedy;
  EXPECT_EQ(f->snippet.find("rate_limit: {"), std::string::npos) << f->snippet;  // no new limit
  EXPECT_NE(f->snippet.find("# in place"), std::string::npos) << f->snippet;
  EXPECT_FALSE(f->in_ficus);  // nothing for `ficus prove` to apply
}

TEST_F(QueuesReportTest, ANoisyClientWithoutALimitGetsOne) {
  auto loaded = config::LoadString(
      R"(
listeners: [{ name: public, listen: 127.0.0.1:8080 }]
clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]
routes:
  - { name: catalog, match: { path_prefix: /api/products }, cluster: shop }
)",
      "plain.yaml");
  ASSERT_TRUE(loaded.config);
  config_ = loaded.config;
  WriteNoisy(*store_, 0);
  Report r = Run();
  ASSERT_EQ(r.noisy.size(), 1u);
  EXPECT_EQ(r.noisy[0].limited, 0u);
  EXPECT_EQ(r.noisy[0].limit_rate, 0);
  const Finding* f = Find(r, "noisy_client");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->summary.find("refused"), std::string::npos);
  EXPECT_NE(f->snippet.find("rate_limit: { key: \"header:X-Api-Key\""), std::string::npos);
  EXPECT_TRUE(f->in_ficus);
}

}  // namespace
}  // namespace ficus::advisor
