// The protection policies through policy::Context as the admit phase drives them: config keys
// as read, 429/401/403/503 answers with their fields, shadow mode, state across a reload.
#include "policy/protect.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <tuple>

#include "jwt_keys.h"
#include "policy/internal/auth.h"
#include "policy/internal/concurrency.h"
#include "policy/internal/overload.h"
#include "policy/internal/rate_limit.h"

namespace ficus::policy {
namespace {

using internal::AuthPolicy;
using internal::ConcurrencyPolicy;
using internal::RateLimitPolicy;

std::shared_ptr<const config::Config> Load(const std::string& route_extra,
                                           std::string* error = nullptr) {
  const std::string yaml =
      "listeners: [{ listen: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: app, endpoints: [127.0.0.1:9000] }]\n"
      "routes:\n  - name: api\n    cluster: app\n" +
      route_extra;
  config::LoadResult r = config::LoadString(yaml, "protect.yaml");
  if (error != nullptr) *error = r.errors.empty() ? "" : r.errors[0].ToString();
  if (error == nullptr) {
    EXPECT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  }
  return r.config;
}

// One request as the admit phase would present it.
struct Exchange {
  explicit Exchange(const config::Route& route, std::vector<http::Header> headers = {},
                    std::string_view client = "10.0.0.1", std::string_view query = "",
                    net::Loop* on = nullptr)
      : fields(std::move(headers)) {
    head.headers = fields;
    head.query = query;
    ctx = std::make_unique<Context>(head, route, client, "rid", 0, 0, on ? *on : loop, added,
                                    response_added, nullptr);
  }
  net::Loop loop;
  std::vector<http::Header> fields;
  http::RequestHead head;
  std::string added, response_added;
  std::unique_ptr<Context> ctx;
};

int64_t g_now = 1'000'000'000;
int64_t FakeClock() { return g_now; }

TEST(RateLimitConfig, ReadsTheShapes) {
  auto c = Load("    rate_limit: { key: client_ip, rate: 100/s, burst: 200 }\n");
  ASSERT_EQ(c->routes[0].rate_limits.size(), 1u);
  const config::RateLimit& l = c->routes[0].rate_limits[0];
  EXPECT_EQ(l.name, "default");
  EXPECT_EQ(l.count, 100u);
  EXPECT_EQ(l.period, std::chrono::seconds(1));
  EXPECT_EQ(l.burst, 200u);
  c = Load(
      "    rate_limit:\n"
      "      - { name: per-consumer, key: [consumer, header:X-Tenant], rate: 600/min }\n"
      "      - { name: whole, key: route, rate: 1000/s, shadow: true, headers: true }\n");
  ASSERT_EQ(c->routes[0].rate_limits.size(), 2u);
  EXPECT_EQ(c->routes[0].rate_limits[0].key,
            (std::vector<std::string>{"consumer", "header:x-tenant"}));
  EXPECT_EQ(c->routes[0].rate_limits[0].burst, 600u);
  EXPECT_EQ(c->routes[0].rate_limits[0].period, std::chrono::minutes(1));
  EXPECT_TRUE(c->routes[0].rate_limits[1].shadow);
}

TEST(ConcurrencyConfig, TheRemovedClassSharesSayWhy) {
  std::string error;
  EXPECT_FALSE(Load("    concurrency: { max: 10, critical_reserve: 20% }\n", &error));
  EXPECT_NE(error.find("routes[0].concurrency.critical_reserve"), std::string::npos) << error;
  EXPECT_NE(error.find("was removed"), std::string::npos) << error;
  EXPECT_FALSE(Load("    concurrency: { max: 10, sheddable_max: 0.5 }\n", &error));
  EXPECT_NE(error.find("routes[0].concurrency.sheddable_max"), std::string::npos) << error;
}

TEST(RateLimitConfig, ErrorsNameTheField) {
  std::string error;
  EXPECT_FALSE(Load("    rate_limit: { rate: 100 }\n", &error));
  EXPECT_NE(error.find("routes[0].rate_limit.rate"), std::string::npos) << error;
  EXPECT_NE(error.find("100/s"), std::string::npos) << error;
  EXPECT_FALSE(Load("    rate_limit: { key: cookie, rate: 1/s }\n", &error));
  EXPECT_NE(error.find("is not a key"), std::string::npos) << error;
  EXPECT_FALSE(Load("    rate_limit: [{ rate: 1/s }]\n", &error));
  EXPECT_NE(error.find("needs a name"), std::string::npos) << error;
  EXPECT_FALSE(Load("    concurrency: { queue: 3 }\n", &error));
  EXPECT_NE(error.find("max"), std::string::npos) << error;
  EXPECT_FALSE(Load("    rate_limit: { key: jwt_claim:tenant, rate: 1/s }\n", &error));
  EXPECT_NE(error.find("needs auth.jwt"), std::string::npos) << error;
  EXPECT_FALSE(Load("    auth: { consumers: [a] }\n", &error));
  EXPECT_NE(error.find("names no credential"), std::string::npos) << error;
}

TEST(RateLimit, LimitsWith429AndTheIetfFields) {
  auto c = Load("    rate_limit: { name: per-key, key: header:X-Api-Key, rate: 2/s, burst: 2 }\n");
  RateLimitPolicy p(c->routes[0], nullptr);
  p.set_clock(&FakeClock);
  auto ask = [&](std::string_view key) {
    Exchange ex(c->routes[0], {{"X-Api-Key", key}});
    Decision d = p.Admit(*ex.ctx);
    return std::make_pair(d, ex.response_added);
  };
  EXPECT_EQ(ask("a").first.kind, Decision::Kind::kPass);
  EXPECT_EQ(ask("a").first.kind, Decision::Kind::kPass);
  auto [d, fields] = ask("a");
  ASSERT_EQ(d.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(d.answer.status, 429);
  EXPECT_EQ(d.answer.content_type, "application/problem+json");
  EXPECT_NE(d.answer.body.find("\"status\":429"), std::string_view::npos);
  EXPECT_NE(fields.find("Retry-After: 1\r\n"), std::string::npos) << fields;
  EXPECT_NE(fields.find("RateLimit-Policy: \"per-key\";q=2;w=1\r\n"), std::string::npos);
  EXPECT_NE(fields.find("RateLimit: \"per-key\";r=0;t=1\r\n"), std::string::npos) << fields;
  EXPECT_EQ(ask("b").first.kind, Decision::Kind::kPass);  // another key
  g_now += 500'000'000;                                   // half a second: one more for "a"
  EXPECT_EQ(ask("a").first.kind, Decision::Kind::kPass);
  EXPECT_EQ(ask("a").first.kind, Decision::Kind::kAnswer);
  const auto& cells = p.limits()[0].state->cells;
  EXPECT_EQ(cells[0].allowed.load(), 4u);
  EXPECT_EQ(cells[0].limited.load(), 2u);
}

TEST(RateLimit, AllowedResponsesCarryRateLimitWhenAsked) {
  auto c = Load("    rate_limit: { key: route, rate: 10/s, burst: 5, headers: true }\n");
  RateLimitPolicy p(c->routes[0], nullptr);
  p.set_clock(&FakeClock);
  Exchange ex(c->routes[0]);
  EXPECT_EQ(p.Admit(*ex.ctx).kind, Decision::Kind::kPass);
  EXPECT_NE(ex.response_added.find("RateLimit: \"default\";r=4;t=1\r\n"), std::string::npos)
      << ex.response_added;
}

TEST(RateLimit, ShadowCountsAndPasses) {
  auto c = Load("    rate_limit: { key: client_ip, rate: 1/h, burst: 1, shadow: true }\n");
  RateLimitPolicy p(c->routes[0], nullptr);
  for (int i = 0; i < 5; ++i) {
    Exchange ex(c->routes[0]);
    EXPECT_EQ(p.Admit(*ex.ctx).kind, Decision::Kind::kPass);
    EXPECT_EQ(ex.response_added, "");
  }
  EXPECT_EQ(p.limits()[0].state->cells[0].shadow_limited.load(), 4u);
}

TEST(RateLimit, EveryLimitMustPassAndPrefixesGroupClients) {
  auto c = Load(
      "    rate_limit:\n"
      "      - { name: per-net, key: client_ip, ipv4_prefix: 24, rate: 1/h, burst: 2 }\n"
      "      - { name: all, key: route, rate: 1/h, burst: 3 }\n");
  RateLimitPolicy p(c->routes[0], nullptr);
  auto ask = [&](std::string_view ip) {
    Exchange ex(c->routes[0], {}, ip);
    return p.Admit(*ex.ctx).kind;
  };
  EXPECT_EQ(ask("10.0.0.1"), Decision::Kind::kPass);
  EXPECT_EQ(ask("10.0.0.2"), Decision::Kind::kPass);  // same /24
  EXPECT_EQ(ask("10.0.0.3"), Decision::Kind::kAnswer);
  EXPECT_EQ(ask("10.0.1.1"), Decision::Kind::kPass);    // another /24; the route's third
  EXPECT_EQ(ask("10.0.2.1"), Decision::Kind::kAnswer);  // the route's budget is spent
}

TEST(RateLimit, StateSurvivesAReloadOfTheSameLimit) {
  auto c = Load("    rate_limit: { key: client_ip, rate: 1/h, burst: 1 }\n");
  RateLimitPolicy a(c->routes[0], nullptr);
  Exchange ex(c->routes[0]);
  EXPECT_EQ(a.Admit(*ex.ctx).kind, Decision::Kind::kPass);
  RateLimitPolicy b(c->routes[0], &a);
  Exchange ex2(c->routes[0]);
  EXPECT_EQ(b.Admit(*ex2.ctx).kind, Decision::Kind::kAnswer);
  auto changed = Load("    rate_limit: { key: client_ip, rate: 2/h, burst: 1 }\n");
  RateLimitPolicy d(changed->routes[0], &b);
  Exchange ex3(changed->routes[0]);
  EXPECT_EQ(d.Admit(*ex3.ctx).kind, Decision::Kind::kPass);  // a new limit starts over
}

TEST(RateLimit, QueryAndConsumerKeys) {
  auto c = Load("    rate_limit: { key: [query:k, consumer], rate: 1/h, burst: 1 }\n");
  RateLimitPolicy p(c->routes[0], nullptr);
  auto ask = [&](std::string_view q, std::string_view consumer) {
    Exchange ex(c->routes[0], {}, "10.0.0.1", q);
    ex.ctx->set_consumer(consumer);
    return p.Admit(*ex.ctx).kind;
  };
  EXPECT_EQ(ask("a=1&k=x", "alice"), Decision::Kind::kPass);
  EXPECT_EQ(ask("k=x", "alice"), Decision::Kind::kAnswer);
  EXPECT_EQ(ask("k=x", "bob"), Decision::Kind::kPass);
  EXPECT_EQ(ask("k=y&b=2", "alice"), Decision::Kind::kPass);
}

TEST(Bulkhead, EveryClassTakesAFreeSlotBelowTheLimit) {
  config::ConcurrencyLimit c;
  c.max = 10;
  internal::Bulkhead b(c);
  int taken = 0;
  while (b.TryAcquire()) ++taken;
  EXPECT_EQ(taken, 10);
  b.Release();
  EXPECT_TRUE(b.TryAcquire());
  for (int i = 0; i < 10; ++i) b.Release();
  EXPECT_EQ(b.in_flight(), 0);
}

TEST(Concurrency, BelowTheLimitSheddableRequestsAreAdmitted) {
  auto c = Load("    concurrency: { max: 4, queue: 0, class_header: X-Priority }\n");
  ConcurrencyPolicy p(*c, c->routes[0], nullptr);
  std::vector<std::unique_ptr<Exchange>> in;
  for (int i = 0; i < 4; ++i) {
    in.push_back(std::make_unique<Exchange>(
        c->routes[0], std::vector<http::Header>{{"X-Priority", "sheddable"}}));
    EXPECT_EQ(p.Admit(*in.back()->ctx).kind, Decision::Kind::kPass) << i;
  }
  // At the limit, with no queue, any class is refused: nothing in flight can be taken back.
  Exchange crit(c->routes[0], {{"X-Priority", "critical"}});
  EXPECT_EQ(p.Admit(*crit.ctx).kind, Decision::Kind::kAnswer);
  for (auto& e : in) p.End(*e->ctx, {});
  EXPECT_EQ(p.bulkhead()->in_flight(), 0);
  EXPECT_EQ(p.bulkhead()->by_class[2].admitted.load(), 4u);
}

// Runs `body` on a loop until it returns, with a bounded wait.
void RunOn(net::Loop& loop, std::function<net::Task<void>()> body) {
  net::Spawn([](net::Loop& l, std::function<net::Task<void>()> b) -> net::Task<void> {
    co_await b();
    l.Stop();
  }(loop, std::move(body)));
  loop.Run();
}

TEST(Concurrency, QueuesThenGrantsWhenASlotFrees) {
  auto c = Load("    concurrency: { max: 1, queue: 2, queue_timeout: 5s }\n");
  ConcurrencyPolicy p(*c, c->routes[0], nullptr);
  Exchange first(c->routes[0]);
  ASSERT_EQ(p.Admit(*first.ctx).kind, Decision::Kind::kPass);
  Exchange second(c->routes[0]);
  second.ctx->set_position(0);
  ASSERT_EQ(p.Admit(*second.ctx).kind, Decision::Kind::kWait);
  Decision got;
  auto start = std::chrono::steady_clock::now();
  RunOn(second.loop, [&]() -> net::Task<void> {
    // The first exchange ends from another thread while the second waits.
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      p.End(*first.ctx, {});
    });
    got = co_await p.Wait(*second.ctx);
    t.join();
  });
  EXPECT_EQ(got.kind, Decision::Kind::kPass);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(p.bulkhead()->in_flight(), 1);
  p.End(*second.ctx, {});
  EXPECT_EQ(p.bulkhead()->in_flight(), 0);
}

TEST(Concurrency, QueueTimeoutAnswers503WithRetryAfter) {
  auto c = Load("    concurrency: { max: 1, queue: 2, queue_timeout: 100ms }\n");
  ConcurrencyPolicy p(*c, c->routes[0], nullptr);
  Exchange first(c->routes[0]);
  ASSERT_EQ(p.Admit(*first.ctx).kind, Decision::Kind::kPass);
  Exchange second(c->routes[0]);
  ASSERT_EQ(p.Admit(*second.ctx).kind, Decision::Kind::kWait);
  Decision got;
  RunOn(second.loop, [&]() -> net::Task<void> { got = co_await p.Wait(*second.ctx); });
  ASSERT_EQ(got.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(got.answer.status, 503);
  EXPECT_NE(second.response_added.find("Retry-After: 1\r\n"), std::string::npos);
  EXPECT_EQ(p.bulkhead()->by_class[1].timed_out.load(), 1u);
  p.End(*second.ctx, {});
  EXPECT_EQ(p.bulkhead()->in_flight(), 1);  // the first still holds its slot
  p.End(*first.ctx, {});
  EXPECT_EQ(p.bulkhead()->in_flight(), 0);
}

TEST(Concurrency, AFullQueueShedsSheddableFirst) {
  auto c =
      Load("    concurrency: { max: 1, queue: 1, queue_timeout: 5s, class_header: X-Priority }\n");
  ConcurrencyPolicy p(*c, c->routes[0], nullptr);
  Exchange first(c->routes[0]);
  ASSERT_EQ(p.Admit(*first.ctx).kind, Decision::Kind::kPass);
  net::Loop loop;
  Exchange shed(c->routes[0], {{"X-Priority", "sheddable"}}, "10.0.0.1", "", &loop);
  Exchange crit(c->routes[0], {{"X-Priority", "critical"}}, "10.0.0.1", "", &loop);
  ASSERT_EQ(p.Admit(*shed.ctx).kind, Decision::Kind::kWait);
  ASSERT_EQ(p.Admit(*crit.ctx).kind, Decision::Kind::kWait);
  Decision shed_got, crit_got;
  bool crit_done = false;
  auto wait = [](ConcurrencyPolicy& p, Exchange& e, Decision& out, bool* done) -> net::Task<void> {
    out = co_await p.Wait(*e.ctx);
    if (done != nullptr) *done = true;
  };
  RunOn(loop, [&]() -> net::Task<void> {
    net::Spawn(wait(p, shed, shed_got, nullptr));
    // The critical request displaces the sheddable one from the full queue.
    net::Spawn(wait(p, crit, crit_got, &crit_done));
    EXPECT_EQ(p.bulkhead()->by_class[2].displaced.load(), 1u);
    EXPECT_EQ(p.bulkhead()->queued(), 1);
    std::thread t([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(30));
      p.End(*first.ctx, {});  // the slot goes to the critical waiter
    });
    for (int i = 0; i < 200 && !crit_done; ++i) co_await loop.Sleep(std::chrono::milliseconds(10));
    t.join();
  });
  EXPECT_EQ(crit_got.kind, Decision::Kind::kPass);
  EXPECT_EQ(shed_got.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(shed_got.answer.status, 503);
  EXPECT_EQ(p.bulkhead()->queued(), 0);
  EXPECT_EQ(p.bulkhead()->in_flight(), 1);
}

TEST(Concurrency, AFreedSlotGoesToTheCriticalWaiterFirst) {
  auto c =
      Load("    concurrency: { max: 1, queue: 4, queue_timeout: 5s, class_header: X-Priority }\n");
  ConcurrencyPolicy p(*c, c->routes[0], nullptr);
  Exchange first(c->routes[0]);
  ASSERT_EQ(p.Admit(*first.ctx).kind, Decision::Kind::kPass);
  net::Loop loop;
  Exchange shed(c->routes[0], {{"X-Priority", "sheddable"}}, "10.0.0.1", "", &loop);
  Exchange crit(c->routes[0], {{"X-Priority", "critical"}}, "10.0.0.1", "", &loop);
  // The sheddable request arrived first; both wait (the queue has room for both).
  ASSERT_EQ(p.Admit(*shed.ctx).kind, Decision::Kind::kWait);
  ASSERT_EQ(p.Admit(*crit.ctx).kind, Decision::Kind::kWait);
  Decision shed_got, crit_got;
  bool shed_done = false, crit_done = false;
  auto wait = [](ConcurrencyPolicy& p, Exchange& e, Decision& out, bool* done) -> net::Task<void> {
    out = co_await p.Wait(*e.ctx);
    *done = true;
  };
  RunOn(loop, [&]() -> net::Task<void> {
    net::Spawn(wait(p, shed, shed_got, &shed_done));
    net::Spawn(wait(p, crit, crit_got, &crit_done));
    EXPECT_EQ(p.bulkhead()->queued(), 2);
    p.End(*first.ctx, {});  // the freed slot: the critical waiter's
    for (int i = 0; i < 200 && !crit_done; ++i) co_await loop.Sleep(std::chrono::milliseconds(5));
    EXPECT_TRUE(crit_done);
    EXPECT_FALSE(shed_done);
    p.End(*crit.ctx, {});  // then the sheddable one's
    for (int i = 0; i < 200 && !shed_done; ++i) co_await loop.Sleep(std::chrono::milliseconds(5));
  });
  EXPECT_EQ(crit_got.kind, Decision::Kind::kPass);
  EXPECT_EQ(shed_got.kind, Decision::Kind::kPass);
  EXPECT_EQ(p.bulkhead()->in_flight(), 1);
  p.End(*shed.ctx, {});
  EXPECT_EQ(p.bulkhead()->in_flight(), 0);
}

std::string TempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(Auth, ApiKeysInlineAndFromAFile) {
  const std::string file = TempFile("keys.txt",
                                    "# consumer key\n"
                                    "carol carol-secret-1\n"
                                    "dave sha256:" +
                                        std::string(64, '0') + "\n");
  auto c = Load(
      "    auth:\n"
      "      api_keys: { header: X-Api-Key, query: api_key, file: " +
      file +
      ",\n"
      "                  keys: { alice: alice-secret-1 } }\n"
      "      consumers: [alice, carol]\n");
  ASSERT_TRUE(c->routes[0].auth);
  // The config keeps the key's digest, never the key.
  EXPECT_EQ(c->routes[0].auth->api_keys->keys[0].second.size(), 64u);
  EXPECT_EQ(c->routes[0].auth->api_keys->keys[0].second.find("alice-secret"), std::string::npos);
  AuthPolicy p(c->routes[0], nullptr);
  EXPECT_EQ(p.key_count(), 3u);
  auto ask = [&](std::vector<http::Header> h, std::string_view query = "") {
    Exchange ex(c->routes[0], std::move(h), "10.0.0.1", query);
    Decision d = p.Admit(*ex.ctx);
    return std::make_tuple(d, std::string(ex.ctx->consumer()), ex.response_added);
  };
  auto [ok, who, f1] = ask({{"X-Api-Key", "alice-secret-1"}});
  EXPECT_EQ(ok.kind, Decision::Kind::kPass);
  EXPECT_EQ(who, "alice");
  auto [ok2, who2, f2] = ask({}, "x=1&api_key=carol-secret-1");
  EXPECT_EQ(ok2.kind, Decision::Kind::kPass);
  EXPECT_EQ(who2, "carol");
  auto [bad, w3, fields] = ask({{"X-Api-Key", "wrong-secret"}});
  ASSERT_EQ(bad.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(bad.answer.status, 401);
  EXPECT_NE(fields.find("WWW-Authenticate: ApiKey realm=\"api\""), std::string::npos) << fields;
  auto [missing, w4, f4] = ask({});
  EXPECT_EQ(missing.answer.status, 401);
  auto [two, w5, f5] = ask({{"Authorization", "a"}, {"authorization", "b"}});
  ASSERT_EQ(two.kind, Decision::Kind::kError);
  EXPECT_EQ(two.error.kind, ErrorKind::kBadRequest);
  const auto& cells = p.counters().cells;
  EXPECT_EQ(cells[0].ok.load(), 2u);
  EXPECT_EQ(cells[0].invalid.load(), 1u);
  EXPECT_EQ(cells[0].missing.load(), 1u);
}

TEST(Auth, KeyFileErrorsNameTheLineNotTheKey) {
  const std::string file = TempFile("bad-keys.txt", "erin erin-secret-1 extra\n");
  auto c = Load("    auth: { api_keys: { file: " + file + " } }\n");
  try {
    AuthPolicy p(c->routes[0], nullptr);
    FAIL() << "loaded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(":1:"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("erin-secret"), std::string::npos) << e.what();
  }
}

TEST(Auth, JwtNamesTheConsumerAndConsumersDecide) {
  test_keys::TestKeys keys;
  const std::string jwks = TempFile("jwks.json", keys.Jwks());
  auto c = Load("    auth:\n      jwt: { jwks_file: " + jwks +
                ", issuer: iss, audience: shop }\n      consumers: [alice]\n");
  AuthPolicy p(c->routes[0], nullptr);
  const int64_t now = WallMicros() / 1'000'000;
  auto token = [&](std::string_view sub) {
    return "Bearer " + keys.Sign("RS256", R"({"sub":")" + std::string(sub) +
                                              R"(","iss":"iss","aud":"shop","exp":)" +
                                              std::to_string(now + 60) + "}");
  };
  std::string alice = token("alice"), bob = token("bob");
  Exchange ok(c->routes[0], {{"Authorization", alice}});
  EXPECT_EQ(p.Admit(*ok.ctx).kind, Decision::Kind::kPass);
  EXPECT_EQ(ok.ctx->consumer(), "alice");
  Exchange forbidden(c->routes[0], {{"Authorization", bob}});
  Decision d = p.Admit(*forbidden.ctx);
  ASSERT_EQ(d.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(d.answer.status, 403);
  Exchange bad(c->routes[0], {{"Authorization", "Bearer x.y.z"}});
  d = p.Admit(*bad.ctx);
  EXPECT_EQ(d.answer.status, 401);
  EXPECT_NE(bad.response_added.find("error=\"invalid_token\""), std::string::npos);
}

TEST(Overload, ShedsOverASetPointAndRecovers) {
  auto& m = internal::OverloadMonitor::Get();
  auto c = Load("");
  config::Overload o;
  o.max_open_files = 1'000'000;
  m.Configure(o);
  m.Sample();
  EXPECT_FALSE(m.overloaded());
  EXPECT_GT(m.open_fds(), 0u);
  EXPECT_GT(m.rss_bytes(), 0u);
  internal::OverloadGuard g;
  Exchange ok(c->routes[0]);
  EXPECT_EQ(g.Admit(*ok.ctx).kind, Decision::Kind::kPass);
  o.max_open_files = 0;
  o.max_memory = 1 << 20;  // surely under this test's resident size
  m.Configure(o);
  m.Sample();
  EXPECT_TRUE(m.overloaded());
  Exchange shed(c->routes[0]);
  Decision d = g.Admit(*shed.ctx);
  ASSERT_EQ(d.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(d.answer.status, 503);
  m.Configure({});
  EXPECT_FALSE(m.overloaded());
}

TEST(Metrics, RenderedPerRouteAndLimit) {
  auto c = Load(
      "    rate_limit: { key: route, rate: 1/h, burst: 1 }\n"
      "    concurrency: { max: 4 }\n");
  std::vector<Chain> chains(1);
  BuildContext bc{*c, c->routes[0], 0, nullptr};
  BuildProtectPolicies(bc, chains[0]);
  ASSERT_EQ(chains[0].size(), 2u);
  std::string out;
  RenderProtectMetrics(*c, chains, out);
  EXPECT_NE(out.find("ficus_rate_limit_requests_total{route=\"api\",limit=\"default\",result="
                     "\"allowed\"} 0"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("ficus_concurrency_limit{route=\"api\"} 4"), std::string::npos) << out;
}

}  // namespace
}  // namespace ficus::policy
