#include "upstream/upstream.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

namespace ficus::upstream {
namespace {

TEST(WeightedRoundRobinTest, EqualWeightsCycle) {
  WeightedRoundRobin rr({1, 1, 1});
  EXPECT_EQ(rr.Pick(), 0u);
  EXPECT_EQ(rr.Pick(), 1u);
  EXPECT_EQ(rr.Pick(), 2u);
  EXPECT_EQ(rr.Pick(), 0u);
}

TEST(WeightedRoundRobinTest, WeightsAreExactPerWindowAndSmooth) {
  WeightedRoundRobin rr({5, 1, 1});
  std::map<size_t, int> counts;
  std::string order;
  for (int i = 0; i < 7; ++i) {
    size_t p = rr.Pick();
    ++counts[p];
    order += static_cast<char>('a' + p);
  }
  EXPECT_EQ(counts[0], 5);
  EXPECT_EQ(counts[1], 1);
  EXPECT_EQ(counts[2], 1);
  EXPECT_EQ(order, "aabacaa");  // nginx's smooth sequence, not "aaaaabc"
}

// A pooled connection whose socket is connected and quiet, as the proxy pools them.
struct QuietConnections {
  net::Loop loop;
  std::vector<int> peers;
  std::unique_ptr<Connection> Make() {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    auto c = std::make_unique<Connection>(0);
    c->socket = net::Socket(loop, fds[0]);
    peers.push_back(fds[1]);
    return c;
  }
  ~QuietConnections() {
    for (int fd : peers) close(fd);
  }
};

TEST(EndpointPoolTest, TakesMostRecentAndExpiresOld) {
  QuietConnections q;
  EndpointPool pool;
  auto a = q.Make();
  auto b = q.Make();
  Connection* pb = b.get();
  pool.Put(std::move(a), /*now_ms=*/1000, /*max_idle=*/8);
  pool.Put(std::move(b), 2000, 8);
  EXPECT_EQ(pool.size(), 2u);
  auto got = pool.Take(2500, /*idle_timeout_ms=*/4000);
  EXPECT_EQ(got.get(), pb);  // LIFO: the warmest socket
  EXPECT_EQ(pool.CloseExpired(6000, 4000), 1u);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(EndpointPoolTest, RespectsMaxIdleAndSkipsExpiredOnTake) {
  QuietConnections q;
  EndpointPool pool;
  pool.Put(q.Make(), 0, 1);
  pool.Put(q.Make(), 0, 1);  // over max_idle: closed
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(pool.Take(10'000, 4000), nullptr);  // expired
  EXPECT_EQ(pool.size(), 0u);
}

TEST(EndpointPoolTest, ConnectionsTheUpstreamWroteToOrClosedWhileIdleAreNeverReused) {
  QuietConnections q;
  EndpointPool pool;
  pool.Put(q.Make(), 0, 8);  // peers[0]: stays quiet (the oldest)
  pool.Put(q.Make(), 0, 8);  // peers[1]: will close
  pool.Put(q.Make(), 0, 8);  // peers[2]: will send a stray response (the most recent)
  ASSERT_EQ(write(q.peers[2], "HTTP/1.1 200 OK\r\n", 17), 17);
  close(q.peers[1]);
  q.peers[1] = -1;
  // Let the loop see the input events, as a worker's loop does while connections idle.
  net::Spawn([](net::Loop& loop) -> net::Task<void> {
    co_await loop.Sleep(std::chrono::milliseconds(50));
    loop.Stop();
  }(q.loop));
  q.loop.Run();
  auto got = pool.Take(10, 4000);  // skips the stray bytes and the EOF, finds the quiet one
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_TRUE(got->socket.IsQuiet());
}

config::Cluster TestCluster(std::string_view balancer, size_t endpoints) {
  config::Cluster c;
  c.name = "app";
  c.load_balancer = std::string(balancer);
  for (size_t i = 0; i < endpoints; ++i) {
    config::Endpoint e;
    e.host = "127.0.0.1";
    e.port = static_cast<uint16_t>(3000 + i);
    c.endpoints.push_back(e);
  }
  return c;
}

ClusterState MakeState(std::string_view balancer, size_t endpoints, uint64_t seed = 7) {
  config::Cluster c = TestCluster(balancer, endpoints);
  return ClusterState(c, ResolveEndpoints(c), nullptr, seed);
}

TEST(ClusterStateTest, RoundRobinByDefault) {
  ClusterState s = MakeState("round_robin", 3);
  EXPECT_EQ(s.load_balancer(), "round_robin");
  EXPECT_FALSE(s.wants_latency());
  std::string order;
  for (int i = 0; i < 6; ++i) {
    size_t e = s.Pick(PickContext{});
    s.OnStart(e);
    s.OnEnd(e, 0, true);
    order += static_cast<char>('a' + e);
  }
  EXPECT_EQ(order, "abcabc");
}

TEST(ClusterStateTest, LeastRequestAvoidsBusyEndpoint) {
  ClusterState s = MakeState("least_request", 2);
  EXPECT_EQ(s.load_balancer(), "least_request");
  for (int i = 0; i < 3; ++i) s.OnStart(0);  // three requests held open on endpoint 0
  for (int i = 0; i < 100; ++i) {
    size_t e = s.Pick(PickContext{});
    ASSERT_EQ(e, 1u);  // two endpoints: both are always the candidates
    s.OnStart(e);
    s.OnEnd(e, 0, true);
  }
  for (int i = 0; i < 3; ++i) s.OnEnd(0, 0, true);
  std::map<size_t, int> counts;  // idle again: both share the traffic
  for (int i = 0; i < 200; ++i) ++counts[s.Pick(PickContext{})];
  EXPECT_GT(counts[0], 50);
  EXPECT_GT(counts[1], 50);
}

TEST(ClusterStateTest, LeastRequestSpreadsHeldRequests) {
  ClusterState s = MakeState("least_request", 4);
  std::map<size_t, int> active;
  for (int i = 0; i < 40; ++i) {  // nothing completes: active counts stay close
    size_t e = s.Pick(PickContext{});
    ASSERT_LT(e, 4u);
    s.OnStart(e);
    ++active[e];
  }
  for (const auto& [e, n] : active) EXPECT_LE(n, 15) << e;
}

TEST(ClusterStateTest, P2CEwmaPrefersFastEndpoint) {
  ClusterState s = MakeState("p2c_ewma", 2);
  EXPECT_TRUE(s.wants_latency());
  s.OnStart(0);
  s.OnEnd(0, 50'000, true);  // 50 ms
  s.OnStart(1);
  s.OnEnd(1, 1'000, true);  // 1 ms
  for (int i = 0; i < 100; ++i) {
    size_t e = s.Pick(PickContext{});
    ASSERT_EQ(e, 1u);
    s.OnStart(e);
    s.OnEnd(e, 1'000, true);
  }
}

TEST(ClusterStateTest, P2CEwmaTreatsFailuresAsSlow) {
  ClusterState s = MakeState("p2c_ewma", 2);
  s.OnStart(0);
  s.OnEnd(0, 10, false);  // failed fast: counts as the failure penalty, not as 10 us
  s.OnStart(1);
  s.OnEnd(1, 20'000, true);
  EXPECT_EQ(s.Pick(PickContext{}), 1u);
}

TEST(ClusterStateTest, AdoptPoolsKeepsConnectionsNotBalancerState) {
  ClusterState old_state = MakeState("least_request", 2);
  old_state.pool(0).Put(std::make_unique<Connection>(0), 0, 8);
  for (int i = 0; i < 5; ++i) old_state.OnStart(0);
  ClusterState fresh = MakeState("least_request", 2);
  ASSERT_TRUE(fresh.SameEndpoints(old_state));
  fresh.AdoptPools(old_state);
  EXPECT_EQ(fresh.idle_connections(), 1u);
  std::map<size_t, int> counts;  // the fresh balancer knows nothing of the old actives
  for (int i = 0; i < 200; ++i) ++counts[fresh.Pick(PickContext{})];
  EXPECT_GT(counts[0], 50);
}

}  // namespace
}  // namespace ficus::upstream
