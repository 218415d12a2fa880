// The report's database section: the store's pg minute rows add up, and the findings fire on an
// N+1 route, a route that waits on the database and a saturated pool, and never on a healthy
// application; every format has the section.
#include "advisor/internal/section_db.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "advisor/advisor.h"

namespace ficus::advisor {
namespace {

constexpr int64_t kMinute = 1'700'000'040'000 / 60'000 * 60'000;

class SectionDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/section_db_test_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    telemetry::StoreOptions so;
    so.path = dir_ + "/ficus.db";
    so.durable = false;
    store_ = std::make_unique<telemetry::Store>(so);
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  Report Analyze() {
    Report r;
    internal::AnalyzeDatabase(*store_, kMinute, kMinute + 10 * 60'000, r);
    return r;
  }
  static telemetry::DbQuery Query(int64_t ts, uint64_t fp, const char* text, uint64_t calls,
                                  uint64_t total_us) {
    telemetry::DbQuery q;
    q.ts_ms = ts;
    q.fingerprint = fp;
    q.text = text;
    q.calls = calls;
    q.total_us = total_us;
    q.latency.buckets[40] = calls;
    return q;
  }
  // A route's minute: `requests` requests each running `per` queries taking `db_us` in all.
  static telemetry::DbRoute Route(int64_t ts, const char* name, uint64_t requests, uint64_t per,
                                  uint64_t db_us, uint64_t request_us) {
    telemetry::DbRoute r;
    r.ts_ms = ts;
    r.route = name;
    r.requests = requests;
    r.with_queries = requests;
    r.queries = requests * per;
    r.db_us = db_us;
    r.request_us = request_us;
    size_t b = 0;
    while (b < telemetry::kQueriesPerRequest.size() && telemetry::kQueriesPerRequest[b] < per) ++b;
    r.queries_per_request[b] = requests;
    return r;
  }
  std::string dir_;
  std::unique_ptr<telemetry::Store> store_;
};

size_t CountKind(const Report& r, const std::string& kind) {
  size_t n = 0;
  for (const Finding& f : r.findings) n += f.kind == kind;
  return n;
}

TEST_F(SectionDbTest, HealthyApplicationHasNoFinding) {
  telemetry::DbRollup rows;
  rows.queries.push_back(Query(kMinute, 1, "select * from items where id = ?", 400, 200'000));
  rows.routes.push_back(Route(kMinute, "catalog", 200, 2, 200'000, 2'000'000));
  telemetry::DbPool p;
  p.ts_ms = kMinute;
  p.pool = "shop/app";
  p.pool_size = 10;
  p.peak_open = 3;
  p.waits = 2;
  p.wait_us = 2'000;  // 1 ms each: no saturation
  rows.pools.push_back(p);
  store_->WriteDb(rows);
  const Report r = Analyze();
  ASSERT_EQ(r.database.routes.size(), 1u);
  EXPECT_DOUBLE_EQ(r.database.routes[0].queries_per_request, 2);
  EXPECT_NEAR(r.database.routes[0].db_share, 0.1, 1e-9);
  EXPECT_EQ(r.database.top.size(), 1u);
  EXPECT_EQ(CountKind(r, "db.n_plus_one"), 0u);
  EXPECT_EQ(CountKind(r, "db.share"), 0u);
  EXPECT_EQ(CountKind(r, "db.pool"), 0u);
}

TEST_F(SectionDbTest, NPlusOneNamesRouteAndFingerprint) {
  telemetry::DbRollup rows;
  rows.queries.push_back(
      Query(kMinute, 0xabc, "select name from items where id = ?", 1200, 900'000));
  rows.routes.push_back(Route(kMinute, "orders", 100, 12, 900'000, 3'000'000));
  telemetry::DbRepeat rep;
  rep.ts_ms = kMinute;
  rep.route = "orders";
  rep.fingerprint = 0xabc;
  rep.text = "select name from items where id = ?";
  rep.requests = 60;
  rep.repeats = 600;
  rep.max_repeats = 12;
  rows.repeats.push_back(rep);
  store_->WriteDb(rows);
  rep.ts_ms = kMinute + 60'000;  // a second minute adds up, the maximum stays a maximum
  rep.requests = 40;
  rep.repeats = 400;
  rep.max_repeats = 30;
  store_->WriteDb(
      telemetry::DbRollup{{}, {}, {Route(kMinute + 60'000, "orders", 100, 12, 1, 1)}, {rep}});
  const Report r = Analyze();
  ASSERT_EQ(r.database.n_plus_one.size(), 1u);
  const auto& n = r.database.n_plus_one[0];
  EXPECT_EQ(n.requests, 100u);
  EXPECT_EQ(n.of_requests, 200u);
  EXPECT_EQ(n.max_repeats, 30u);
  EXPECT_DOUBLE_EQ(n.mean_repeats, 10);
  ASSERT_EQ(CountKind(r, "db.n_plus_one"), 1u);
  for (const Finding& f : r.findings) {
    if (f.kind != "db.n_plus_one") continue;
    EXPECT_EQ(f.route, "orders");
    EXPECT_NE(f.summary.find("0000000000000abc"), std::string::npos);
    EXPECT_NE(f.remedy.find("batch query 0000000000000abc on route orders"), std::string::npos);
    EXPECT_NE(f.remedy.find("eager-load"), std::string::npos);
  }
  // A rare repeat (2 of 200 requests) is no finding.
  rep.ts_ms = kMinute + 120'000;
  rep.route = "search";
  rep.requests = 2;
  store_->WriteDb(
      telemetry::DbRollup{{}, {}, {Route(kMinute + 120'000, "search", 200, 1, 1, 1)}, {rep}});
  EXPECT_EQ(CountKind(Analyze(), "db.n_plus_one"), 1u);
}

TEST_F(SectionDbTest, DatabaseShareAndPoolSaturationFire) {
  telemetry::DbRollup rows;
  rows.routes.push_back(Route(kMinute, "report", 50, 3, 1'800'000, 2'000'000));
  telemetry::DbPool p;
  p.ts_ms = kMinute;
  p.pool = "shop/app";
  p.pool_size = 2;
  p.peak_open = 2;
  p.peak_waiting = 7;
  p.waits = 30;
  p.wait_timeouts = 4;
  p.wait_us = 3'000'000;
  rows.pools.push_back(p);
  store_->WriteDb(rows);
  const Report r = Analyze();
  EXPECT_EQ(CountKind(r, "db.share"), 1u);
  ASSERT_EQ(CountKind(r, "db.pool"), 1u);
  ASSERT_FALSE(r.findings.empty());
  EXPECT_EQ(r.findings[0].kind, "db.pool");  // timeouts: the most severe
  EXPECT_NE(r.findings[0].snippet.find("pool_size: 4"), std::string::npos);
  EXPECT_NE(r.findings[0].summary.find("4 timed out"), std::string::npos);
  ASSERT_EQ(r.database.pools.size(), 1u);
  EXPECT_DOUBLE_EQ(r.database.pools[0].mean_wait_ms, 100);
}

TEST_F(SectionDbTest, EveryFormatHasTheSection) {
  Report empty;
  EXPECT_EQ(FormatText(empty).find("Database"), std::string::npos);
  EXPECT_NE(FormatJson(empty).find("\"database\":{\"queries\":[]"), std::string::npos);
  telemetry::DbRollup rows;
  rows.queries.push_back(Query(kMinute, 7, "select <b> from t where a = ?", 10, 1000));
  rows.routes.push_back(Route(kMinute, "catalog", 10, 1, 100, 1000));
  store_->WriteDb(rows);
  const Report r = Analyze();
  EXPECT_NE(FormatText(r).find("Database (PostgreSQL through ficus)"), std::string::npos);
  EXPECT_NE(FormatText(r).find("catalog"), std::string::npos);
  EXPECT_NE(FormatMarkdown(r).find("## Database"), std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"fingerprint\":\"0000000000000007\""), std::string::npos);
  const std::string html = FormatHtml(r);
  EXPECT_NE(html.find("id=\"database\""), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;"), std::string::npos);
}

}  // namespace
}  // namespace ficus::advisor
