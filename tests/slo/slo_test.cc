// Tests for ficus::slo against hand-computed cases: SLI and budget from counts, burn rates, each
// alert rule and the minimum-traffic guard, state transitions through the Engine, the latency
// helper on observe's bucket layout, the JSON bodies, the Notifier's retries, and the rule
// export's bucket choice (against observe's real Prometheus render).
#include "slo/slo.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>

#include "config/config.h"

namespace ficus::slo {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

const SystemTime kT0 = SystemTime(std::chrono::seconds(1'700'000'000));

Objective Availability(double target = 0.999, uint64_t min_requests = 100) {
  Objective o;
  o.slo = "api";
  o.sli = Sli::kAvailability;
  o.target = target;
  o.min_requests = min_requests;
  return o;
}

// Counts per window, given as {total, bad} for 5m, 30m, 1h, 6h, 1d, 3d.
std::array<Counts, kWindowCount> Windows(std::array<std::pair<uint64_t, uint64_t>, 6> tb) {
  std::array<Counts, kWindowCount> c;
  for (int i = 0; i < kWindowCount; ++i) c[i] = Counts{tb[i].first - tb[i].second, tb[i].first};
  return c;
}

TEST(Slo, SliAndBudgetFromCounts) {
  // 30 d: 1,000,000 requests, 400 failed. Budget = 0.1 % of 1,000,000 = 1000 failures; 400 spent.
  const SloStatus s = Evaluate(Availability(), Counts{999'600, 1'000'000}, {}, kT0);
  ASSERT_TRUE(s.sli);
  EXPECT_DOUBLE_EQ(*s.sli, 0.9996);
  EXPECT_NEAR(s.budget_remaining, 0.6, 1e-12);
  // 2500 failed: the budget is overspent by 1.5 budgets.
  EXPECT_NEAR(Evaluate(Availability(), Counts{997'500, 1'000'000}, {}, kT0).budget_remaining, -1.5,
              1e-12);
  // No traffic: no SLI, the whole budget left, nothing fires.
  const SloStatus empty = Evaluate(Availability(), Counts{}, {}, kT0);
  EXPECT_FALSE(empty.sli);
  EXPECT_EQ(empty.budget_remaining, 1.0);
  EXPECT_EQ(empty.severity, Severity::kNone);
}

TEST(Slo, BurnRate) {
  EXPECT_NEAR(BurnRate(Counts{990, 1000}, 0.999), 10.0, 1e-9);  // 1 % errors vs 0.1 % budget
  EXPECT_NEAR(BurnRate(Counts{999, 1000}, 0.999), 1.0, 1e-9);
  EXPECT_NEAR(BurnRate(Counts{980, 1000}, 0.99), 2.0, 1e-9);
  EXPECT_EQ(BurnRate(Counts{0, 0}, 0.999), 0.0);
}

TEST(Slo, FastBurnPagesOver1hAnd5m) {
  // 2 % errors over 1 h and 5 m = burn 20 > 14.4 on both.
  const SloStatus s = Evaluate(
      Availability(), Counts{},
      Windows({{{1000, 20}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}}),
      kT0);
  EXPECT_NEAR(s.burn[k5m], 20, 1e-9);
  EXPECT_NEAR(s.burn[k1h], 20, 1e-9);
  EXPECT_THAT(s.firing, ElementsAre(true, false, false));
  EXPECT_EQ(s.severity, Severity::kPage);
}

TEST(Slo, FastBurnNeedsBothWindows) {
  // 1 h burns at 20 but the last 5 m only at 10 (< 14.4): the problem is over, no page. Nothing
  // else burns enough either (6 h: 200/60000 = burn 3.3 < 6; 3 d: burn 0.28 < 1).
  const SloStatus s = Evaluate(
      Availability(), Counts{},
      Windows({{{1000, 10}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}}),
      kT0);
  EXPECT_THAT(s.firing, ElementsAre(false, false, false));
  EXPECT_EQ(s.severity, Severity::kNone);
  // And the other way round: a 5 m spike (burn 30) that the hour does not confirm (burn 1.44).
  const SloStatus spike = Evaluate(
      Availability(), Counts{},
      Windows(
          {{{1000, 30}, {6000, 30}, {10000, 144 / 10}, {60000, 30}, {240000, 30}, {720000, 30}}}),
      kT0);
  EXPECT_EQ(spike.severity, Severity::kNone);
}

TEST(Slo, SlowBurnPagesOver6hAnd30m) {
  // 0.7 % errors over 6 h and 30 m: burn 7 > 6. 1 h (burn 7) and 5 m (burn 7) stay under 14.4.
  const SloStatus s = Evaluate(
      Availability(), Counts{},
      Windows({{{1000, 7}, {6000, 42}, {10000, 70}, {60000, 420}, {240000, 420}, {720000, 420}}}),
      kT0);
  EXPECT_THAT(s.firing, ElementsAre(false, true, false));
  EXPECT_EQ(s.severity, Severity::kPage);
}

TEST(Slo, TicketOver3dAnd6h) {
  // 3 d: 1000 errors in 720000 = burn 1.39 > 1; 6 h: 300 in 60000 = burn 5 (> 1, < 6).
  const SloStatus s = Evaluate(
      Availability(), Counts{},
      Windows({{{1000, 5}, {6000, 30}, {10000, 50}, {60000, 300}, {240000, 600}, {720000, 1000}}}),
      kT0);
  EXPECT_THAT(s.firing, ElementsAre(false, false, true));
  EXPECT_EQ(s.severity, Severity::kTicket);
  // The 6 h window back under budget (burn 0.5): the ticket clears though 3 d still burns.
  const SloStatus cleared = Evaluate(
      Availability(), Counts{},
      Windows({{{1000, 0}, {6000, 3}, {10000, 5}, {60000, 30}, {240000, 600}, {720000, 1000}}}),
      kT0);
  EXPECT_EQ(cleared.severity, Severity::kNone);
}

TEST(Slo, ThresholdIsStrictlyGreater) {
  // Exactly 14.4x over both windows does not page (Prometheus's `>`, as in the workbook).
  // 99 % objective: 14.4 % of 1000 = 144 errors; 145 pages.
  const Objective o = Availability(0.99);
  auto at = [&](uint64_t bad) {
    return Evaluate(
               o, Counts{},
               Windows({{{1000, bad}, {1000, 0}, {1000, bad}, {1000, 0}, {1000, 0}, {1000, 0}}}),
               kT0)
        .firing[0];
  };
  EXPECT_FALSE(at(143));
  EXPECT_FALSE(at(144));
  EXPECT_TRUE(at(145));
}

TEST(Slo, MinimumTrafficGuard) {
  // 5 m has only 50 requests (< 100), 20 % of them failed: without the guard this pages.
  const auto windows =
      Windows({{{50, 10}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}});
  const SloStatus guarded = Evaluate(Availability(0.999, 100), Counts{}, windows, kT0);
  EXPECT_FALSE(guarded.enough_traffic[k5m]);
  EXPECT_TRUE(guarded.enough_traffic[k1h]);
  EXPECT_NEAR(guarded.burn[k5m], 200, 1e-9);  // still reported
  EXPECT_EQ(guarded.severity, Severity::kNone);
  // With the guard at 50 (>= is enough) it pages.
  EXPECT_EQ(Evaluate(Availability(0.999, 50), Counts{}, windows, kT0).severity, Severity::kPage);
  // A guard of 0 still needs at least one request: an empty window never alerts.
  const auto empty5m =
      Windows({{{0, 0}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}});
  EXPECT_EQ(Evaluate(Availability(0.999, 0), Counts{}, empty5m, kT0).severity, Severity::kNone);
  // The guard applies to the long window too: 3 d with 80 requests, all failing, no ticket.
  const auto quiet = Windows({{{80, 80}, {80, 80}, {80, 80}, {80, 80}, {80, 80}, {80, 80}}});
  EXPECT_EQ(Evaluate(Availability(), Counts{}, quiet, kT0).severity, Severity::kNone);
}

// A Source that answers from a table (window seconds -> counts) the test changes over time.
class TableSource : public Source {
 public:
  std::map<int64_t, Counts> table;
  Counts Get(const Objective&, Seconds window, SystemTime) override {
    auto it = table.find(window.count());
    return it == table.end() ? Counts{} : it->second;
  }
  void Set(std::array<std::pair<uint64_t, uint64_t>, 6> tb) {
    const auto w = Windows(tb);
    for (int i = 0; i < kWindowCount; ++i) table[kWindows[i].count()] = w[i];
  }
};

std::shared_ptr<const config::Config> LoadConfig(std::string_view slos) {
  std::string yaml =
      "listeners: [{ listen: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: shop, endpoints: [127.0.0.1:3000] }]\n"
      "routes: [{ name: r, cluster: shop }]\n";
  yaml.append(slos);
  config::LoadResult r = config::LoadString(yaml, "t.yaml");
  EXPECT_TRUE(r.errors.empty()) << (r.errors.empty() ? "" : r.errors[0].ToString());
  return r.config;
}

TEST(SloEngine, TransitionsOkPageTicketOk) {
  auto config = LoadConfig("slos: [{ name: api, availability: 99.9% }]\n");
  Engine engine(config, nullptr);
  TableSource src;
  src.Set({{{1000, 0}, {6000, 0}, {10000, 0}, {60000, 0}, {240000, 0}, {720000, 0}}});
  EXPECT_THAT(engine.Update(src, kT0), IsEmpty());  // ok -> ok: nothing to tell
  ASSERT_EQ(engine.Status().size(), 1u);
  EXPECT_EQ(engine.Status()[0].severity, Severity::kNone);

  src.Set({{{1000, 20}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}});
  auto t = engine.Update(src, kT0 + Seconds(60));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].from, Severity::kNone);
  EXPECT_EQ(t[0].status.severity, Severity::kPage);
  EXPECT_THAT(engine.Update(src, kT0 + Seconds(120)), IsEmpty());  // still paging: no news

  src.Set({{{1000, 5}, {6000, 30}, {10000, 50}, {60000, 300}, {240000, 600}, {720000, 1000}}});
  t = engine.Update(src, kT0 + Seconds(180));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].from, Severity::kPage);
  EXPECT_EQ(t[0].status.severity, Severity::kTicket);

  src.Set({{{1000, 0}, {6000, 0}, {10000, 0}, {60000, 0}, {240000, 600}, {720000, 1000}}});
  t = engine.Update(src, kT0 + Seconds(240));
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].from, Severity::kTicket);
  EXPECT_EQ(t[0].status.severity, Severity::kNone);
  EXPECT_THAT(engine.StatusJson(), HasSubstr("\"state\":\"ok\""));
}

// A reload builds a new engine: alert states carry over by objective id, so a page that is
// still firing is not announced again, an objective that is new starts "ok", and one whose
// page ends is announced as page -> ok.
TEST(SloEngine, CarryOverKeepsStatesById) {
  auto before = LoadConfig("slos: [{ name: api, availability: 99.9% }]\n");
  Engine old_engine(before, nullptr);
  TableSource src;
  src.Set({{{1000, 20}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}});
  ASSERT_EQ(old_engine.Update(src, kT0).size(), 1u);  // ok -> page

  // The new config adds an SLO before it and changes api's guard: same id, same state.
  auto after = LoadConfig(
      "slos: [{ name: new, availability: 99.9% }, { name: api, availability: 99.9%, min_requests: "
      "50 }]\n");
  Engine engine(after, nullptr);
  engine.CarryOver(old_engine);
  ASSERT_EQ(engine.Status().size(), 1u);
  EXPECT_EQ(engine.Status()[0].objective.min_requests, 50u);
  auto t = engine.Update(src, kT0 + Seconds(10));
  ASSERT_EQ(t.size(), 1u);  // only the new SLO: ok -> page
  EXPECT_EQ(t[0].status.objective.Id(), "new/availability");

  // Without the carry-over the still-firing page would be announced again.
  Engine fresh(after, nullptr);
  EXPECT_EQ(fresh.Update(src, kT0 + Seconds(10)).size(), 2u);

  src.Set({{{1000, 0}, {6000, 0}, {10000, 0}, {60000, 0}, {240000, 0}, {720000, 0}}});
  t = engine.Update(src, kT0 + Seconds(20));
  ASSERT_EQ(t.size(), 2u);
  for (const Transition& x : t) {
    EXPECT_EQ(x.from, Severity::kPage) << x.status.objective.Id();
    EXPECT_EQ(x.status.severity, Severity::kNone);
  }
}

TEST(SloEngine, ObjectivesOfConfig) {
  auto config = LoadConfig(
      "slos:\n  - { name: api, routes: [r], availability: 99.9%, latency: { threshold: 250ms, "
      "objective: 99% }, min_requests: 7 }\n  - { name: b, latency: { threshold: 1s, objective: "
      "95% } }\n");
  const auto objectives = ObjectivesOf(*config);
  ASSERT_EQ(objectives.size(), 3u);
  EXPECT_EQ(objectives[0].Id(), "api/availability");
  EXPECT_EQ(objectives[1].Id(), "api/latency");
  EXPECT_EQ(objectives[1].threshold, std::chrono::milliseconds(250));
  EXPECT_EQ(objectives[1].min_requests, 7u);
  EXPECT_THAT(objectives[1].routes, ElementsAre("r"));
  EXPECT_EQ(objectives[2].Id(), "b/latency");
  EXPECT_EQ(objectives[2].window, Seconds(30 * 86400));
}

// ---------------------------------------------------------------------------------------------
// Counting

TEST(SloCounting, RoutesAreSummedNotAveraged) {
  Objective o = Availability();
  o.routes = {"a", "b"};
  RouteTotals a, b, c;
  a.responses = {0, 990, 0, 0, 10};  // 1 % errors
  b.responses = {0, 5, 0, 0, 5};     // 50 % errors, but only 10 requests
  c.responses = {0, 0, 0, 0, 1000};  // not in the SLO
  const Counts n = RouteSource::CountsOf(o, {{"a", a}, {"b", b}, {"c", c}});
  EXPECT_EQ(n.total, 1010u);
  EXPECT_EQ(n.good, 995u);  // 15 bad of 1010 (1.49 %), not the 25.5 % mean of the two ratios
  // 4xx responses are good for availability.
  RouteTotals d;
  d.responses = {0, 10, 0, 90, 0};
  EXPECT_EQ(RouteSource::CountsOf(Availability(), {{"d", d}}).good, 100u);
  // No routes named: every route.
  EXPECT_EQ(RouteSource::CountsOf(Availability(), {{"a", a}, {"c", c}}).total, 2000u);
}

TEST(SloCounting, LatencyCountsFromTheHistogram) {
  observe::Histogram h;
  for (uint64_t us :
       {1000u, 250'000u, 299'999u, 300'000u, 300'001u, 320'000u, 400'000u, 2'000'000'000u}) {
    h.Record(us);
  }
  std::array<uint64_t, observe::Histogram::kBuckets> buckets;
  for (int i = 0; i < observe::Histogram::kBuckets; ++i) buckets[i] = h.Bucket(i);
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  // 300 ms is a bucket edge: exact, `le` semantics (300000 counts, 300001 does not).
  EXPECT_EQ(CountWithin(buckets, milliseconds(300)), 4u);
  // 350 ms is inside the (300 ms, 400 ms] bucket: that whole bucket is left out, so 320 ms and
  // 300.001 ms count as slow (conservative), never the other way round.
  EXPECT_EQ(CountWithin(buckets, milliseconds(350)), 4u);
  EXPECT_EQ(EffectiveThreshold(milliseconds(350)), milliseconds(300));
  EXPECT_EQ(CountWithin(buckets, milliseconds(400)), 7u);
  EXPECT_EQ(CountWithin(buckets, milliseconds(1)), 1u);
  EXPECT_EQ(CountWithin(buckets, microseconds(999)), 0u);
  // The overflow bucket (> 1000 s) is never within a finite threshold.
  EXPECT_EQ(CountWithin(buckets, std::chrono::hours(1)), 7u);

  Objective o;
  o.sli = Sli::kLatency;
  o.target = 0.99;
  o.threshold = milliseconds(300);
  RouteTotals t;
  t.duration = buckets;
  const Counts n = RouteSource::CountsOf(o, {{"r", t}});
  EXPECT_EQ(n.total, 8u);
  EXPECT_EQ(n.good, 4u);
}

// ---------------------------------------------------------------------------------------------
// JSON

TEST(SloJson, TransitionBody) {
  Objective o = Availability();
  o.routes = {"a\"b"};
  const SloStatus s = Evaluate(
      o, Counts{999'600, 1'000'000},
      Windows({{{1000, 20}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}}),
      SystemTime(std::chrono::milliseconds(1'700'000'000'123)));
  const std::string json = TransitionJson(Transition{Severity::kNone, s});
  EXPECT_THAT(json, HasSubstr("{\"from\":\"ok\",\"to\":\"page\",\"slo\":\"api\","
                              "\"sli\":\"availability\",\"objective\":0.999,"
                              "\"routes\":[\"a\\\"b\"],\"window_seconds\":2592000,"
                              "\"at\":\"2023-11-14T22:13:20.123Z\",\"state\":\"page\","
                              "\"good\":999600,\"total\":1000000,\"sli_value\":0.9996,"
                              "\"budget_remaining\":0.6,\"burn_rates\":{\"5m\":20,"));
  EXPECT_THAT(json, HasSubstr("\"requests\":{\"5m\":1000,\"30m\":6000,\"1h\":10000,"));
  EXPECT_THAT(json, HasSubstr("\"firing\":[{\"severity\":\"page\",\"long\":\"1h\","
                              "\"short\":\"5m\",\"factor\":14.4}]}"));
  EXPECT_EQ(StatusJson({}), "{\"slos\":[]}");
}

// ---------------------------------------------------------------------------------------------
// Notifier

TEST(SloNotifier, BackoffDoublesUpToTheCap) {
  Notifier::Options o;
  o.first_backoff = std::chrono::milliseconds(100);
  o.max_backoff = std::chrono::milliseconds(1000);
  Notifier n(o);
  EXPECT_EQ(n.Backoff(1).count(), 100);
  EXPECT_EQ(n.Backoff(2).count(), 200);
  EXPECT_EQ(n.Backoff(3).count(), 400);
  EXPECT_EQ(n.Backoff(4).count(), 800);
  EXPECT_EQ(n.Backoff(5).count(), 1000);
  EXPECT_EQ(n.Backoff(40).count(), 1000);
}

// A loopback port with nothing listening (bound, never listened: connect is refused).
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~ClosedPort() { ::close(fd_); }
  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_;
};

TEST(SloNotifier, GivesUpAfterMaxAttempts) {
  ClosedPort closed;
  Notifier::Options o;
  o.max_attempts = 3;
  o.first_backoff = std::chrono::milliseconds(10);
  o.timeout = std::chrono::milliseconds(1000);
  Notifier n(o);
  config::Webhook hook{"http://127.0.0.1/", "127.0.0.1", closed.port(), "/", false, ""};
  const auto start = std::chrono::steady_clock::now();
  n.Post({hook}, "{}");
  ASSERT_TRUE(n.Flush(std::chrono::seconds(10)));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(30));  // 10+20
  const Notifier::Stats s = n.stats();
  EXPECT_EQ(s.attempts, 3u);
  EXPECT_EQ(s.failed, 1u);
  EXPECT_EQ(s.delivered, 0u);
  const Outcome<int> r = HttpPost(hook, "{}", std::chrono::milliseconds(500));
  EXPECT_FALSE(r);
  EXPECT_THAT(r.message(), HasSubstr("Connection refused"));
}

TEST(SloNotifier, DropsWhenTheQueueIsFull) {
  ClosedPort closed;
  Notifier::Options o;
  o.max_queue = 1;
  o.max_attempts = 1;
  Notifier n(o);
  config::Webhook hook{"", "127.0.0.1", closed.port(), "/", false, ""};
  n.Post({hook, hook, hook}, "{}");
  ASSERT_TRUE(n.Flush(std::chrono::seconds(10)));
  EXPECT_EQ(n.stats().dropped, 2u);
  EXPECT_EQ(n.stats().failed, 1u);
}

TEST(SloEngine, SendsTransitionsToTheSlosWebhooks) {
  ClosedPort closed;
  auto config = LoadConfig(
      "slos:\n  - { name: hooked, availability: 99.9%, webhooks: [\"http://127.0.0.1:" +
      std::to_string(closed.port()) + "/\"] }\n  - { name: silent, availability: 99.9% }\n");
  Notifier::Options o;
  o.max_attempts = 1;
  Notifier notifier(o);
  Engine engine(config, &notifier);
  TableSource src;
  src.Set({{{1000, 20}, {6000, 60}, {10000, 200}, {60000, 200}, {240000, 200}, {720000, 200}}});
  // Both SLOs page (same source), but only one has a webhook: one POST.
  EXPECT_EQ(engine.Update(src, kT0).size(), 2u);
  ASSERT_TRUE(notifier.Flush(std::chrono::seconds(10)));
  EXPECT_EQ(notifier.stats().attempts, 1u);
  // No change, no POST.
  EXPECT_EQ(engine.Update(src, kT0 + Seconds(60)).size(), 0u);
  ASSERT_TRUE(notifier.Flush(std::chrono::seconds(10)));
  EXPECT_EQ(notifier.stats().attempts, 1u);
}

// ---------------------------------------------------------------------------------------------
// Prometheus rules

TEST(SloRules, ExportedBoundsMatchObservesRender) {
  observe::Registry registry(1);
  registry.Route("r");
  const std::string text = registry.RenderPrometheus();
  // (No std::regex: g++ 12 warns falsely inside <regex> at -O1 with sanitizers.)
  std::vector<uint64_t> rendered;
  const std::string series = "ficus_route_request_duration_seconds_bucket{";
  for (size_t pos = text.find(series); pos != std::string::npos; pos = text.find(series, pos + 1)) {
    const size_t le = text.find("le=\"", pos);
    const size_t close = text.find('"', le + 4);
    ASSERT_NE(le, std::string::npos);
    const std::string value = text.substr(le + 4, close - le - 4);
    if (value == "+Inf") continue;
    rendered.push_back(static_cast<uint64_t>(std::llround(std::stod(value) * 1e6)));
  }
  const auto ours = ExportedLeMicros();
  EXPECT_EQ(rendered, std::vector<uint64_t>(ours.begin(), ours.end()));
}

// An SLO threshold becomes a bound of every route's duration histogram, counted exactly: the
// cumulative count at le="0.3" is the requests of at most 300 ms, what CountWithin (GET /slo)
// counts, and what the rules of an SLO with that threshold select.
TEST(SloRules, ThresholdsAreExportedBoundsCountedExactly) {
  observe::Registry registry(1);
  observe::RouteStats* r = registry.Route("r");
  const uint64_t samples[] = {250'000, 299'999, 300'000, 300'001, 1'999'999, 2'000'000, 2'000'001};
  std::array<uint64_t, observe::Histogram::kBuckets> buckets{};
  for (uint64_t us : samples) {
    r->Cell(0).duration.Record(us);
    ++buckets[observe::Histogram::BucketFor(us)];
  }
  // Unsorted, duplicated, and one standard bound (2.5 s): each written once, in order.
  registry.SetRouteLatencyBounds({2'000'000, 300'000, 2'500'000, 300'000});
  const std::string text = registry.RenderPrometheus();
  auto at = [&](std::string_view le) {
    const std::string key =
        "ficus_route_request_duration_seconds_bucket{route=\"r\",le=\"" + std::string(le) + "\"} ";
    const size_t pos = text.find(key);
    EXPECT_NE(pos, std::string::npos) << le;
    EXPECT_EQ(text.find(key, pos + 1), std::string::npos) << "twice: " << le;
    return pos == std::string::npos ? -1 : std::stoll(text.substr(pos + key.size()));
  };
  EXPECT_EQ(at("0.25"), 1);
  EXPECT_EQ(at("0.3"), 3);
  EXPECT_EQ(at("0.5"), 4);
  EXPECT_EQ(at("1"), 4);
  EXPECT_EQ(at("2"), 6);
  EXPECT_EQ(at("2.5"), 7);
  EXPECT_LT(text.find("le=\"0.25\""), text.find("le=\"0.3\""));
  EXPECT_LT(text.find("le=\"1\""), text.find("le=\"2\""));
  EXPECT_LT(text.find("le=\"2\""), text.find("le=\"2.5\""));
  EXPECT_EQ(at("0.3"), static_cast<int64_t>(CountWithin(buckets, std::chrono::milliseconds(300))));
  EXPECT_EQ(at("2"), static_cast<int64_t>(CountWithin(buckets, std::chrono::seconds(2))));
  // The cluster and endpoint histograms keep the standard bounds.
  registry.Cluster("c")->traffic.Cell(0).duration.Record(1);
  EXPECT_EQ(registry.RenderPrometheus().find("ficus_cluster_request_duration_seconds_bucket{"
                                             "cluster=\"c\",le=\"0.3\"}"),
            std::string::npos);
  EXPECT_EQ(observe::PrometheusLe(2'000'000), "2");
  EXPECT_EQ(observe::PrometheusLe(300'000), "0.3");
  EXPECT_EQ(observe::PrometheusLe(2'500), "0.0025");
}

// A config built in code (the config reader refuses it) with a threshold between edges: the
// rules count up to the edge below, as the engine does, and say so.
TEST(SloRules, ThresholdBetweenEdgesIsNoted) {
  config::Config config;
  config::Slo slo;
  slo.name = "between";
  slo.latency = config::SloLatency{std::chrono::milliseconds(350), 0.99};
  config.slos.push_back(slo);
  std::vector<std::string> notes;
  const std::string rules = PrometheusRules(config, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("threshold 350ms is not a bucket edge"));
  EXPECT_THAT(notes[0], HasSubstr("le=\"0.3\""));
  EXPECT_THAT(rules, HasSubstr("duration_seconds_bucket{le=\"0.3\"}[5m]"));
}

TEST(SloRules, CountWithinTheThresholdItself) {
  auto config = LoadConfig(
      "slos:\n  - { name: exact, latency: { threshold: 250ms, objective: 99% } }\n"
      "  - { name: between, routes: [r], latency: { threshold: 300ms, objective: 99% }, "
      "availability: 99.9% }\n");
  std::vector<std::string> notes;
  const std::string rules = PrometheusRules(*config, &notes);
  // Both thresholds are bucket edges that /metrics exports (SetRouteLatencyBounds): no note.
  EXPECT_THAT(notes, IsEmpty());
  EXPECT_THAT(rules, Not(HasSubstr("# NOTE")));
  EXPECT_THAT(rules, HasSubstr("ficus_route_request_duration_seconds_bucket{le=\"0.25\"}[5m]"));
  EXPECT_THAT(rules, HasSubstr("ficus_route_request_duration_seconds_bucket{route=~\"r\","
                               "le=\"0.3\"}[3d]"));
  EXPECT_THAT(rules, HasSubstr("sum(rate(ficus_route_responses_total{route=~\"r\","
                               "class=\"5xx\"}[1h])) / sum(rate(ficus_route_responses_total{"
                               "route=~\"r\"}[1h]))"));
  EXPECT_THAT(rules, HasSubstr("record: ficus_slo:error_ratio:rate30d"));
  EXPECT_THAT(rules, HasSubstr("ficus_slo:error_ratio:rate1h{slo=\"between\","
                               "sli=\"availability\"} > (14.4 * (1 - 0.999))"));
  EXPECT_THAT(rules, HasSubstr(">= 100"));
}

}  // namespace
}  // namespace ficus::slo
