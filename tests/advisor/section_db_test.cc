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
      telemetry::DbRollup{{}, {}, {Route(kMinute + 60'000, "orders", 100, 12, 1, 1)}, {rep}, {}});
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
      telemetry::DbRollup{{}, {}, {Route(kMinute + 120'000, "search", 200, 1, 1, 1)}, {rep}, {}});
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

// The N+1 of a read on a GET route whose answers repeat, on a database with a replica, with a
// captured plan that lacks an index: the remedy gives every option, each with its specifics.
TEST_F(SectionDbTest, NPlusOneRemediesNameTheIndexTheCacheAndTheReplica) {
  telemetry::DbRollup rows;
  const char* text = "select name from items where order_id = ?";
  rows.queries.push_back(Query(kMinute, 0xabc, text, 1200, 900'000));
  rows.routes.push_back(Route(kMinute, "orders", 100, 12, 900'000, 3'000'000));
  telemetry::DbRepeat rep;
  rep.ts_ms = kMinute;
  rep.route = "orders";
  rep.fingerprint = 0xabc;
  rep.text = text;
  rep.requests = 60;
  rep.repeats = 600;
  rep.max_repeats = 12;
  rows.repeats.push_back(rep);
  store_->WriteDb(rows);
  auto remedy = [&](const Report& r) {
    for (const Finding& f : r.findings)
      if (f.kind == "db.n_plus_one") return f.remedy;
    return std::string("(none)");
  };
  auto analyze_with_route = [&] {
    Report r;
    RouteReport rr;
    rr.name = "orders";
    rr.reads = true;
    rr.repeat_ratio = 0.8;
    r.routes.push_back(rr);
    internal::AnalyzeDatabase(*store_, kMinute, kMinute + 10 * 60'000, r);
    return r;
  };
  // Nothing known: batch only.
  std::string m = remedy(Analyze());
  EXPECT_NE(m.find("batch query"), std::string::npos);
  EXPECT_EQ(m.find("CREATE INDEX"), std::string::npos) << m;
  EXPECT_EQ(m.find("cache:"), std::string::npos) << m;
  EXPECT_EQ(m.find("replica"), std::string::npos) << m;

  telemetry::DbPlan plan;
  plan.ts_ms = kMinute + 30'000;
  plan.fingerprint = 0xabc;
  plan.text = text;
  plan.total_cost = 1986;
  plan.indexes.push_back({"items",
                          {"order_id"},
                          "CREATE INDEX CONCURRENTLY ON items (order_id);",
                          "Seq Scan on items reads ~100000 rows to keep ~20"});
  store_->WriteDbPlan(plan);
  telemetry::DbServer primary, replica;
  primary.ts_ms = replica.ts_ms = kMinute;
  primary.database = replica.database = "shop";
  primary.server = "127.0.0.1:5432";
  primary.primary = true;
  replica.server = "127.0.0.1:5433";
  primary.samples = replica.samples = 300;
  store_->WriteDb(telemetry::DbRollup{{}, {}, {}, {}, {primary, replica}});
  const Report r = analyze_with_route();
  m = remedy(r);
  EXPECT_NE(m.find("add it: `CREATE INDEX CONCURRENTLY ON items (order_id);` (Seq Scan on items"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("80% of sampled responses"), std::string::npos) << m;
  EXPECT_NE(m.find("`cache:` on route orders"), std::string::npos) << m;
  EXPECT_NE(m.find("replica of shop"), std::string::npos) << m;
  // The plan's advice is in the section (and no separate index finding for an N+1 query).
  ASSERT_EQ(r.database.plans.size(), 1u);
  EXPECT_EQ(r.database.plans[0].indexes[0].columns, std::vector<std::string>{"order_id"});
  EXPECT_EQ(CountKind(r, "db.index"), 0u);
  EXPECT_NE(FormatText(r).find("Index for 0000000000000abc"), std::string::npos);
  EXPECT_NE(FormatMarkdown(r).find("### Indexes the plans lack"), std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"statement\":\"CREATE INDEX CONCURRENTLY ON items (order_id);\""),
            std::string::npos);
  EXPECT_NE(FormatHtml(r).find("<h3>Indexes the plans lack</h3>"), std::string::npos);
}

TEST_F(SectionDbTest, AHeavyQueryWhosePlanLacksAnIndex) {
  telemetry::DbRollup rows;
  rows.queries.push_back(
      Query(kMinute, 0x51, "select * from orders where customer_id = ?", 50, 4'000'000));
  rows.queries.push_back(Query(kMinute, 0x52, "select 1", 5000, 100'000));
  store_->WriteDb(rows);
  telemetry::DbPlan plan;
  plan.ts_ms = kMinute;
  plan.fingerprint = 0x52;  // a plan without advice, for a light query: nothing
  plan.text = "select 1";
  store_->WriteDbPlan(plan);
  EXPECT_EQ(CountKind(Analyze(), "db.index"), 0u);
  plan.fingerprint = 0x51;
  plan.text = "select * from orders where customer_id = ?";
  plan.indexes.push_back({"orders",
                          {"customer_id"},
                          "CREATE INDEX CONCURRENTLY ON orders (customer_id);",
                          "Seq Scan"});
  store_->WriteDbPlan(plan);
  plan.ts_ms = kMinute + 60'000;  // a newer capture of the same fingerprint wins
  plan.indexes[0].statement = "CREATE INDEX CONCURRENTLY ON orders (customer_id, created_at);";
  store_->WriteDbPlan(plan);
  const Report r = Analyze();
  ASSERT_EQ(CountKind(r, "db.index"), 1u);
  for (const Finding& f : r.findings) {
    if (f.kind != "db.index") continue;
    EXPECT_EQ(f.route, "0000000000000051");
    EXPECT_NE(f.summary.find("took 98% of the database's time"), std::string::npos) << f.summary;
    EXPECT_NE(f.remedy.find("ON orders (customer_id, created_at);"), std::string::npos) << f.remedy;
  }
}

TEST_F(SectionDbTest, ServersDownShareAndReplicaLagInEveryFormat) {
  telemetry::DbServer replica;
  replica.ts_ms = kMinute;
  replica.database = "shop";
  replica.server = "127.0.0.1:5433";
  replica.samples = 300;
  replica.down = 30;
  replica.max_lag_ms = 1500;
  replica.lag_sum_ms = 270 * 200;
  replica.lag_samples = 270;
  replica.checks_failed = 3;
  store_->WriteDb(telemetry::DbRollup{{}, {}, {}, {}, {replica}});
  replica.ts_ms = kMinute + 60'000;  // a second minute: sums add, the maximum stays one
  replica.down = 0;
  replica.max_lag_ms = 900;
  replica.checks_failed = 0;
  store_->WriteDb(telemetry::DbRollup{{}, {}, {}, {}, {replica}});
  const Report r = Analyze();
  ASSERT_EQ(r.database.servers.size(), 1u);
  const auto& s = r.database.servers[0];
  EXPECT_FALSE(s.primary);
  EXPECT_DOUBLE_EQ(s.down_share, 0.05);
  EXPECT_EQ(s.max_lag_ms, 1500);
  EXPECT_DOUBLE_EQ(s.mean_lag_ms, 200);
  EXPECT_EQ(s.checks_failed, 3u);
  const std::string text = FormatText(r);
  EXPECT_NE(text.find("Servers"), std::string::npos) << text;
  EXPECT_NE(text.find("127.0.0.1:5433"), std::string::npos) << text;
  EXPECT_NE(text.find("1500"), std::string::npos) << text;
  EXPECT_NE(FormatMarkdown(r).find("| shop | 127.0.0.1:5433 | replica | 5.0% | 1500 | 200 | 3 |"),
            std::string::npos);
  EXPECT_NE(FormatJson(r).find("\"servers\":[{\"database\":\"shop\",\"server\":\"127.0.0.1:5433\","
                               "\"role\":\"replica\",\"down_share\":0.05,\"max_lag_ms\":1500"),
            std::string::npos)
      << FormatJson(r);
  EXPECT_NE(FormatHtml(r).find("<h3>Servers</h3>"), std::string::npos);
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
