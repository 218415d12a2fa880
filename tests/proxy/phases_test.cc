// Each phase of the request path driven alone (phase_harness.h).
#include "phase_harness.h"

namespace ficus::proxy {
namespace {

using namespace phase_test;

// Answers every request itself.
class Answers429 : public policy::Policy {
 public:
  policy::Order order() const override { return policy::Order::kRateLimit; }
  policy::Decision Admit(policy::Context&) override {
    ++calls;
    return policy::Decision::Respond({429, "Retry-After: 1\r\n", "text/plain", "slow down\n"});
  }
  int calls = 0;
};

// Adds a field for the upstream and lets the request pass.
class AddsHeader : public policy::Policy {
 public:
  policy::Order order() const override { return policy::Order::kAuth; }
  policy::Decision Admit(policy::Context& ctx) override {
    ctx.AddHeader("X-Authenticated-User", "alice");
    return policy::Decision::Pass();
  }
  policy::Decision OnResponse(policy::Context&, const http::ResponseHead& resp) override {
    seen_status = resp.status;
    return policy::Decision::Pass();
  }
  int seen_status = 0;
};

class Refuses : public policy::Policy {
 public:
  policy::Order order() const override { return policy::Order::kConcurrency; }
  policy::Decision Admit(policy::Context&) override {
    return policy::Decision::Refuse(
        Error{ErrorKind::kOverloaded, Side::kInternal, false, "concurrency limit reached"});
  }
};

}  // namespace

// ---- admit -------------------------------------------------------------------------------------

TEST(AdmitPhase, APolicyAnswers429AndTheUpstreamIsNeverAsked) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  auto* answers = new Answers429;
  t.AddPolicy(std::unique_ptr<policy::Policy>(answers));
  t.ClientSends(kGet);
  bool keep = false;
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadHead());
    keep = co_await t.RunExchange();  // the runner: admit answers, forward never runs
  });
  EXPECT_EQ(answers->calls, 1);
  EXPECT_TRUE(keep);
  EXPECT_EQ(t.ex().status, 429);
  EXPECT_EQ(t.ex().cluster, nullptr);  // no cluster was entered
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_NE(out.find("Content-Type: text/plain\r\nContent-Length: 10\r\n"), std::string::npos);
  EXPECT_NE(out.find("X-Request-Id: "), std::string::npos);
  EXPECT_EQ(out.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\nslow down\n")) << out;
}

TEST(AdmitPhase, APolicyAddsAFieldTheUpstreamSees) {
  TestUpstream up;
  up.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"};
  PhaseTest t(Cluster(up.endpoint()));
  auto* adds = new AddsHeader;
  t.AddPolicy(std::unique_ptr<policy::Policy>(adds));
  t.ClientSends(kGet);
  StepResult admitted = Unexpected{Error{}};
  Status forwarded;
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadAndRoute());
    admitted = co_await t.Admit();
    forwarded = co_await t.Forward();
  });
  ASSERT_TRUE(admitted);
  EXPECT_EQ(*admitted, Step::kContinue);
  EXPECT_TRUE(forwarded);
  ASSERT_EQ(up.requests.size(), 1u);
  EXPECT_NE(up.requests[0].find("\r\nX-Authenticated-User: alice\r\n"), std::string::npos)
      << up.requests[0];
  EXPECT_EQ(adds->seen_status, 200);  // the response hook saw the upstream's head
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nok"));
}

TEST(AdmitPhase, APolicyRefusalIsAnErrorForTheFailPhase) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  t.AddPolicy(std::make_unique<Refuses>());
  t.ClientSends(kGet);
  StepResult admitted = Step::kContinue;
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadAndRoute());
    admitted = co_await t.Admit();
    if (!admitted) co_await t.Fail(admitted.error());
  });
  ASSERT_FALSE(admitted);
  EXPECT_EQ(admitted.error().kind, ErrorKind::kOverloaded);
  EXPECT_EQ(t.ClientReceived().rfind("HTTP/1.1 503 ", 0), 0u);
}

// ---- forward ------------------------------------------------------------------------------------

TEST(ForwardPhase, SendsTheRequestAndRelaysTheAnswer) {
  TestUpstream up;
  up.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"};
  PhaseTest t(Cluster(up.endpoint()));
  t.ClientSends("GET /p?q=1 HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-7\r\n\r\n");
  Status forwarded = Unexpected{Error{}};
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadAndRoute());
    forwarded = co_await t.Forward();
  });
  EXPECT_TRUE(forwarded);
  ASSERT_EQ(up.requests.size(), 1u);
  EXPECT_EQ(up.requests[0].rfind("GET /p?q=1 HTTP/1.1\r\nHost: shop\r\n", 0), 0u);
  EXPECT_NE(up.requests[0].find("X-Request-Id: rid-7\r\n"), std::string::npos);
  EXPECT_EQ(t.ex().status, 200);
  EXPECT_TRUE(t.ex().response_started);
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("X-Request-Id: rid-7\r\n"), std::string::npos);
  EXPECT_TRUE(out.ends_with("\r\n\r\nhello"));
}

