// Tests for the admin HTTP server: a real server on an ephemeral loopback port, spoken to over
// plain POSIX sockets: endpoints, methods, framing and keep-alive.
#include "server/internal/admin_server.h"

#include <gtest/gtest.h>

#include "admin_client.h"

namespace ficus::server {
namespace {

using admin_test::AdminServerTest;
using admin_test::Client;
using namespace std::chrono_literals;

TEST_F(AdminServerTest, BindsAnEphemeralPort) {
  StartServer();
  EXPECT_NE(port(), 0);
}

TEST_F(AdminServerTest, Live) {
  StartServer();
  Client c(port());
  auto r = c.Get("/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"live":true})");
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->Header("content-length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->Header("cache-control"), "no-store");
  EXPECT_TRUE(r->Header("date").ends_with(" GMT")) << r->Header("date");
  EXPECT_EQ(r->Header("connection"), "");
}

TEST_F(AdminServerTest, ReadyFollowsTheHandler) {
  StartServer();
  Client c(port());
  auto r = c.Get("/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, R"({"ready":true})");
  ready_ = false;
  r = c.Get("/ready");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, R"({"ready":false})");
  EXPECT_EQ(r->Header("connection"), "");  // 503 here is an answer, not a reason to close
}

TEST_F(AdminServerTest, Config) {
  StartServer();
  Client c(port());
  auto r = c.Get("/config");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/yaml; charset=utf-8");
  EXPECT_EQ(r->body, "workers: 2\nadmin:\n  token: <redacted>\n");
}

TEST_F(AdminServerTest, Metrics) {
  StartServer();
  Client c(port());
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r->body, "# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
  EXPECT_EQ(scrapes_.load(), 1);
}

TEST_F(AdminServerTest, HeadHasTheHeadersOfGetAndNoBody) {
  StartServer();
  Client c(port());
  for (const char* path : {"/live", "/ready", "/config", "/metrics", "/nope"}) {
    SCOPED_TRACE(path);
    auto get = c.Get(path);
    ASSERT_TRUE(get);
    auto head = c.Get(path, "HEAD");
    ASSERT_TRUE(head);
    EXPECT_EQ(head->status, get->status);
    EXPECT_EQ(head->Header("content-length"), get->Header("content-length"));
    EXPECT_EQ(head->Header("content-type"), get->Header("content-type"));
    EXPECT_EQ(head->body, "");
  }
  // Had a HEAD response carried a body, it would be read as the start of this response.
  auto r = c.Get("/live");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(c.leftover(), "");
}

TEST_F(AdminServerTest, UnknownPathIs404WithThePath) {
  StartServer();
  Client c(port());
  auto r = c.Get("/no/such%22thing?x=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->Header("content-type"), "application/json");
  EXPECT_EQ(r->body, R"({"error":"not_found","path":"/no/such%22thing"})");
  r = c.Get("/live/");  // exact paths only
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Get("/live");  // still open
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

TEST_F(AdminServerTest, OtherMethodsAre405WithAllow) {
  StartServer();
  Client c(port());
  for (const char* method : {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"}) {
    SCOPED_TRACE(method);
    auto r = c.Get("/metrics", method);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
    EXPECT_EQ(r->Header("allow"), "GET, HEAD");
    EXPECT_EQ(r->body, std::string(R"({"error":"method_not_allowed","method":")") + method + "\"}");
  }
  EXPECT_EQ(scrapes_.load(), 0);
}

TEST_F(AdminServerTest, KeepAliveServesManyRequestsOnOneConnection) {
  StartServer();
  Client c(port());
  auto a = c.Get("/live");
  auto b = c.Get("/ready");
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(b->status, 200);
  EXPECT_EQ(b->body, R"({"ready":true})");
}

TEST_F(AdminServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartServer();
  Client c(port());
  c.Send(
      "GET /live HTTP/1.1\r\nHost: a\r\n\r\nGET /config HTTP/1.1\r\nHost: a\r\n\r\n"
      "HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n");
  auto r1 = c.Read();
  auto r2 = c.Read();
  auto r3 = c.Read(/*head_request=*/true);
  auto r4 = c.Read();
  ASSERT_TRUE(r1 && r2 && r3 && r4);
  EXPECT_EQ(r1->body, R"({"live":true})");
  EXPECT_EQ(r2->Header("content-type"), "text/yaml; charset=utf-8");
  EXPECT_EQ(r3->status, 200);
  EXPECT_EQ(r4->status, 404);
}

TEST_F(AdminServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  Client c(port());
  auto r = c.Get("/live", "GET", "Connection: close\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->Header("connection"), "close");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(AdminServerTest, Http10) {
  StartServer();
  {
    Client c(port());
    c.Send("GET /live HTTP/1.0\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(c.SeesEof());
  }
  {
    Client c(port());
    c.Send("GET /live HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->Header("connection"), "keep-alive");
    c.Send("GET /ready HTTP/1.0\r\n\r\n");
    r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body, R"({"ready":true})");
  }
}

TEST_F(AdminServerTest, MalformedRequestIs400AndCloses) {
  StartServer();
  for (const char* bad : {"GARBAGE\r\n\r\n", "GET /live HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
                          "GET /live HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
                          "GET /live HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n"}) {
    SCOPED_TRACE(bad);
    Client c(port());
    c.Send(bad);
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
    EXPECT_EQ(r->Header("connection"), "close");
    EXPECT_TRUE(r->body.starts_with(R"({"error":"bad_request","detail":")")) << r->body;
    EXPECT_TRUE(c.SeesEof());
  }
}

TEST_F(AdminServerTest, OversizedHeadIs431) {
  AdminOptions o;
  o.max_head_bytes = 1024;
  StartServer(o);
  Client c(port());
  c.Send("GET /live HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431);
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(AdminServerTest, SmallBodiesAreReadAndDiscarded) {
  StartServer();
  Client c(port());
  c.Send("POST /live HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  c.Send(
      "POST /nope HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  auto after = c.Get("/live");  // the body bytes were not taken for a request
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
}

TEST_F(AdminServerTest, BodyArrivingInPiecesIsDiscarded) {
  StartServer();
  Client c(port());
  c.Send("PUT /config HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234");
  std::this_thread::sleep_for(50ms);
  c.Send("56789GET /live HTTP/1.1\r\nHost: a\r\n\r\n");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, R"({"live":true})");
}

TEST(AdminServerApiTest, ApiHandlerGetsMethodPathQueryBodyAndPeer) {
  std::vector<AdminRequest> seen;
  AdminHandlers h;
  h.api = [&seen](const AdminRequest& req) -> std::optional<AdminResponse> {
    seen.push_back(req);
    if (req.path != "/thing") return std::nullopt;
    AdminResponse r;
    r.status = req.method == "POST" ? 201 : 405;
    r.body = "{}";
    if (r.status == 405) r.allow = "GET, HEAD, POST";
    return r;
  };
  AdminServer s("127.0.0.1", 0, std::move(h));
  s.Start();
  Client c(s.port());
  c.Send(
      "POST /thing?a=1&b=%20 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer t\r\n"
      "Content-Length: 5\r\n\r\nhello");
  auto r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  c.Send(
      "POST /thing HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
  r = c.Read();
  ASSERT_TRUE(r);
  c.Send("PUT /thing HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  r = c.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->Header("allow"), "GET, HEAD, POST");
  r = c.Get("/other");  // the handler declines: 404
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  r = c.Get("/live");  // built-in paths never reach the handler
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  s.Stop();
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].path, "/thing");
  EXPECT_EQ(seen[0].query, "a=1&b=%20");
  EXPECT_EQ(seen[0].body, "hello");
  EXPECT_EQ(seen[0].authorization, "Bearer t");
  EXPECT_EQ(seen[0].peer, "127.0.0.1");
  EXPECT_EQ(seen[1].body, "abcde");  // chunked, decoded
  EXPECT_EQ(seen[2].method, "PUT");
  EXPECT_EQ(seen[3].path, "/other");
}

TEST(AdminApiTest, QueryParam) {
  EXPECT_EQ(QueryParam("a=1&b=two&a=3", "a"), "1");
  EXPECT_EQ(QueryParam("a=1&b=two", "b"), "two");
  EXPECT_EQ(QueryParam("route=my%2Froute+x", "route"), "my/route x");
  EXPECT_EQ(QueryParam("flag&x=1", "flag"), "");
  EXPECT_EQ(QueryParam("x=1", "y"), std::nullopt);
  EXPECT_EQ(QueryParam("", "y"), std::nullopt);
  EXPECT_EQ(QueryParam("x=%4", "x"), std::nullopt);   // truncated escape
  EXPECT_EQ(QueryParam("x=%zz", "x"), std::nullopt);  // not hex
  EXPECT_EQ(QueryParam("%78=5", "x"), "5");           // names are decoded too
}

TEST_F(AdminServerTest, LargeBodiesAre413AndClose) {
  AdminOptions o;
  o.max_body_bytes = 1000;
  StartServer(o);
  {
    Client c(port());
    c.Send("POST /live HTTP/1.1\r\nHost: a\r\nContent-Length: 1001\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_EQ(r->Header("connection"), "close");
  }
  {
    Client c(port());
    c.Send("POST /live HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n" +
           std::string(1001, 'x') + "\r\n0\r\n\r\n");
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 413);
    EXPECT_TRUE(c.SeesEof());
  }
  {
    Client c(port());  // exactly the limit is fine
    c.Send("POST /live HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" +
           std::string(1000, 'x'));
    auto r = c.Read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 405);
  }
}

}  // namespace
}  // namespace ficus::server
