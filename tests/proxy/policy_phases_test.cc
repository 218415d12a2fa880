// The policy interface as the phases run it: a policy that waits, fields added to the response
// whoever answers, End for every admitted policy, a stored answer in the upstream's place, the
// response body sink, and a request body read whole (phase_harness.h).
#include <chrono>
#include <tuple>

#include "phase_harness.h"

namespace ficus::proxy {
namespace {

using namespace phase_test;
using policy::Decision;

// What every test policy records.
struct Journal {
  std::vector<std::string> calls;  // "name:hook"
  std::vector<policy::Outcome> outcomes;
};

// A configurable test policy: its Admit passes, answers, or waits (then answers `wait_answer`
// or passes), it adds the fields it is given, and it records every hook.
class Probe : public policy::Policy {
 public:
  Probe(std::string name, policy::Order order, Journal& j)
      : name_(std::move(name)), order_(order), j_(j) {}
  policy::Order order() const override { return order_; }
  Decision Admit(policy::Context& ctx) override {
    j_.calls.push_back(name_ + ":admit");
    ctx.state() = 7;  // its own word, handed back at End
    if (!response_field.empty()) ctx.AddResponseHeader("X-Probe", response_field);
    if (wait) return Decision::Wait();
    if (answer) return Decision::Respond(*answer);
    return Decision::Pass();
  }
  net::Task<Decision> Wait(policy::Context& ctx) override {
    j_.calls.push_back(name_ + ":wait");
    if (sleep_ms > 0) co_await ctx.loop().Sleep(std::chrono::milliseconds(sleep_ms));
    if (read_body_limit > 0) {
      Result<std::string_view> body = co_await ctx.body_reader()->ReadBody(read_body_limit);
      if (!body) co_return Decision::Refuse(body.error());
      stored_body = std::string(*body);
      co_return Decision::Respond({202, "", "text/plain", stored_body});
    }
    if (answer) co_return Decision::Respond(*answer);
    co_return Decision::Pass();
  }
  Decision OnResponse(policy::Context& ctx, const http::ResponseHead& resp) override {
    j_.calls.push_back(name_ + ":response " + std::to_string(resp.status));
    if (!response_field.empty()) ctx.AddResponseHeader("X-Probe-Upstream", response_field);
    if (sink) ctx.TapResponseBody(sink);
    if (replace_with && resp.status == 304) return Decision::Respond(*replace_with);
    return Decision::Pass();
  }
  void End(policy::Context& ctx, const policy::Outcome& outcome) override {
    j_.calls.push_back(name_ + ":end " + std::to_string(ctx.state()));
    j_.outcomes.push_back(outcome);
  }

  bool wait = false;
  int sleep_ms = 0;
  uint64_t read_body_limit = 0;
  std::optional<policy::Answer> answer;
  std::optional<policy::Answer> replace_with;
  std::string response_field;
  policy::BodySink* sink = nullptr;
  std::string stored_body;

 private:
  std::string name_;
  policy::Order order_;
  Journal& j_;
};

struct CollectingSink : policy::BodySink {
  std::string body;
  int done = 0;
  bool complete = false;
  void Body(std::string_view payload) override { body.append(payload); }
  void Done(bool c) override {
    ++done;
    complete = c;
  }
};

Probe* Add(PhaseTest& t, std::string name, policy::Order order, Journal& j) {
  auto* p = new Probe(std::move(name), order, j);
  t.AddPolicy(std::unique_ptr<policy::Policy>(p));
  return p;
}

TEST(PolicyPhases, AWaitingPolicyIsAwaitedAndItsAnswerGoesOut) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  Journal j;
  Probe* p = Add(t, "limit", policy::Order::kConcurrency, j);
  p->wait = true;
  p->sleep_ms = 20;
  p->answer = policy::Answer{503, "Retry-After: 2\r\n", "text/plain", "busy\n"};
  t.ClientSends(kGet);
  bool keep = false;
  const auto start = std::chrono::steady_clock::now();
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadHead());
    keep = co_await t.RunExchange();
  });
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(20));
  EXPECT_TRUE(keep);
  EXPECT_EQ(j.calls, (std::vector<std::string>{"limit:admit", "limit:wait", "limit:end 7"}));
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 503 Service Unavailable\r\n", 0), 0u) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nbusy\n")) << out;
  ASSERT_EQ(j.outcomes.size(), 1u);
  EXPECT_EQ(j.outcomes[0].status, 503);
  EXPECT_FALSE(j.outcomes[0].upstream_reached);
  EXPECT_TRUE(j.outcomes[0].complete);
}

