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

}  // namespace
}  // namespace ficus::proxy
