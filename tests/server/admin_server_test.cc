// Tests for the admin HTTP server: a real server on an ephemeral loopback port, spoken to over
// plain POSIX sockets, and TokenMatches.
#include "server/internal/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/internal/admin_api.h"

namespace ficus::server {
namespace {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A blocking loopback client with a receive timeout, reading HTTP/1.1 responses framed by
// Content-Length (the admin server always sends it).
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads one response; nullopt on EOF/timeout/garbage. `head_request`: no body follows.
  std::optional<HttpResponse> Read(bool head_request = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    HttpResponse r;
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    size_t eol = head.find("\r\n");
    std::string status_line = head.substr(0, eol);
    if (status_line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = eol + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[Lower(line.substr(0, colon))] = value;
      pos = e + 2;
    }
    if (head_request || r.status / 100 == 1) return r;
    size_t length = std::stoul(r.headers.at("content-length"));
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  std::optional<HttpResponse> Get(const std::string& path, const std::string& method = "GET",
                                  const std::string& extra_headers = "") {
    Send(method + " " + path + " HTTP/1.1\r\nHost: admin\r\n" + extra_headers + "\r\n");
    return Read(method == "HEAD");
  }

  // True when the server closed the connection (EOF) with nothing more to read.
  bool SeesEof() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = recv(fd_, &c, 1, 0);
    return n == 0;
  }

  const std::string& leftover() const { return buf_; }

 private:
  bool Fill() {
    char tmp[4096];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminOptions options = {}) {
    AdminHandlers h;
    h.ready = [this] { return ready_.load(); };
    h.config_yaml = [] { return std::string("workers: 2\nadmin:\n  token: <redacted>\n"); };
    h.metrics = [this] {
      ++scrapes_;
      return std::string("# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
    };
    server_ = std::make_unique<AdminServer>("127.0.0.1", 0, std::move(h), options);
    server_->Start();
  }
  uint16_t port() const { return server_->port(); }

  std::atomic<bool> ready_{true};
  std::atomic<int> scrapes_{0};
  std::unique_ptr<AdminServer> server_;
};

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