TEST(PolicyPhases, EndRunsForEveryAdmittedPolicyInReverseAndNotForTheOthers) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  Journal j;
  Add(t, "auth", policy::Order::kAuth, j)->response_field = "a";
  Add(t, "rate", policy::Order::kRateLimit, j)->answer =
      policy::Answer{429, "Retry-After: 1\r\n", "", ""};
  Add(t, "cache", policy::Order::kCache, j);  // never admitted: the rate limit answered
  t.ClientSends(kGet);
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  EXPECT_EQ(j.calls,
            (std::vector<std::string>{"auth:admit", "rate:admit", "rate:end 7", "auth:end 7"}));
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 429 ", 0), 0u) << out;
  // A field a policy added at admit reaches the client on another policy's answer.
  EXPECT_NE(out.find("\r\nX-Probe: a\r\n"), std::string::npos) << out;
}

// The report names the keys ficus limited: a rate limit's 429 and a concurrency limit's 503
// count the request's client key in the route's sketch of limited keys; another policy's 503 (a
// full queue, the overload guard) does not.
TEST(PolicyPhases, ARefusalByALimitCountsTheClientKey) {
  for (const auto& [order, status, counted] : {std::tuple{policy::Order::kRateLimit, 429, true},
                                               std::tuple{policy::Order::kConcurrency, 503, true},
                                               std::tuple{policy::Order::kOffload, 503, false}}) {
    PhaseTest t(Cluster("127.0.0.1:9"));
    Journal j;
    Add(t, "limit", order, j)->answer = policy::Answer{status, "", "", ""};
    t.ClientSends("GET / HTTP/1.1\r\nHost: a\r\nX-Api-Key: scraper\r\n\r\n");
    t.Drive([&]() -> net::Task<void> {
      EXPECT_TRUE(co_await t.ReadHead());
      co_await t.RunExchange();
    });
    ASSERT_NE(t.ex().route_cell, nullptr);
    auto limited = t.ex().route_cell->limited.Take(/*reset=*/false);
    if (!counted) {
      EXPECT_TRUE(limited.empty()) << status;
      continue;
    }
    ASSERT_EQ(limited.size(), 1u) << status;
    EXPECT_EQ(limited[0].key, "key:scraper");
    EXPECT_EQ(limited[0].count, 1u);
  }
}

