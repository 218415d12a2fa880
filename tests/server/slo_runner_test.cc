// The gateway's SLO evaluation over a real telemetry store, fast-forwarded with a fake clock:
// two healthy days and then an hour at 10 % errors. Every window's counts are hand-computed
// from the rows the ticks wrote (one tick a minute: each minute's requests land in one 10 s row
// and in its 1 min row).
#include "server/internal/slo_runner.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "config/config.h"
#include "telemetry/telemetry.h"

namespace ficus::server {
namespace {

namespace fs = std::filesystem;
using telemetry::SeriesKind;
using telemetry::SeriesTotals;

constexpr int64_t kBase = 1'699'999'980'000;  // a whole minute

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/ficus-slo-runner-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::shared_ptr<const config::Config> Config(std::string_view slos) {
  std::string yaml =
      "listeners: [{ listen: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]\n"
      "routes: [{ name: api, match: { path_prefix: /api }, cluster: shop },\n"
      "         { name: web, cluster: shop }]\n";
  yaml.append(slos);
  config::LoadResult r = config::LoadString(yaml, "t.yaml");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].ToString());
  return r.config;
}

TEST(SloRunner, EvaluatesFromTheStoreAndCarriesStatesOverAReload) {
  TempDir dir;
  std::vector<SeriesTotals> totals(2);
  totals[0].name = "api";
  totals[1].name = "web";
  int64_t now = kBase;
  telemetry::TelemetryOptions opt;
  opt.store.path = dir.File("t.db");
  opt.store.durable = false;
  telemetry::Telemetry t(
      opt, [&](bool) { return totals; }, [&] { return now; });
  // One minute of traffic: `api` gets 100 requests, `errors` of them 5xx taking 500 ms, the
  // rest 2 ms; `web` gets 1000 5xx (in no SLO below: never counted).
  auto minute = [&](uint64_t errors) {
    totals[0].requests += 100;
    totals[0].errors += errors;
    totals[0].latency.buckets[observe::Histogram::BucketFor(2000)] += 100 - errors;
    totals[0].latency.buckets[observe::Histogram::BucketFor(500'000)] += errors;
    totals[1].requests += 1000;
    totals[1].errors += 1000;
    now += 60'000;
    t.Tick();
  };
  t.Tick();  // baseline
  for (int i = 0; i < 2 * 1440; ++i) minute(0);
  for (int i = 0; i < 60; ++i) minute(10);

  auto cfg = Config(
      "slos: [{ name: api, routes: [api], availability: 99.9%, "
      "latency: { threshold: 250ms, objective: 99% } }]\n");
  SloRunner runner(t, cfg);
  const auto transitions = runner.Evaluate();
  ASSERT_EQ(transitions.size(), 1u);  // availability pages; latency (1 % budget) does not
  const slo::SloStatus& a = transitions[0].status;
  EXPECT_EQ(a.objective.Id(), "api/availability");
  EXPECT_EQ(a.severity, slo::Severity::kPage);
  // 30 d (1 min rows): everything: 2940 minutes x 100, 600 bad.
  EXPECT_EQ(a.window_counts.total, 294'000u);
  EXPECT_EQ(a.window_counts.bad(), 600u);
  EXPECT_NEAR(a.budget_remaining, 1 - 600.0 / 294.0, 1e-9);
  // 5m: the last 5 rows; 1h: 60; 1d: 1440 (10 s rows); 3d: all (1 min rows).
  const std::array<std::pair<uint64_t, uint64_t>, slo::kWindowCount> expected = {
      {{500, 50}, {3000, 300}, {6000, 600}, {36'000, 600}, {144'000, 600}, {294'000, 600}}};
  for (int i = 0; i < slo::kWindowCount; ++i) {
    EXPECT_EQ(a.counts[i].total, expected[i].first) << slo::kWindowNames[i];
    EXPECT_EQ(a.counts[i].bad(), expected[i].second) << slo::kWindowNames[i];
  }
  EXPECT_NEAR(a.burn[slo::k5m], 100, 1e-9);
  // Latency: the same 600 requests were slow (500 ms > 250 ms); 10 % over 1h = burn 10 < 14.4.
  EXPECT_NE(runner.StatusJson().find("\"sli\":\"latency\""), std::string::npos);

  // Live counters since the last tick count too (no tick needed).
  totals[0].requests += 50;
  totals[0].errors += 50;
  now += 5'000;
  auto more = runner.Evaluate();
  EXPECT_TRUE(more.empty());  // still paging: nothing new to tell

  // A reload with the same SLO (and a guard change): the page carries over, no transition.
  runner.SetConfig(
      Config("slos: [{ name: api, routes: [api], availability: 99.9%, min_requests: 10, "
             "latency: { threshold: 250ms, objective: 99% } }]\n"));
  EXPECT_TRUE(runner.Evaluate().empty());
  EXPECT_NE(runner.StatusJson().find("\"state\":\"page\""), std::string::npos);
}

}  // namespace
}  // namespace ficus::server