TEST(ForwardPhase, ARetryableStatusIsRetriedOnTheOtherEndpoint) {
  int order = 0;
  TestUpstream a, b;
  for (TestUpstream* u : {&a, &b}) {
    u->order = &order;  // whichever is asked first answers 503, the other 200
    u->answers = {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"};
  }
  PhaseTest t(
      Cluster(a.endpoint() + ", " + b.endpoint(),
              ", retry: { on: [\"503\"], max_tries: 2, backoff: { base: 1ms, max: 2ms } }"));
  t.ClientSends(kGet);
  Status forwarded = Unexpected{Error{}};
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(a.Serve(t.loop(), 1));
    net::Spawn(b.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadAndRoute());
    forwarded = co_await t.Forward();
  });
  EXPECT_TRUE(forwarded);
  EXPECT_EQ(a.requests.size(), 1u);  // one try each: the retry excluded the endpoint tried
  EXPECT_EQ(b.requests.size(), 1u);
  EXPECT_EQ(t.ex().status, 200);
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("503"), std::string::npos);  // the retried answer never reached the client
}

TEST(ForwardPhase, ConnectFailureIsARetryableUpstreamError) {
  int port = 0;
  ::close(ListenLoopback(&port));  // nothing listens there now
  PhaseTest t(Cluster("127.0.0.1:" + std::to_string(port)));
  t.ClientSends(kGet);
  Status forwarded;
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadAndRoute());
    forwarded = co_await t.Forward();
  });
  ASSERT_FALSE(forwarded);
  EXPECT_EQ(forwarded.error().kind, ErrorKind::kConnectFailed);
  EXPECT_EQ(forwarded.error().side, Side::kUpstream);
  EXPECT_TRUE(forwarded.error().retryable);
  EXPECT_FALSE(t.ex().response_started);
}

// ---- relay --------------------------------------------------------------------------------------

struct Relayed {
  Status status;
  std::string client;  // what the client received
  int exchange_status = 0;
  bool keep_alive = false;
};

// The response phase over canned upstream bytes (the upstream closes after them when `close`).
Relayed Relay(std::string_view upstream_bytes, bool close, std::string_view request = kGet) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  t.ClientSends(request);
  Relayed out;
  std::unique_ptr<upstream::Connection> conn;
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadAndRoute());
    t.EnterCluster();
    conn = t.CannedUpstream(upstream_bytes, close);
    out.status = co_await t.RelayResponse(*conn);
  });
  out.client = t.ClientReceived();
  out.exchange_status = t.ex().status;
  out.keep_alive = t.ex().keep_alive;
  return out;
}

