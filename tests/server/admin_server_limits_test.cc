// Tests for the admin HTTP server's limits and lifecycle: POST /config, timeouts, connection
// limits, handler failures, stopping, binding; and TokenMatches.
#include <gtest/gtest.h>

#include "admin_client.h"
#include "server/internal/admin_server.h"

namespace ficus::server {
namespace {

using admin_test::AdminServerTest;
using admin_test::Client;
using namespace std::chrono_literals;

TEST(AdminPostConfigTest, AuthenticatedBodyReachesTheHandler) {
  std::mutex mu;
  std::vector<std::string> bodies;
  AdminHandlers h;
  h.config_yaml = [] { return std::string("workers: 1\n"); };
  h.authorized = [](std::string_view auth) { return TokenMatches(auth, "sixteen-chars-tok"); };
  h.apply_config = [&](std::string_view yaml) -> Outcome<std::string> {
    std::lock_guard lock(mu);
    bodies.emplace_back(yaml);
    if (yaml == "bad") return Failed("{\"applied\":false}");
    return std::string("{\"applied\":true}");
  };
  AdminServer server("127.0.0.1", 0, std::move(h));
  server.Start();
  Client c(server.port());
  // No token, a wrong one: 401, and the handler never runs.
  c.Send("POST /config HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nyaml");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  c.Send(
      "POST /config HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer nope\r\n"
      "Content-Length: 4\r\n\r\nyaml");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  // The body arrives whole, Content-Length or chunked.
  c.Send(
      "POST /config HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer sixteen-chars-tok\r\n"
      "Content-Length: 11\r\n\r\nworkers: 1\n");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "{\"applied\":true}");
  c.Send(
      "POST /config HTTP/1.1\r\nHost: a\r\nAuthorization: bearer  sixteen-chars-tok\r\n"
      "Transfer-Encoding: chunked\r\n\r\n1\r\nb\r\n2\r\nad\r\n0\r\n\r\n");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  // Other methods name POST in Allow.
  r = c.Get("/config", "PUT");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "GET, HEAD, POST");
  server.Stop();
  std::lock_guard lock(mu);
  EXPECT_EQ(bodies, (std::vector<std::string>{"workers: 1\n", "bad"}));
}

