// The join of queries to HTTP routes by trace id: queries per request, N+1, the database's
// share, requests without queries, traces no exchange claims, and the minute rows it writes.
#include "pg/internal/trace_join.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "pg/internal/explain.h"  // Service::Impl owns an Explainer

namespace ficus::pg::internal {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000 / 60'000 * 60'000 + 1000;  // 1 s into a minute

std::string TraceHex(int n) {
  char b[33];
  std::snprintf(b, sizeof b, "4bf92f3577b34da6a3ce929d%08x", n);
  return b;
}

class TraceJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    impl_ = std::make_unique<Service::Impl>(std::make_shared<config::Config>(), 2);
    impl_->join->Stop();  // the test ticks it with its own clock
    log_ = std::make_shared<observe::RouteTraceLog>(2, 64);
    impl_->join->AttachRoutes(log_);
    dir_ = ::testing::TempDir() + "/trace_join_test_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    telemetry::StoreOptions so;
    so.path = dir_ + "/ficus.db";
    so.durable = false;
    store_ = std::make_unique<telemetry::Store>(so);
    impl_->join->AttachStore(store_.get());
  }
  void TearDown() override {
    impl_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Exchange(int worker, const std::string& trace, const std::string* route, uint64_t us) {
    observe::RouteTrace t;
    std::memcpy(t.trace_id, trace.data(), 32);
    t.route = route;
    t.duration_us = us;
    ASSERT_TRUE(log_->rings.Push(worker, t));
  }
  std::string Json() {
    JsonWriter j;
    j.BeginObject();
    impl_->join->WriteJson(j);
    j.EndObject();
    return j.Take();
  }
  std::unique_ptr<Service::Impl> impl_;
  std::shared_ptr<observe::RouteTraceLog> log_;
  std::string dir_;
  std::unique_ptr<telemetry::Store> store_;
};

TEST_F(TraceJoinTest, JoinsQueriesToTheirRoute) {
  EXPECT_TRUE(log_->wanted.load());
  static const std::string orders = "orders", health = "health";
  // Request 1 on "orders": 1 list query and the same item query 6 times (an N+1), 7 ms of
  // database in a 10 ms request; request 2: two queries.
  impl_->join->Note(0, TraceHex(1), 100, 1000);
  for (int i = 0; i < 6; ++i) impl_->join->Note(1, TraceHex(1), 200, 1000);
  impl_->join->Note(0, TraceHex(2), 100, 500);
  impl_->join->Note(0, TraceHex(2), 300, 500);
  Exchange(0, TraceHex(1), &orders, 10'000);
  Exchange(1, TraceHex(2), &orders, 5'000);
  impl_->join->Tick(kT0);
  // Exchanges are joined one round after they are drained (their queries are in by then).
  EXPECT_EQ(Json().find("\"route\":\"orders\""), std::string::npos);
  // A request with no query on a route that has queries counts as 0; a route that never had
  // one is not listed.
  Exchange(0, TraceHex(3), &orders, 1'000);
  Exchange(0, TraceHex(4), &health, 100);
  impl_->join->Tick(kT0 + 200);
  impl_->join->Tick(kT0 + 400);
  const std::string j = Json();
  EXPECT_NE(j.find("\"routes\":[{\"route\":\"orders\",\"requests\":3,\"requests_with_queries\":2,"
                   "\"queries\":9,\"queries_per_request\":3"),
            std::string::npos)
      << j;
  EXPECT_EQ(j.find("\"route\":\"health\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"db_share\":0.5"), std::string::npos) << j;  // 8 ms of 16 ms
  EXPECT_NE(j.find("\"n_plus_one\":[{\"route\":\"orders\",\"fingerprint\":\"00000000000000c8\""),
            std::string::npos)
      << j;
  EXPECT_NE(j.find("\"max_repeats\":6"), std::string::npos) << j;
  // The trace list names the route of each joined trace.
  EXPECT_NE(j.find("{\"trace_id\":\"" + TraceHex(1) +
                   "\",\"queries\":7,\"db_ms\":7,"
                   "\"max_repeats\":6,\"repeated_fingerprint\":\"00000000000000c8\","
                   "\"route\":\"orders\",\"request_ms\":10}"),
            std::string::npos)
      << j;

  std::string metrics;
  observe::MetricWriter w(metrics);
  impl_->join->Collect(w);
  EXPECT_NE(metrics.find("ficus_pg_route_queries_total{route=\"orders\"} 9"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ficus_pg_route_queries_per_request_bucket{route=\"orders\",le=\"0\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ficus_pg_route_n_plus_one_total{route=\"orders\",fingerprint="
                         "\"00000000000000c8\"} 1"),
            std::string::npos)
      << metrics;

  // The minute ends: its rows reach the store.
  impl_->join->Tick(kT0 + 60'000);
  const telemetry::DbRollup rows = store_->Db(kT0 - 1000, kT0 + 59'000);
  ASSERT_EQ(rows.routes.size(), 1u);
  EXPECT_EQ(rows.routes[0].route, "orders");
  EXPECT_EQ(rows.routes[0].requests, 3u);
  EXPECT_EQ(rows.routes[0].queries, 9u);
  EXPECT_EQ(rows.routes[0].db_us, 8000u);
  EXPECT_EQ(rows.routes[0].request_us, 16'000u);
  EXPECT_EQ(rows.routes[0].queries_per_request[0], 1u);  // 0 queries
  EXPECT_EQ(rows.routes[0].queries_per_request[2], 1u);  // 2
  EXPECT_EQ(rows.routes[0].queries_per_request[5], 1u);  // 7: in (5, 10]
  ASSERT_EQ(rows.repeats.size(), 1u);
  EXPECT_EQ(rows.repeats[0].fingerprint, 200u);
  EXPECT_EQ(rows.repeats[0].max_repeats, 6u);
}

TEST_F(TraceJoinTest, UnclaimedTracesAreListedThenLeave) {
  impl_->join->Note(0, TraceHex(9), 100, 250);
  // Drained by the reader too (on the wall clock): shown at once.
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const std::string j = Json();
  EXPECT_NE(j.find("\"trace_id\":\"" + TraceHex(9) + "\",\"queries\":1"), std::string::npos) << j;
  impl_->join->Tick(now + 1000);
  EXPECT_NE(Json().find("\"trace_id\":\"" + TraceHex(9) + "\""), std::string::npos);
  impl_->join->Tick(now + TraceJoin::kUnjoinedMs + 1000);
  std::string metrics;
  observe::MetricWriter w(metrics);
  impl_->join->Collect(w);
  EXPECT_NE(metrics.find("ficus_pg_trace_join_total{result=\"unjoined\"} 1"), std::string::npos)
      << metrics;
  // It stays in the recent list, without a route.
  EXPECT_NE(Json().find("\"trace_id\":\"" + TraceHex(9) + "\""), std::string::npos);
}

TEST_F(TraceJoinTest, NotWantedWithoutAConsumer) {
  impl_->join->AttachRoutes(nullptr);
  EXPECT_FALSE(log_->wanted.load());
}

}  // namespace
}  // namespace ficus::pg::internal