TEST(RelayPhase, EarlyHintsGoFirstThenTheFinalResponse) {
  Relayed r = Relay(
      "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
      false);
  EXPECT_TRUE(r.status);
  EXPECT_EQ(r.exchange_status, 200);
  EXPECT_EQ(r.client.rfind("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 0),
            0u)
      << r.client;
  EXPECT_NE(r.client.find("\r\n\r\nHTTP/1.1 200 OK\r\n"), std::string::npos);
  EXPECT_TRUE(r.client.ends_with("\r\n\r\nhello"));
  EXPECT_TRUE(r.keep_alive);
}

TEST(RelayPhase, NoContentHasNoBodyAndNoLength) {
  Relayed r = Relay("HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n", false);
  EXPECT_TRUE(r.status);
  EXPECT_EQ(r.client.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u) << r.client;
  EXPECT_EQ(r.client.find("Content-Length"), std::string::npos);
  EXPECT_NE(r.client.find("X-A: 1\r\n"), std::string::npos);
  EXPECT_TRUE(r.client.ends_with("\r\n\r\n"));
}

TEST(RelayPhase, NotModifiedEndsAtItsHead) {
  Relayed r =
      Relay("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n", false);
  EXPECT_TRUE(r.status);
  EXPECT_EQ(r.exchange_status, 304);
  EXPECT_EQ(r.client.rfind("HTTP/1.1 304 Not Modified\r\n", 0), 0u) << r.client;
  EXPECT_NE(r.client.find("ETag: \"v1\"\r\n"), std::string::npos);
  EXPECT_TRUE(r.client.ends_with("\r\n\r\n"));  // nothing follows the head
  EXPECT_TRUE(r.keep_alive);
}

TEST(RelayPhase, ChunkedBodyKeepsAllowedTrailersAndDropsForbiddenOnes) {
  Relayed r = Relay(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nX-Checksum: 1\r\nContent-Length: 5\r\n\r\n",
      false);
  EXPECT_TRUE(r.status);
  EXPECT_NE(r.client.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << r.client;
  EXPECT_TRUE(r.client.ends_with("\r\n\r\n5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n")) << r.client;
  EXPECT_TRUE(r.keep_alive);
}

TEST(RelayPhase, ReadToCloseBodyIsRelayedAndTheClientConnectionCloses) {
  Relayed r = Relay("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it", true);
  EXPECT_TRUE(r.status);
  EXPECT_EQ(r.client.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.client;
  EXPECT_NE(r.client.find("Connection: close\r\n"), std::string::npos);
  EXPECT_TRUE(r.client.ends_with("\r\n\r\nall of it"));
  EXPECT_FALSE(r.keep_alive);
}

TEST(RelayPhase, AnUpstreamThatClosesBeforeAnsweringIsRetryable) {
  Relayed r = Relay("", true);
  ASSERT_FALSE(r.status);
  EXPECT_EQ(r.status.error().kind, ErrorKind::kUpstreamReset);
  EXPECT_TRUE(r.status.error().retryable);  // nothing came back: the keep-alive race
  EXPECT_TRUE(r.client.empty());
  Relayed partial = Relay("HTTP/1.1 200 OK\r\nContent-", true);
  ASSERT_FALSE(partial.status);
  EXPECT_FALSE(partial.status.error().retryable);
}

// ---- fail ---------------------------------------------------------------------------------------

TEST(FailPhase, EveryErrorKindBecomesItsStatusAndAJsonBody) {
  for (int k = 0; k <= static_cast<int>(ErrorKind::kConfig); ++k) {
    const auto kind = static_cast<ErrorKind>(k);
    SCOPED_TRACE(std::string(ErrorKindName(kind)));
    PhaseTest t(Cluster("127.0.0.1:9"));
    t.ClientSends("GET /p HTTP/1.1\r\nHost: shop\r\nX-Request-Id: rid-1\r\n\r\n");
    t.Drive([&]() -> net::Task<void> {
      EXPECT_TRUE(co_await t.ReadAndRoute());
      co_await t.Fail(Error{kind, Side::kUpstream, false, "a \"quoted\" reason"});
    });
    const std::string out = t.ClientReceived();
    EXPECT_EQ(t.ex().status, StatusFor(kind));
    if (kind == ErrorKind::kDownstreamClosed) {  // nobody to answer
      EXPECT_TRUE(out.empty());
      EXPECT_FALSE(t.ex().keep_alive);
      continue;
    }
    const std::string status_line = "HTTP/1.1 " + std::to_string(StatusFor(kind)) + " ";
    EXPECT_EQ(out.rfind(status_line, 0), 0u) << out;
    EXPECT_NE(out.find("Content-Type: application/json\r\n"), std::string::npos);
    EXPECT_NE(out.find("X-Request-Id: rid-1\r\n"), std::string::npos);
    const size_t body = out.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos);
    const std::string json = out.substr(body + 4);
    EXPECT_TRUE(IsFlatJsonObject(json)) << json;
    EXPECT_NE(json.find("\"error\":\"" + std::string(ErrorKindName(kind)) + "\""),
              std::string::npos);
    EXPECT_NE(json.find("\"message\":\"a \\\"quoted\\\" reason\""), std::string::npos);
    EXPECT_NE(json.find("\"request_id\":\"rid-1\""), std::string::npos);
    const size_t length = out.find("Content-Length: ");
    ASSERT_NE(length, std::string::npos);
    EXPECT_EQ(std::stoul(out.substr(length + 16)), json.size());
  }
}

TEST(FailPhase, ABufferedBodyIsSkippedUnlessTheRequestWasNotRoutable) {
  const std::string post = "POST /p HTTP/1.1\r\nHost: shop\r\nContent-Length: 4\r\n\r\nbody";
  for (ErrorKind kind : {ErrorKind::kNoRoute, ErrorKind::kConnectFailed}) {
    PhaseTest t(Cluster("127.0.0.1:9"));
    t.ClientSends(post);
    const Side side = kind == ErrorKind::kNoRoute ? Side::kDownstream : Side::kUpstream;
    t.Drive([&]() -> net::Task<void> {
      EXPECT_TRUE(co_await t.ReadAndRoute());
      t.EnterCluster();  // the head is consumed, the body is not
      co_await t.Fail(Error{kind, side, false, "x"});
    });
    EXPECT_TRUE(t.ex().request_body_done);  // skipped either way
    EXPECT_EQ(t.ex().keep_alive, kind != ErrorKind::kNoRoute) << ErrorKindName(kind);
  }
}

TEST(FailPhase, ADownstreamErrorClosesTheConnection) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  t.ClientSends(kGet);
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadAndRoute());
    co_await t.Fail(Error{ErrorKind::kBadRequest, Side::kDownstream, false, "bad"});
  });
  EXPECT_FALSE(t.ex().keep_alive);
  EXPECT_NE(t.ClientReceived().find("Connection: close\r\n"), std::string::npos);
}

}  // namespace ficus::proxy
