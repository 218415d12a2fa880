#include "net/net.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace ficus::net {
namespace {

struct Probe : TimeoutList::Entry {
  int fired = 0;
  void OnTimeout() override { ++fired; }
};

// A listener on a loopback port the kernel picks; `at` is where to connect to it.
Socket ListenOnLoopback(Loop& loop, Address* at) {
  Socket listener = Listen(loop, MakeAddress("127.0.0.1", 0));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  EXPECT_EQ(getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
  *at = MakeAddress("127.0.0.1", ntohs(bound.sin_port));
  return listener;
}

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

TEST(NetTest, MakeAddressAcceptsOnlyIpLiterals) {
  EXPECT_EQ(MakeAddress("127.0.0.1", 80).ToString(), "127.0.0.1:80");
  EXPECT_EQ(MakeAddress("::1", 8080).ToString(), "[::1]:8080");
  EXPECT_THROW(MakeAddress("localhost", 80), std::runtime_error);
}

TEST(NetTest, ListenTwiceOnOnePortWithReusePort) {
  Loop loop;
  Address at;
  Socket a = ListenOnLoopback(loop, &at);
  // A second worker binds the same address: SO_REUSEPORT makes that legal.
  Socket b = Listen(loop, at);
  EXPECT_TRUE(b.is_open());
}

// Accept, connect, echo and cancel through the loop, on real loopback sockets.
TEST(LoopTest, EchoesOverLoopbackAndCancelsWaits) {
  Loop loop;
  Address at;
  Socket listener = ListenOnLoopback(loop, &at);

  std::string echoed;
  bool cancelled = false;
  Spawn([](Loop& loop, Socket& listener) -> Task<void> {
    Result<int> fd = co_await listener.Accept();
    if (!fd) co_return;
    Socket server(loop, *fd);
    char buf[64];
    ReadResult r = co_await server.ReadSome({buf, sizeof buf});
    co_await server.WriteAll(std::string_view(buf, r.bytes));
    co_await server.ReadSome({buf, sizeof buf});  // until the client closes
    loop.Stop();  // last one out: every coroutine of the test has finished
  }(loop, listener));
  Spawn([](Loop& loop, const Address& at, std::string& echoed, bool& cancelled) -> Task<void> {
    Socket client;
    ErrorCode ec = co_await client.Connect(loop, at);
    if (ec) co_return;
    co_await client.WriteAll("ping");
    char buf[64];
    ReadResult r = co_await client.ReadSome({buf, sizeof buf});
    echoed.assign(buf, r.bytes);
    // Nothing more will come: a cancelled wait returns Aborted().
    loop.Post([&client] { client.Cancel(); });
    ReadResult again = co_await client.ReadSome({buf, sizeof buf});
    cancelled = again.ec == Aborted();
    client.Close();
  }(loop, at, echoed, cancelled));
  loop.Run();
  EXPECT_EQ(echoed, "ping");
  EXPECT_TRUE(cancelled);
}

TEST(LoopTest, ConnectToAClosedPortFails) {
  Loop loop;
  int port;
  {
    Socket l = Listen(loop, MakeAddress("127.0.0.1", 0));
    sockaddr_in bound{};
    socklen_t len = sizeof bound;
    getsockname(l.fd(), reinterpret_cast<sockaddr*>(&bound), &len);
    port = ntohs(bound.sin_port);
  }  // closed: nothing listens there now
  ErrorCode result;
  Spawn([](Loop& loop, int port, ErrorCode& result) -> Task<void> {
    Socket s;
    result = co_await s.Connect(loop, MakeAddress("127.0.0.1", static_cast<uint16_t>(port)));
    loop.Stop();
  }(loop, port, result));
  loop.Run();
  EXPECT_EQ(result, std::make_error_code(std::errc::connection_refused));
}

// A busy-polling loop still sleeps on timers, still runs work posted from another thread, and
// still stops: the poll only delays the blocking wait, it never replaces it.
TEST(LoopTest, BusyPollKeepsTimersPostsAndStop) {
  Loop loop;
  loop.SetBusyPoll(std::chrono::microseconds(500));
  bool slept = false, posted = false;
  Spawn([](Loop& loop, bool& slept) -> Task<void> {
    co_await loop.Sleep(std::chrono::milliseconds(30));
    slept = true;
  }(loop, slept));
  std::thread poster([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    loop.Post([&] { posted = true; });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    loop.Stop();
  });
  const auto start = std::chrono::steady_clock::now();
  loop.Run();
  poster.join();
  EXPECT_TRUE(slept);
  EXPECT_TRUE(posted);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

// The polling window adapts: polls that run out (nothing arrives while this thread spins, as
// when it shares a CPU with the peer it waits for) shrink it to nothing; polls that find events
// keep it open. Deterministic on a busy machine: every event comes from the loop's own thread,
// so what a poll finds does not depend on scheduling. In the first loop nothing ever arrives;
// in the second each posted function posts the next before the loop waits again, so every
// wait's poll finds the wake-up at once and the window never shrinks.
TEST(LoopTest, BusyPollWindowClosesWhenPollingFindsNothingAndStaysOpenWhenItDoes) {
  {
    Loop loop;
    loop.SetBusyPoll(std::chrono::microseconds(150));
    EXPECT_EQ(loop.busy_poll_window(), std::chrono::microseconds(150));
    int ticks = 0;
    loop.SetTick(std::chrono::milliseconds(1), [&] {
      // Fewer ticks than a probe period after closing: the window must be closed by now.
      if (++ticks == 40) loop.Stop();
    });
    loop.Run();
    EXPECT_EQ(loop.busy_poll_window(), std::chrono::nanoseconds(0));
  }
  {
    Loop loop;
    loop.SetBusyPoll(std::chrono::microseconds(150));
    int rounds = 0, open_rounds = 0;
    std::function<void()> again = [&] {
      if (loop.busy_poll_window() == std::chrono::microseconds(150)) ++open_rounds;
      if (++rounds == 200) {
        loop.Stop();
      } else {
        loop.Post(again);
      }
    };
    loop.Post(again);
    loop.Run();
    EXPECT_EQ(rounds, 200);
    EXPECT_EQ(open_rounds, rounds);
  }
}

// PeekSome shows what is queued without taking it and waits for more than the caller has seen;
// Consume drops bytes. A peek that saw everything clears the readable flag, so Consume must set
// it again when it leaves bytes queued (the read after it would hang otherwise), and a read
// after a whole Consume still gets the bytes that come later.
TEST(LoopTest, PeekSomeWaitsForMoreAndConsumeTakesWhatItShowed) {
  Loop loop;
  Address at;
  Socket listener = ListenOnLoopback(loop, &at);

  Socket server;
  std::vector<std::string> seen;  // what the client observed, in order
  size_t dropped = 0;
  Spawn([](Loop& loop, Socket& listener, Socket& server) -> Task<void> {
    Result<int> fd = co_await listener.Accept();
    if (!fd) co_return;
    server = Socket(loop, *fd);
    co_await server.WriteAll("head|");
  }(loop, listener, server));
  Spawn([](Loop& loop, const Address& at, Socket& server, std::vector<std::string>& seen,
           size_t& dropped) -> Task<void> {
    Socket client;
    if (co_await client.Connect(loop, at)) co_return;
    char buf[64];
    ReadResult r = co_await client.PeekSome({buf, sizeof buf});
    seen.emplace_back(buf, r.bytes);  // "head|"
    // Nothing more is queued: this peek waits until the server writes the rest.
    loop.Post(
        [&server] { Spawn([](Socket& s) -> Task<void> { co_await s.WriteAll("body"); }(server)); });
    r = co_await client.PeekSome({buf, sizeof buf}, r.bytes);
    seen.emplace_back(buf, r.bytes);  // "head|body", all still queued
    dropped = client.Consume(5);      // "head|" only: "body" stays, and reads at once
    r = co_await client.ReadSome({buf, sizeof buf});
    seen.emplace_back(buf, r.bytes);
    // Now a whole peek, consumed whole: the following read must wait for new bytes.
    loop.Post(
        [&server] { Spawn([](Socket& s) -> Task<void> { co_await s.WriteAll("next"); }(server)); });
    r = co_await client.PeekSome({buf, sizeof buf});
    seen.emplace_back(buf, r.bytes);
    dropped += client.Consume(r.bytes);
    loop.Post(
        [&server] { Spawn([](Socket& s) -> Task<void> { co_await s.WriteAll("last"); }(server)); });
    r = co_await client.ReadSome({buf, sizeof buf});
    seen.emplace_back(buf, r.bytes);
    client.Close();
    server.Close();
    loop.Stop();
  }(loop, at, server, seen, dropped));
  loop.Run();
  EXPECT_EQ(seen, (std::vector<std::string>{"head|", "head|body", "body", "next", "last"}));
  EXPECT_EQ(dropped, 9u);
}

}  // namespace
TEST(LoopTest, IsQuietSeesBytesAndEofThatArriveWhileIdle) {
  Loop loop;
  Address at;
  Socket listener = ListenOnLoopback(loop, &at);
  Socket server;
  std::vector<bool> quiet;
  Spawn([](Loop& loop, Socket& listener, Socket& server) -> Task<void> {
    Result<int> fd = co_await listener.Accept();
    if (!fd) co_return;
    server = Socket(loop, *fd);
  }(loop, listener, server));
  Spawn([](Loop& loop, const Address& at, Socket& server, std::vector<bool>& quiet) -> Task<void> {
    Socket client;
    if (co_await client.Connect(loop, at)) co_return;
    co_await loop.Sleep(std::chrono::milliseconds(20));
    quiet.push_back(client.IsQuiet());  // nothing sent yet
    co_await server.WriteAll("x");
    co_await loop.Sleep(std::chrono::milliseconds(150));  // the loop saw the input event
    quiet.push_back(client.InputPending());
    quiet.push_back(client.IsQuiet());  // a stray byte
    char c;
    co_await client.ReadSome({&c, 1});
    quiet.push_back(client.IsQuiet());  // read: quiet again (one peek says so)
    server.Close();
    co_await loop.Sleep(std::chrono::milliseconds(150));
    quiet.push_back(client.IsQuiet());  // EOF
    client.Close();
    loop.Stop();
  }(loop, at, server, quiet));
  loop.Run();
  EXPECT_EQ(quiet, (std::vector<bool>{true, true, false, true, false}));
}

}  // namespace ficus::net
