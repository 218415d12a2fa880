#include "net/net.h"

#include <gtest/gtest.h>

#include <vector>

namespace ficus::net {
namespace {

struct Probe : TimeoutList::Entry {
  int fired = 0;
  void OnTimeout() override { ++fired; }
};

TEST(TimeoutListTest, FiresOnlyExpiredEntriesOnce) {
  TimeoutList list;
  Probe a, b, c;
  list.Add(&a);
  list.Add(&b);
  list.Add(&c);
  a.SetDeadline(100);
  b.SetDeadline(200);
  // c has no deadline
  list.Sweep(150);
  EXPECT_EQ(a.fired, 1);
  EXPECT_EQ(b.fired, 0);
  EXPECT_EQ(c.fired, 0);
  list.Sweep(1000);  // a's deadline was cleared when it fired
  EXPECT_EQ(a.fired, 1);
  EXPECT_EQ(b.fired, 1);
  EXPECT_EQ(c.fired, 0);
  EXPECT_EQ(list.size(), 3u);
  list.Remove(&b);
  list.Remove(&a);
  list.Remove(&c);
  EXPECT_EQ(list.size(), 0u);
}

TEST(TimeoutListTest, ForEachVisitsAll) {
  TimeoutList list;
  std::vector<Probe> probes(5);
  for (auto& p : probes) list.Add(&p);
  int n = 0;
  list.ForEach([&](TimeoutList::Entry*) { ++n; });
  EXPECT_EQ(n, 5);
  for (auto& p : probes) list.Remove(&p);
}

TEST(NetTest, MakeEndpointRejectsNames) {
  EXPECT_EQ(MakeEndpoint("127.0.0.1", 80).port(), 80);
  EXPECT_TRUE(MakeEndpoint("::1", 8080).address().is_v6());
  EXPECT_THROW(MakeEndpoint("localhost", 80), std::runtime_error);
}

TEST(NetTest, ListenTwiceOnOnePortWithReusePort) {
  asio::io_context io;
  auto a = Listen(io, MakeEndpoint("127.0.0.1", 0));
  uint16_t port = a.local_endpoint().port();
  // A second worker binds the same address: SO_REUSEPORT makes that legal.
  auto b = Listen(io, MakeEndpoint("127.0.0.1", port));
  EXPECT_EQ(b.local_endpoint().port(), port);
}

}  // namespace
}  // namespace ficus::net
