// ClusterShared (ejection, health, panic, breakers, carry-over across reloads), the retry
// budget, the resilience metrics, and the Monitor's active health checks against real sockets.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "upstream/upstream.h"

namespace ficus::upstream {
namespace {

using ::testing::HasSubstr;

config::Cluster MakeCluster(size_t n) {
  config::Cluster c;
  c.name = "app";
  for (size_t i = 0; i < n; ++i) {
    config::Endpoint e;
    e.host = "127.0.0.1";
    e.port = static_cast<uint16_t>(10000 + i);
    c.endpoints.push_back(e);
  }
  return c;
}

std::vector<net::Address> Addresses(const config::Cluster& c) { return ResolveEndpoints(c); }

config::Cluster WithOutlier(size_t n, uint32_t pct = 100) {
  config::Cluster c = MakeCluster(n);
  c.outlier_detection.enabled = true;
  c.outlier_detection.consecutive_5xx = 3;
  c.outlier_detection.consecutive_gateway_failures = 2;
  c.outlier_detection.base_ejection_time = config::Duration{1000};
  c.outlier_detection.max_ejection_time = config::Duration{2500};
  c.outlier_detection.max_ejection_percent = pct;
  c.panic_threshold = 0;
  return c;
}

TEST(ClusterSharedTest, NoFiltersMeansEveryEndpoint) {
  config::Cluster c = MakeCluster(3);
  ClusterShared s(c, Addresses(c), nullptr);
  EXPECT_FALSE(s.filters());
  uint64_t w = 0;
  EXPECT_FALSE(s.AvailableMask({&w, 1}));
}

TEST(ClusterSharedTest, ConsecutiveFailuresEjectAndSuccessResets) {
  config::Cluster c = WithOutlier(3);
  ClusterShared s(c, Addresses(c), nullptr);
  s.Report(0, Outcome::k5xx, 0);
  s.Report(0, Outcome::k5xx, 0);
  s.Report(0, Outcome::kSuccess, 0);  // the streak is broken
  s.Report(0, Outcome::k5xx, 0);
  s.Report(0, Outcome::k5xx, 0);
  EXPECT_FALSE(s.ejected(0));
  s.Report(0, Outcome::k5xx, 0);
  EXPECT_TRUE(s.ejected(0));
  // Gateway failures have their own, lower threshold.
  s.Report(1, Outcome::kGatewayFailure, 0);
  EXPECT_FALSE(s.ejected(1));
  s.Report(1, Outcome::kGatewayFailure, 0);
  EXPECT_TRUE(s.ejected(1));
  uint64_t w = 0;
  ASSERT_TRUE(s.AvailableMask({&w, 1}));
  EXPECT_EQ(w, 0b100u);
  EXPECT_EQ(s.counters().ejections.load(), 2u);
}

TEST(ClusterSharedTest, EjectionGrowsWithEachEjectionUpToTheMaximum) {
  config::Cluster c = WithOutlier(2);
  ClusterShared s(c, Addresses(c), nullptr);
  std::vector<size_t> ej, un;
  int64_t now = 1'000'000;
  for (int round = 1; round <= 4; ++round) {
    s.Report(0, Outcome::kGatewayFailure, now);
    s.Report(0, Outcome::kGatewayFailure, now);
    ASSERT_TRUE(s.ejected(0));
    EXPECT_EQ(s.ejections(0), static_cast<uint32_t>(round));
    const int64_t expect = std::min<int64_t>(2500, 1000 * round);
    s.Sweep(now + expect - 1, &ej, &un);
    EXPECT_TRUE(s.ejected(0)) << round;
    s.Sweep(now + expect, &ej, &un);
    EXPECT_FALSE(s.ejected(0)) << round;
    now += expect;
  }
  EXPECT_EQ(ej.size(), 4u);
  EXPECT_EQ(un.size(), 4u);
  // Quiet periods take the multiplier back down, one base_ejection_time at a time.
  for (int i = 0; i < 10; ++i) s.Sweep(now += 1000, &ej, &un);
  EXPECT_EQ(s.ejections(0), 0u);
}

TEST(ClusterSharedTest, MaxEjectionPercentAllowsAtLeastOne) {
  config::Cluster c = WithOutlier(4, 10);  // 10 % of 4 rounds down to 0: still one
  ClusterShared s(c, Addresses(c), nullptr);
  for (size_t e = 0; e < 4; ++e) {
    s.Report(e, Outcome::kGatewayFailure, 0);
    s.Report(e, Outcome::kGatewayFailure, 0);
  }
  EXPECT_EQ(s.ejected_count(), 1u);
  config::Cluster half = WithOutlier(4, 50);
  ClusterShared t(half, Addresses(half), nullptr);
  for (size_t e = 0; e < 4; ++e) {
    t.Report(e, Outcome::kGatewayFailure, 0);
    t.Report(e, Outcome::kGatewayFailure, 0);
  }
  EXPECT_EQ(t.ejected_count(), 2u);
}

TEST(ClusterSharedTest, PanicUsesEveryEndpointBelowTheThreshold) {
  config::Cluster c = WithOutlier(4);
  c.panic_threshold = 50;
  ClusterShared s(c, Addresses(c), nullptr);
  uint64_t w = 0;
  s.Report(0, Outcome::kGatewayFailure, 0);
  s.Report(0, Outcome::kGatewayFailure, 0);
  s.Report(1, Outcome::kGatewayFailure, 0);
  s.Report(1, Outcome::kGatewayFailure, 0);
  ASSERT_TRUE(s.AvailableMask({&w, 1}));  // 2 of 4 = 50 %: not below
  EXPECT_EQ(w, 0b1100u);
  s.Report(2, Outcome::kGatewayFailure, 0);
  s.Report(2, Outcome::kGatewayFailure, 0);
  EXPECT_FALSE(s.AvailableMask({&w, 1}));  // 1 of 4: panic, all of them
  EXPECT_EQ(s.counters().panics.load(), 1u);
}

TEST(ClusterSharedTest, HealthThresholdsAndPassingChecksEndAnEjection) {
  config::Cluster c = WithOutlier(2);
  c.health_check.enabled = true;
  c.health_check.healthy_threshold = 2;
  c.health_check.unhealthy_threshold = 3;
  ClusterShared s(c, Addresses(c), nullptr);
  EXPECT_TRUE(s.healthy(0));
  EXPECT_FALSE(s.CheckResult(0, false));
  EXPECT_FALSE(s.CheckResult(0, false));
  EXPECT_TRUE(s.CheckResult(0, false));
  EXPECT_FALSE(s.healthy(0));
  s.Report(0, Outcome::kGatewayFailure, 0);
  s.Report(0, Outcome::kGatewayFailure, 0);
  EXPECT_TRUE(s.ejected(0));
  EXPECT_FALSE(s.CheckResult(0, true));
  EXPECT_TRUE(s.CheckResult(0, true));
  EXPECT_TRUE(s.healthy(0));
  EXPECT_FALSE(s.ejected(0));
  EXPECT_EQ(s.counters().health_checks_failed.load(), 3u);
  EXPECT_EQ(s.counters().health_checks_passed.load(), 2u);
}

TEST(ClusterSharedTest, AFailedConnectMarksTheEndpointDownUntilOneSucceeds) {
  config::Cluster c = MakeCluster(3);  // no health checks, no outlier detection
  ClusterShared s(c, Addresses(c), nullptr);
  uint64_t w = 0;
  EXPECT_FALSE(s.AvailableMask({&w, 1}));
  s.ConnectFailed(1, 1000);
  EXPECT_TRUE(s.connect_failed(1));
  ASSERT_TRUE(s.AvailableMask({&w, 1}));
  EXPECT_EQ(w, 0b101u);
  s.ConnectFailed(1, 1001);  // already down: counted once
  EXPECT_EQ(s.counters().connect_markdowns.load(), 1u);
  s.ConnectSucceeded(0);  // another endpoint's success changes nothing
  EXPECT_TRUE(s.connect_failed(1));
  s.ConnectSucceeded(1);
  EXPECT_FALSE(s.connect_failed(1));
  EXPECT_FALSE(s.AvailableMask({&w, 1}));
}

TEST(ClusterSharedTest, PanicNeverUsesEndpointsWhoseLastConnectFailed) {
  config::Cluster c = MakeCluster(3);
  c.health_check.enabled = true;
  c.health_check.unhealthy_threshold = 1;
  c.panic_threshold = 50;
  ClusterShared s(c, Addresses(c), nullptr);
  uint64_t w = 0;
  s.CheckResult(0, false);  // 0 hangs: unhealthy, but it accepts connections
  s.ConnectFailed(1, 0);    // 1 is dead
  // 1 of 3 available (33 %) is below 50 %: panic uses 0 and 2, never 1.
  ASSERT_TRUE(s.AvailableMask({&w, 1}));
  EXPECT_EQ(w, 0b101u);
  EXPECT_EQ(s.counters().panics.load(), 1u);
  // Every endpoint's connect failed: all are used, each try being a probe.
  s.ConnectFailed(0, 0);
  s.ConnectFailed(2, 0);
  EXPECT_FALSE(s.AvailableMask({&w, 1}));
  // A health check that connects clears the mark; one whose connect fails sets it.
  s.CheckResult(2, true);
  EXPECT_FALSE(s.connect_failed(2));
  s.CheckResult(2, false, /*connect_failed=*/true, 0);
  EXPECT_TRUE(s.connect_failed(2));
}

TEST(ClusterSharedTest, ConnectProbesBackOffAndASuccessfulOneClearsTheMark) {
  config::Cluster c = MakeCluster(2);
  c.connect_timeout = config::Duration{100};
  ClusterShared s(c, Addresses(c), nullptr);
  std::vector<size_t> marked, cleared, probe;
  s.ConnectFailed(0, 10'000);
  s.SweepConnectFailures(10'000, &marked, &cleared, &probe);
  EXPECT_EQ(marked, std::vector<size_t>{0});  // reported once
  EXPECT_TRUE(probe.empty());
  s.SweepConnectFailures(10'249, &marked, &cleared, &probe);
  EXPECT_TRUE(probe.empty());
  s.SweepConnectFailures(10'250, &marked, &cleared, &probe);  // 250 ms after the failure
  EXPECT_EQ(probe, std::vector<size_t>{0});
  s.SweepConnectFailures(10'260, &marked, &cleared, &probe);  // in flight: not probed twice
  EXPECT_EQ(probe.size(), 1u);
  s.ProbeResult(0, false, 10'300);  // refused again: the next one 500 ms later
  s.SweepConnectFailures(10'799, &marked, &cleared, &probe);
  EXPECT_EQ(probe.size(), 1u);
  s.SweepConnectFailures(10'800, &marked, &cleared, &probe);
  EXPECT_EQ(probe.size(), 2u);
  s.ProbeResult(0, true, 10'810);
  EXPECT_FALSE(s.connect_failed(0));
  s.SweepConnectFailures(10'900, &marked, &cleared, &probe);
  EXPECT_EQ(cleared, std::vector<size_t>{0});
  EXPECT_EQ(marked.size(), 1u);
  // The back-off starts over after a success, and is capped.
  s.ConnectFailed(0, 20'000);
  s.SweepConnectFailures(20'250, &marked, &cleared, &probe);
  EXPECT_EQ(probe.size(), 3u);
  EXPECT_EQ(marked.size(), 2u);
  EXPECT_EQ(ClusterShared::ProbeDelayMs(1), 250);
  EXPECT_EQ(ClusterShared::ProbeDelayMs(5), 4000);
  EXPECT_EQ(ClusterShared::ProbeDelayMs(6), 5000);
  EXPECT_EQ(ClusterShared::ProbeDelayMs(100), 5000);
}

TEST(ClusterSharedTest, ReloadKeepsStateOfEndpointsThatStay) {
  config::Cluster c = WithOutlier(3);
  c.health_check.enabled = true;
  c.health_check.unhealthy_threshold = 1;
  ClusterShared before(c, Addresses(c), nullptr);
  before.Report(1, Outcome::kGatewayFailure, 0);
  before.Report(1, Outcome::kGatewayFailure, 0);
  before.CheckResult(2, false);
  before.ConnectFailed(2, 0);
  before.counters().retries.store(7);
  // The new config drops endpoint 0 and adds one: 1 and 2 move to indexes 0 and 1.
  config::Cluster next = c;
  next.endpoints.erase(next.endpoints.begin());
  next.endpoints.push_back(c.endpoints[0]);
  next.endpoints.back().port = 20000;
  ClusterShared after(next, Addresses(next), &before);
  EXPECT_TRUE(after.ejected(0));
  EXPECT_EQ(after.ejections(0), 1u);
  EXPECT_FALSE(after.healthy(1));
  EXPECT_TRUE(after.healthy(2));
  EXPECT_FALSE(after.ejected(2));
  EXPECT_TRUE(after.connect_failed(1));
  EXPECT_FALSE(after.connect_failed(0));
  EXPECT_FALSE(after.connect_failed(2));
  EXPECT_EQ(after.ejected_count(), 1u);
  EXPECT_EQ(after.counters().retries.load(), 7u);  // counters stay monotonic
}

TEST(ClusterSharedTest, BreakersCountAndReject) {
  config::Cluster c = MakeCluster(1);
  c.circuit_breakers.max_requests = 2;
  ClusterShared s(c, Addresses(c), nullptr);
  EXPECT_TRUE(s.TryAcquire(ClusterCounters::kMaxRequests));
  EXPECT_TRUE(s.TryAcquire(ClusterCounters::kMaxRequests));
  EXPECT_FALSE(s.TryAcquire(ClusterCounters::kMaxRequests));
  s.Release(ClusterCounters::kMaxRequests);
  EXPECT_TRUE(s.TryAcquire(ClusterCounters::kMaxRequests));
  EXPECT_EQ(s.counters().breaker_rejections[ClusterCounters::kMaxRequests].load(), 1u);
  // Unset limits never reject and never count.
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(s.TryAcquire(ClusterCounters::kMaxRetries));
  EXPECT_EQ(s.counters().open[ClusterCounters::kMaxRetries].load(), 0);
}

TEST(RetryBudgetTest, ClusterStateCountsRefusals) {
  config::Cluster c = MakeCluster(2);
  c.retry.max_tries = 3;
  c.retry.budget_ratio = 0.2;
  c.retry.budget_min_per_second = 0;
  ClusterState state(c, Addresses(c), nullptr);
  const int64_t now = CoarseMonotonicMillis();
  for (int i = 0; i < 20; ++i) state.RequestStarted();
  int granted = 0;
  while (state.TryStartRetry(now, false)) ++granted;
  EXPECT_EQ(granted, 4);  // 0.2 x 20
  EXPECT_EQ(state.shared().counters().retry_budget_exhausted.load(), 1u);
}

TEST(ClusterStateTest, TheBalancerForgetsAnEndpointThatCameBack) {
  // p2c_ewma learned that endpoint 1 fails (a 1 s penalty per failure): without forgetting, it
  // would get no traffic for a minute after it came back, with nothing to correct the estimate.
  config::Cluster c = MakeCluster(2);
  c.load_balancer = "p2c_ewma";
  ClusterState state(c, Addresses(c), nullptr);
  state.OnStart(0);
  state.OnEnd(0, 300, true);
  state.OnStart(1);
  state.OnEnd(1, 2000, false);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(state.Pick({}), 0u);
  state.shared().ConnectFailed(1, 0);
  state.Tick(CoarseMonotonicMillis());  // marked down: nothing to forget yet
  for (int i = 0; i < 100; ++i) ASSERT_EQ(state.Pick({}), 0u);
  state.shared().ConnectSucceeded(1);  // back: recoveries(1) moves
  EXPECT_EQ(state.shared().recoveries(1), 1u);
  state.Tick(CoarseMonotonicMillis());
  EXPECT_EQ(state.Pick({}), 1u);  // a new endpoint again: tried at once
}

TEST(ResilienceMetricsTest, RendersEndpointStateAndCounters) {
  config::Cluster c = WithOutlier(2);
  auto s = std::make_shared<ClusterShared>(c, Addresses(c), nullptr);
  s->Report(1, Outcome::kGatewayFailure, 0);
  s->Report(1, Outcome::kGatewayFailure, 0);
  std::vector<std::shared_ptr<ClusterShared>> all{s};
  std::string out;
  RenderResilienceMetrics(all, out);
  EXPECT_THAT(out, HasSubstr("ficus_upstream_endpoint_ejected{cluster=\"app\",endpoint=\"127.0.0.1:"
                             "10001\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("ficus_upstream_endpoint_healthy{cluster=\"app\",endpoint=\"127.0.0.1:"
                             "10000\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("ficus_upstream_ejections_total{cluster=\"app\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("ficus_upstream_breaker_rejections_total{cluster=\"app\",breaker=\""
                             "max_requests\"} 0\n"));
  EXPECT_THAT(out, HasSubstr("# TYPE ficus_upstream_retries_total counter\n"));
}

// A loopback listener answering every connection with `status` (0: accept and say nothing).
class FakeUpstream {
 public:
  explicit FakeUpstream(std::atomic<int>* status) : status_(status) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 64);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        char buf[1024];
        (void)::recv(c, buf, sizeof buf, 0);
        int s = status_->load();
        if (s != 0) {
          std::string r = "HTTP/1.1 " + std::to_string(s) + " X\r\nContent-Length: 0\r\n\r\n";
          (void)::send(c, r.data(), r.size(), MSG_NOSIGNAL);
          ::close(c);
        } else {
          held_.push_back(c);  // hang
        }
      }
    });
  }
  ~FakeUpstream() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
    for (int c : held_) ::close(c);
  }
  uint16_t port() const { return port_; }

 private:
  std::atomic<int>* status_;
  int fd_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<int> held_;
};

bool WaitFor(const std::function<bool()>& p, int ms) {
  for (int i = 0; i < ms / 10; ++i) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p();
}

TEST(MonitorTest, ActiveChecksMarkUnhealthyAndHealthyAgain) {
  std::atomic<int> status{200};
  FakeUpstream up(&status);
  config::Cluster c = MakeCluster(1);
  c.endpoints[0].port = up.port();
  c.health_check.enabled = true;
  c.health_check.interval = config::Duration{20};
  c.health_check.timeout = config::Duration{100};
  c.health_check.healthy_threshold = 1;
  c.health_check.unhealthy_threshold = 2;
  auto shared = std::make_shared<ClusterShared>(c, Addresses(c), nullptr);
  Monitor monitor;
  monitor.SetClusters({shared});
  monitor.Start();
  EXPECT_TRUE(WaitFor([&] { return shared->counters().health_checks_passed.load() >= 2; }, 3000));
  EXPECT_TRUE(shared->healthy(0));
  status = 503;  // an unexpected status fails the check
  EXPECT_TRUE(WaitFor([&] { return !shared->healthy(0); }, 3000));
  status = 204;
  EXPECT_TRUE(WaitFor([&] { return shared->healthy(0); }, 3000));
  status = 0;  // hanging: the timeout fails the check
  EXPECT_TRUE(WaitFor([&] { return !shared->healthy(0); }, 3000));
  monitor.Stop();
}

TEST(MonitorTest, ExpiredEjectionsComeBack) {
  config::Cluster c = WithOutlier(2);
  c.outlier_detection.base_ejection_time = config::Duration{100};
  auto shared = std::make_shared<ClusterShared>(c, Addresses(c), nullptr);
  Monitor monitor;
  monitor.SetClusters({shared});
  monitor.Start();
  shared->Report(0, Outcome::kGatewayFailure, CoarseMonotonicMillis());
  shared->Report(0, Outcome::kGatewayFailure, CoarseMonotonicMillis());
  EXPECT_TRUE(shared->ejected(0));
  EXPECT_TRUE(WaitFor([&] { return !shared->ejected(0); }, 2000));
}

TEST(MonitorTest, AnEndpointMarkedDownByAFailedConnectComesBackWhenItListensAgain) {
  // A port nobody listens on, then a listener on the same port: the monitor's connect probe
  // (no health checks configured) clears the mark within its back-off.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  config::Cluster c = MakeCluster(1);
  c.endpoints[0].port = ntohs(a.sin_port);
  auto shared = std::make_shared<ClusterShared>(c, Addresses(c), nullptr);
  std::atomic<int> events{0};
  Monitor monitor(nullptr, [&](std::string_view kind, const std::string&, std::string) {
    if (kind == "health") ++events;
  });
  monitor.SetClusters({shared});
  monitor.Start();
  shared->ConnectFailed(0, CoarseMonotonicMillis());
  // Bound but not listening: the first probe is refused and the mark stays.
  EXPECT_TRUE(WaitFor([&] { return shared->counters().connect_markdowns.load() == 1; }, 100));
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_TRUE(shared->connect_failed(0));
  ASSERT_EQ(::listen(fd, 16), 0);
  EXPECT_TRUE(WaitFor([&] { return !shared->connect_failed(0); }, 5000));
  EXPECT_TRUE(WaitFor([&] { return events.load() == 2; }, 1000));  // down, then up
  monitor.Stop();
  ::close(fd);
}

TEST(MonitorTest, DnsRefreshReportsNewAddresses) {
  // The config says localhost was 127.0.0.2 when it was loaded; resolving it again gives
  // 127.0.0.1, so the monitor reports the cluster's new addresses (the server then builds a
  // new snapshot, as on a reload).
  config::Cluster c = MakeCluster(2);
  c.endpoints[0].host = "127.0.0.2";
  c.endpoints[0].hostname = "localhost";
  c.dns_refresh = config::Duration{50};
  auto shared = std::make_shared<ClusterShared>(c, Addresses(c), nullptr);
  std::mutex mu;
  std::string cluster;
  std::vector<std::string> hosts;
  Monitor monitor([&](const std::string& name, std::vector<std::string> h) {
    std::lock_guard lock(mu);
    cluster = name;
    hosts = std::move(h);
  });
  monitor.SetClusters({shared});
  monitor.Start();
  EXPECT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !hosts.empty();
      },
      3000));
  monitor.Stop();
  EXPECT_EQ(cluster, "app");
  EXPECT_THAT(hosts, ::testing::ElementsAre("127.0.0.1", "127.0.0.1"));
}

}  // namespace
}  // namespace ficus::upstream