TEST_F(AdminServerTest, MalformedChunkedBodyIs400) {
  StartServer();
  Client c(port());
  c.Send("POST /live HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(AdminServerTest, ExpectContinue) {
  StartServer();
  Client c(port());
  c.Send("POST /live HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  auto interim = c.Read();
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  c.Send("abc");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
}

TEST_F(AdminServerTest, PartialHeadTimesOutWith408) {
  AdminOptions o;
  o.head_timeout = 200ms;
  StartServer(o);
  Client c(port());
  auto start = std::chrono::steady_clock::now();
  c.Send("GET /live HTTP/1.1\r\nHost: a\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(AdminServerTest, IdleConnectionIsClosedAfterTheTimeout) {
  AdminOptions o;
  o.head_timeout = 200ms;
  StartServer(o);
  Client c(port());
  auto r = c.Get("/live");
  ASSERT_TRUE(r);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.SeesEof());  // no 408 for a connection that was only idle
  EXPECT_GE(std::chrono::steady_clock::now() - start, 150ms);
}

TEST_F(AdminServerTest, ConnectionsOverTheLimitGet503) {
  AdminOptions o;
  o.max_connections = 2;
  StartServer(o);
  Client a(port());
  Client b(port());
  ASSERT_TRUE(a.Get("/live"));  // both surely accepted
  ASSERT_TRUE(b.Get("/live"));
  {
    Client c(port());
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->body, R"({"error":"too_many_connections"})");
    EXPECT_TRUE(c.SeesEof());
  }
  EXPECT_TRUE(a.Get("/live"));  // the admitted ones still work
  // Once one closes, a new connection is served again.
  a.Send("GET /live HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(a.Read());
  ASSERT_TRUE(a.SeesEof());
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    Client d(port());
    auto r = d.Get("/live");
    served = r && r->status == 200;
    if (!served) std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(served);
}

TEST_F(AdminServerTest, HandlerExceptionIs500AndTheServerKeepsServing) {
  AdminHandlers h;
  h.metrics = []() -> std::string { throw std::runtime_error("boom"); };
  AdminServer s("127.0.0.1", 0, std::move(h));
  s.Start();
  Client c(s.port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, R"({"error":"internal"})");
  r = c.Get("/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(AdminServerTest, UnsetHandlers) {
  AdminServer s("127.0.0.1", 0, AdminHandlers{});
  s.Start();
  Client c(s.port());
  auto r = c.Get("/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  r = c.Get("/config");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, R"({"error":"unavailable"})");
  r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
}

TEST_F(AdminServerTest, StopClosesConnectionsAndJoins) {
  StartServer();
  Client idle(port());
  ASSERT_TRUE(idle.Get("/live"));
  Client partial(port());
  partial.Send("GET /li");
  Client fresh(port());  // connected, nothing sent
  // Accepted in order: once this is answered, the two above are accepted connections too
  // (rather than in the listen backlog, which closing the listener resets).
  Client probe(port());
  ASSERT_TRUE(probe.Get("/live"));
  uint16_t p = port();
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_TRUE(idle.SeesEof());
  EXPECT_TRUE(partial.SeesEof());
  EXPECT_TRUE(fresh.SeesEof());
  Client after(p);
  EXPECT_FALSE(after.connected());
  server_->Stop();  // idempotent
  server_.reset();  // and the destructor after Stop
}

TEST(AdminServerLifecycleTest, StopWithoutStartAndDestroyWithoutStop) {
  {
    AdminServer s("127.0.0.1", 0, AdminHandlers{});
    s.Stop();
  }
  {
    AdminServer s("127.0.0.1", 0, AdminHandlers{});
    s.Start();
    Client c(s.port());
    ASSERT_TRUE(c.Get("/live"));
  }  // ~AdminServer stops and joins
  { AdminServer s("127.0.0.1", 0, AdminHandlers{}); }
}

TEST(AdminServerLifecycleTest, BindFailureNamesTheAddress) {
  AdminServer first("127.0.0.1", 0, AdminHandlers{});
  const std::string want =
      "admin listen 127.0.0.1:" + std::to_string(first.port()) + ": Address already in use";
  try {
    AdminServer second("127.0.0.1", first.port(), AdminHandlers{});
    FAIL() << "second bind succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), want);
  }
}

TEST(AdminServerLifecycleTest, InvalidAddress) {
  try {
    AdminServer s("not-an-ip", 9901, AdminHandlers{});
    FAIL() << "constructed";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "admin listen not-an-ip:9901: not an IP address");
  }
}

TEST(AdminServerLifecycleTest, Ipv6Loopback) {
  std::unique_ptr<AdminServer> s;
  try {
    s = std::make_unique<AdminServer>("::1", 0, AdminHandlers{});
  } catch (const std::runtime_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  s->Start();
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(s->port());
  sa.sin6_addr = in6addr_loopback;
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  std::string req = "GET /live HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string got;
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof buf, 0)) > 0) got.append(buf, static_cast<size_t>(n));
  close(fd);
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_TRUE(got.ends_with(R"({"live":true})")) << got;
}

// --- TokenMatches ----------------------------------------------------------------------------

TEST(TokenMatchesTest, AcceptsExactlyBearerAndTheToken) {
  EXPECT_TRUE(TokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(TokenMatches("bearer s3cret", "s3cret"));  // the scheme is case-insensitive
  EXPECT_TRUE(TokenMatches("BEARER   s3cret", "s3cret"));
}

TEST(TokenMatchesTest, RejectsEverythingElse) {
  EXPECT_FALSE(TokenMatches("Bearer s3cret", ""));  // no token configured: nothing matches
  EXPECT_FALSE(TokenMatches("Bearer ", ""));
  EXPECT_FALSE(TokenMatches("", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer ", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearers3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer s3crett", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer S3cret", "s3cret"));  // the token is case-sensitive
  EXPECT_FALSE(TokenMatches("Bearer s3creT", "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer s3cret x", "s3cret"));
  EXPECT_FALSE(TokenMatches(std::string_view("Bearer s3cre\0", 13), "s3cret"));
  EXPECT_FALSE(TokenMatches("Bearer s3cret", std::string_view("s3cret\0", 7)));
}

}  // namespace
}  // namespace ficus::server
