// The cache policy (cache/) through the real phases: a chunked miss is stored while it is
// relayed (the body sink sees the payload without its framing), and the next request is
// answered from the store without an upstream.
#include "cache/internal/cache_policy.h"
#include "phase_harness.h"

namespace ficus::proxy {
namespace {

using namespace phase_test;

TEST(CachePhases, AChunkedMissIsStoredWhileRelayedAndTheNextRequestIsAHit) {
  TestUpstream up;
  up.answers = {
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/plain\r\n"
      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"};
  PhaseTest t(Cluster(up.endpoint()));
  auto store = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  t.AddPolicy(std::make_unique<cache::CachePolicy>("r", config::Cache{}, store));
  const std::string get = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  t.ClientSends(get);
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  std::string out = t.ClientReceived();
  EXPECT_NE(out.find("Cache-Status: ficus; fwd=uri-miss; fwd-status=200; stored"),
            std::string::npos)
      << out;
  EXPECT_EQ(store->stats().objects.load(), 1);

  // Another connection, and no upstream at all: the answer comes from the store.
  PhaseTest t2(Cluster("127.0.0.1:9"));
  t2.AddPolicy(std::make_unique<cache::CachePolicy>("r", config::Cache{}, store));
  t2.ClientSends(get);
  t2.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t2.ReadHead());
    co_await t2.RunExchange();
  });
  out = t2.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("\r\nContent-Length: 11\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nContent-Type: text/plain\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nCache-Status: ficus; hit; ttl="), std::string::npos) << out;
  EXPECT_NE(out.find("\r\nAge: 0\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("Transfer-Encoding"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nhello world")) << out;
  EXPECT_EQ(up.requests.size(), 1u);
  EXPECT_EQ(store->stats().hits.load(), 1u);
}