TEST(PolicyPhases, ResponseFieldsReachTheClientOnTheUpstreamsResponseAndOnErrors) {
  TestUpstream up;
  up.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"};
  {
    PhaseTest t(Cluster(up.endpoint()));
    Journal j;
    Add(t, "rate", policy::Order::kRateLimit, j)->response_field = "r";
    t.ClientSends(kGet);
    t.Drive([&]() -> net::Task<void> {
      net::Spawn(up.Serve(t.loop(), 1));
      EXPECT_TRUE(co_await t.ReadHead());
      co_await t.RunExchange();
    });
    const std::string out = t.ClientReceived();
    EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
    EXPECT_NE(out.find("\r\nX-Probe: r\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("\r\nX-Probe-Upstream: r\r\n"), std::string::npos) << out;
    EXPECT_TRUE(out.ends_with("\r\n\r\nok")) << out;
    ASSERT_EQ(j.outcomes.size(), 1u);
    EXPECT_EQ(j.outcomes[0].status, 200);
    EXPECT_TRUE(j.outcomes[0].upstream_reached);
    EXPECT_TRUE(j.outcomes[0].complete);
  }
  {
    PhaseTest t(Cluster("127.0.0.1:9"));  // nothing listens: 502 from the fail phase
    Journal j;
    Add(t, "rate", policy::Order::kRateLimit, j)->response_field = "e";
    t.ClientSends(kGet);
    t.Drive([&]() -> net::Task<void> {
      EXPECT_TRUE(co_await t.ReadHead());
      co_await t.RunExchange();
    });
    const std::string out = t.ClientReceived();
    EXPECT_EQ(out.rfind("HTTP/1.1 502 ", 0), 0u) << out;
    EXPECT_NE(out.find("\r\nX-Probe: e\r\n"), std::string::npos) << out;
    ASSERT_EQ(j.outcomes.size(), 1u);
    EXPECT_EQ(j.outcomes[0].status, 502);
    EXPECT_FALSE(j.outcomes[0].upstream_reached);
  }
}

TEST(PolicyPhases, APolicyAnswersInTheUpstreamsPlaceAfterA304) {
  TestUpstream up;
  up.answers = {"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"};
  PhaseTest t(Cluster(up.endpoint()));
  Journal j;
  Probe* cache = Add(t, "cache", policy::Order::kCache, j);
  cache->replace_with = policy::Answer{200, "ETag: \"v1\"\r\n", "text/plain", "stored body"};
  t.ClientSends(kGet);
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  const std::string out = t.ClientReceived();
  EXPECT_EQ(out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << out;
  EXPECT_TRUE(out.ends_with("\r\n\r\nstored body")) << out;
  EXPECT_EQ(t.ex().status, 200);
  EXPECT_FALSE(t.ex().pool_ok);  // the upstream's connection is not reused
  EXPECT_EQ(j.calls,
            (std::vector<std::string>{"cache:admit", "cache:response 304", "cache:end 7"}));
}

TEST(PolicyPhases, TheBodySinkGetsThePayloadOfEveryFraming) {
  struct Case {
    const char* upstream;
    const char* payload;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n",
       "hello"},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello", "hello"},
  };
  for (const Case& c : cases) {
    TestUpstream up;
    up.answers = {c.upstream};
    PhaseTest t(Cluster(up.endpoint()));
    Journal j;
    CollectingSink sink;
    Add(t, "cache", policy::Order::kCache, j)->sink = &sink;
    t.ClientSends(kGet);
    t.Drive([&]() -> net::Task<void> {
      net::Spawn(up.Serve(t.loop(), 1));
      EXPECT_TRUE(co_await t.ReadHead());
      co_await t.RunExchange();
    });
    EXPECT_EQ(sink.body, c.payload) << c.upstream;
    EXPECT_EQ(sink.done, 1) << c.upstream;
    EXPECT_TRUE(sink.complete) << c.upstream;
  }
}

TEST(PolicyPhases, ABodyCutShortEndsTheSinkIncomplete) {
  TestUpstream up;
  up.answers = {"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly part"};
  PhaseTest t(Cluster(up.endpoint()));
  Journal j;
  CollectingSink sink;
  Add(t, "cache", policy::Order::kCache, j)->sink = &sink;
  t.ClientSends(kGet);
  t.Drive([&]() -> net::Task<void> {
    net::Spawn(up.Serve(t.loop(), 1));
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  EXPECT_EQ(sink.done, 1);
  EXPECT_FALSE(sink.complete);
  ASSERT_EQ(j.outcomes.size(), 1u);
  EXPECT_FALSE(j.outcomes[0].complete);
}

TEST(PolicyPhases, APolicyReadsTheWholeBodyAndTheNextRequestStillParses) {
  const std::string bodies[] = {
      "POST /jobs HTTP/1.1\r\nHost: shop\r\nContent-Length: 11\r\n\r\nhello world",
      "POST /jobs HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
  };
  for (const std::string& request : bodies) {
    PhaseTest t(Cluster("127.0.0.1:9"));
    Journal j;
    Probe* offload = Add(t, "offload", policy::Order::kOffload, j);
    offload->wait = true;
    offload->read_body_limit = 1024;
    t.ClientSends(request + kGet);  // a pipelined GET follows the body
    bool keep = false;
    bool second = false;
    std::string first_body;
    std::string second_path;
    t.Drive([&]() -> net::Task<void> {
      EXPECT_TRUE(co_await t.ReadHead());
      keep = co_await t.RunExchange();
      first_body = offload->stored_body;
      second = co_await t.ReadHead();
      second_path = std::string(t.ex().head.path);
      // The 202 was held for the pipelined GET's answer (one write for both): the GET's own
      // answer (the probe's 202) sends it.
      if (second) co_await t.RunExchange();
    });
    EXPECT_EQ(first_body, "hello world") << request;
    EXPECT_TRUE(keep) << request;
    EXPECT_TRUE(second) << request;
    EXPECT_EQ(second_path, "/p") << request;
    const std::string out = t.ClientReceived();
    EXPECT_EQ(out.rfind("HTTP/1.1 202 Accepted\r\n", 0), 0u) << out;
    EXPECT_NE(out.find("\r\n\r\nhello worldHTTP/1.1 202 Accepted\r\n"), std::string::npos) << out;
  }
}

TEST(PolicyPhases, ABodyOverThePolicysLimitIs413) {
  PhaseTest t(Cluster("127.0.0.1:9"));
  Journal j;
  Probe* offload = Add(t, "offload", policy::Order::kOffload, j);
  offload->wait = true;
  offload->read_body_limit = 4;
  t.ClientSends("POST /jobs HTTP/1.1\r\nHost: shop\r\nContent-Length: 11\r\n\r\nhello world");
  t.Drive([&]() -> net::Task<void> {
    EXPECT_TRUE(co_await t.ReadHead());
    co_await t.RunExchange();
  });
  EXPECT_EQ(t.ClientReceived().rfind("HTTP/1.1 413 ", 0), 0u);
  EXPECT_TRUE(offload->stored_body.empty());
}

}  // namespace
}  // namespace ficus::proxy