// One exchange of `request` on a fresh session whose route caches into `store`; `up` null: the
// cluster is a closed port (every connect is refused).
std::string CachedExchange(const std::string& request, std::shared_ptr<cache::Store> store,
                           TestUpstream* up, const config::Cache& c = {}) {
  PhaseTest t(Cluster(up ? up->endpoint() : "127.0.0.1:9"));
  t.AddPolicy(std::make_unique<cache::CachePolicy>("r", c, store));
  t.ClientSends(request);
  t.Drive([&]() -> net::Task<void> {
    if (up) net::Spawn(up->Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  return t.ClientReceived();
}

TEST(CachePhases, StaleWhileRevalidateAnswersStaleAtOnceAndRefreshesAfterwards) {
  auto store = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  const std::string get = "GET /s HTTP/1.1\r\nHost: h\r\n\r\n";
  TestUpstream first;
  first.answers = {
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=0, stale-while-revalidate=60\r\n"
      "ETag: \"a\"\r\nContent-Length: 3\r\n\r\nold"};
  CachedExchange(get, store, &first);
  TestUpstream second;
  second.answers = {
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"b\"\r\n"
      "Content-Length: 3\r\n\r\nnew"};
  std::string out = CachedExchange(get, store, &second);
  // The client got the stale response, whole, before the refresh went upstream.
  EXPECT_NE(out.find("Cache-Status: ficus; hit; fwd=stale"), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nold")) << out;
  EXPECT_EQ(out.find("new"), std::string::npos) << out;
  ASSERT_EQ(second.requests.size(), 1u);
  EXPECT_NE(second.requests[0].find("\r\nIf-None-Match: \"a\"\r\n"), std::string::npos)
      << second.requests[0];
  EXPECT_EQ(store->stats().stale.load(), 1u);
  // The refresh was stored: the next request is a fresh hit, with no upstream at all.
  out = CachedExchange(get, store, nullptr);
  EXPECT_NE(out.find("Cache-Status: ficus; hit; ttl="), std::string::npos) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nnew")) << out;
}

TEST(CachePhases, StaleIfErrorAnswersWhenTheUpstreamCannotBeReached) {
  auto store = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  const std::string get = "GET /e HTTP/1.1\r\nHost: h\r\n\r\n";
  TestUpstream up;
  up.answers = {
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=0, stale-if-error=60\r\n"
      "Content-Length: 4\r\n\r\nkept"};
  CachedExchange(get, store, &up);
  std::string out = CachedExchange(get, store, nullptr);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Cache-Status: ficus; hit; fwd=stale; detail=connect_failed"),
            std::string::npos)
      << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nkept")) << out;
  // must-revalidate forbids it (RFC 9111 §4.2.4): the error is answered.
  auto strict = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  TestUpstream up2;
  up2.answers = {
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=0, must-revalidate, "
      "stale-if-error=60\r\nContent-Length: 4\r\n\r\nkept"};
  CachedExchange(get, strict, &up2);
  out = CachedExchange(get, strict, nullptr);
  EXPECT_EQ(out.rfind("HTTP/1.1 502 ", 0), 0u) << out;
}

TEST(CachePhases, PipelinedHitsLeaveTogetherAndBeforeAnUpstreamExchange) {
  auto store = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  const std::string get = "GET /p HTTP/1.1\r\nHost: h\r\n\r\n";
  TestUpstream fill;
  fill.answers = {"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 3\r\n\r\nhit"};
  CachedExchange(get, store, &fill);
  // Two hits and a request the upstream answers, sent together (pipelined).
  TestUpstream up;
  up.answers = {"HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 2\r\n\r\nup"};
  PhaseTest t(Cluster(up.endpoint()));
  t.AddPolicy(std::make_unique<cache::CachePolicy>("r", config::Cache{}, store));
  t.ClientSends(get + get + "GET /u HTTP/1.1\r\nHost: h\r\n\r\n");
  std::string after_first, after_second;
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
    after_first = t.ClientReceived();  // held: the next request was already here
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
    after_second = t.ClientReceived();
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();  // goes upstream: the held answers go out first
  });
  EXPECT_EQ(after_first, "");
  EXPECT_EQ(after_second, "");
  const std::string out = t.ClientReceived();
  const size_t first = out.find("\r\n\r\nhit");
  const size_t second = out.find("\r\n\r\nhit", first + 1);
  const size_t third = out.find("\r\n\r\nup");
  ASSERT_NE(first, std::string::npos) << out;
  ASSERT_NE(second, std::string::npos) << out;
  ASSERT_NE(third, std::string::npos) << out;
  EXPECT_LT(second, third);
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_EQ(store->stats().hits.load(), 2u);
  ASSERT_EQ(up.requests.size(), 1u);
}

TEST(CachePhases, APipelinedHitBeforeAnIncompleteHeadIsWrittenBeforeReadingOn) {
  auto store = std::make_shared<cache::Store>(1 << 20, 1 << 16);
  const std::string get = "GET /p HTTP/1.1\r\nHost: h\r\n\r\n";
  TestUpstream fill;
  fill.answers = {"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 3\r\n\r\nhit"};
  CachedExchange(get, store, &fill);
  PhaseTest t(Cluster("127.0.0.1:9"));
  t.AddPolicy(std::make_unique<cache::CachePolicy>("r", config::Cache{}, store));
  t.ClientSends(get + "GET /p HT");  // the second head is not whole yet
  std::string before_rest;
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
    // The session now waits for the rest of the second head, with the first answer written:
    // a client that waits for it before sending more is not deadlocked.
    net::Spawn([](PhaseTest& t, std::string& seen) -> net::Task<void> {
      co_await t.loop().Sleep(std::chrono::milliseconds(50));
      seen = t.ClientReceived();
      t.ClientSends("TP/1.1\r\nHost: h\r\n\r\n");
    }(t, before_rest));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  EXPECT_TRUE(before_rest.ends_with("\r\n\r\nhit")) << before_rest;
  EXPECT_TRUE(t.ClientReceived().ends_with("\r\n\r\nhit"));
  EXPECT_EQ(store->stats().hits.load(), 2u);
}

}  // namespace
}  // namespace ficus::proxy
