// The cache policy through its phases (Admit, OnResponse, the body sink, End) on a hand-made
// Context: miss then hit, HEAD and conditionals from cache, revalidation with a 304, stale-if-
// error, invalidation, and coalesced misses released by an uncacheable response.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cache/cache.h"
#include "policy_harness.h"

namespace ficus::cache {
namespace {

using policy::Decision;

constexpr const char* kGet = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";

TEST_F(PolicyTest, MissStoresThenHitAnswersWithAgeAndCacheStatus) {
  Result miss = Exchange(kGet,
                         "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n"
                         "Content-Length: 5\r\n\r\n",
                         "hello");
  EXPECT_EQ(miss.decision.kind, Decision::Kind::kPass);
  EXPECT_NE(miss.response_added.find("Cache-Status: ficus; fwd=uri-miss; fwd-status=200; stored"),
            std::string::npos)
      << miss.response_added;
  Result hit = Exchange(kGet, "", "", 1'000'000'000'000 + 5'000);
  ASSERT_EQ(hit.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(hit.decision.answer.status, 200);
  EXPECT_EQ(hit.body, "hello");
  EXPECT_NE(hit.decision.answer.headers.find("ETag: \"v1\""), std::string::npos);
  EXPECT_NE(hit.response_added.find("Age: 5\r\n"), std::string::npos) << hit.response_added;
  EXPECT_NE(hit.response_added.find("Cache-Status: ficus; hit; ttl=55"), std::string::npos);
  EXPECT_EQ(policy_->store()->stats().hits.load(), 1u);

  // HEAD from the stored GET; a matching If-None-Match gets a 304.
  Result head = Exchange("HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(head.decision.kind, Decision::Kind::kAnswer);
  Result cond = Exchange("GET /a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"v0\", \"v1\"\r\n\r\n");
  ASSERT_EQ(cond.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(cond.decision.answer.status, 304);
  EXPECT_NE(cond.decision.answer.headers.find("ETag"), std::string::npos);
}

TEST_F(PolicyTest, UncacheableResponsesPassThroughAndAreNotStored) {
  Result r = Exchange(
      kGet, "HTTP/1.1 200 OK\r\nCache-Control: no-store\r\nContent-Length: 1\r\n\r\n", "x");
  EXPECT_NE(r.response_added.find("detail=no-store"), std::string::npos) << r.response_added;
  EXPECT_EQ(Exchange(kGet).decision.kind, Decision::Kind::kPass);
  // A body cut short is not stored.
  Request req(kGet);
  std::string a, b;
  policy::Context ctx(req.head, route_, "", "id", 1'000'000'000'000, 0, loop_, a, b, nullptr);
  ASSERT_EQ(policy_->Admit(ctx).kind, Decision::Kind::kPass);
  Response resp("HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\n");
  policy_->OnResponse(ctx, resp.head);
  ASSERT_NE(ctx.response_body_sink(), nullptr);
  ctx.response_body_sink()->Body("12345");
  ctx.response_body_sink()->Done(false);
  policy_->End(ctx, {});
  EXPECT_EQ(policy_->store()->stats().objects.load(), 0);
}

TEST_F(PolicyTest, StaleEntriesRevalidateAndA304RefreshesThem) {
  const int64_t t0 = 1'000'000'000'000;
  Exchange(kGet,
           "HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nETag: \"v1\"\r\n"
           "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 2\r\n\r\n",
           "ok", t0);
  Result stale = Exchange(kGet, "", "", t0 + 20'000);
  EXPECT_EQ(stale.decision.kind, Decision::Kind::kPass);
  EXPECT_NE(stale.added.find("If-None-Match: \"v1\"\r\n"), std::string::npos) << stale.added;
  EXPECT_NE(stale.added.find("If-Modified-Since: Sun, 06 Nov 1994"), std::string::npos);
  Result revalidated = Exchange(kGet,
                                "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=100\r\n"
                                "ETag: \"v1\"\r\n\r\n",
                                "", t0 + 20'000);
  ASSERT_EQ(revalidated.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(revalidated.decision.answer.status, 200);
  EXPECT_EQ(revalidated.body, "ok");
  EXPECT_NE(revalidated.decision.answer.headers.find("max-age=100"), std::string::npos);
  // Fresh again (the 304 had no Date: now is its date).
  Result hit = Exchange(kGet, "", "", t0 + 30'000);
  EXPECT_EQ(hit.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(hit.body, "ok");
  EXPECT_EQ(policy_->store()->stats().revalidated.load(), 1u);
}

TEST_F(PolicyTest, AClientsOwn304FreshensTheStoredResponseAndAnotherETagDoesNot) {
  const int64_t t0 = 1'000'000'000'000;
  const std::string stored =
      "HTTP/1.1 200 OK\r\nCache-Control: max-age=10\r\nETag: \"v1\"\r\nContent-Length: 2\r\n\r\n";
  Exchange(kGet, stored, "ok", t0);
  const std::string cond = "GET /a HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"v1\"\r\n\r\n";
  Result r = Exchange(cond,
                      "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=100\r\n"
                      "ETag: \"v1\"\r\n\r\n",
                      "", t0 + 20'000);
  EXPECT_EQ(r.decision.kind, Decision::Kind::kPass);  // the client's 304 is relayed
  EXPECT_TRUE(r.added.empty()) << r.added;            // its own validators, not ours
  Result hit = Exchange(kGet, "", "", t0 + 30'000);
  EXPECT_EQ(hit.decision.kind, Decision::Kind::kAnswer);
  // A 304 naming another representation refreshes nothing.
  Result other = Exchange(kGet,
                          "HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=1000\r\n"
                          "ETag: \"v2\"\r\n\r\n",
                          "", t0 + 200'000);
  EXPECT_EQ(other.decision.kind, Decision::Kind::kPass);
  EXPECT_EQ(policy_->store()->stats().revalidated.load(), 1u);
}

TEST_F(PolicyTest, StaleIfErrorServesTheStoredResponseInPlaceOfA5xx) {
  const int64_t t0 = 1'000'000'000'000;
  Exchange(kGet, "HTTP/1.1 200 OK\r\nCache-Control: max-age=1\r\nContent-Length: 2\r\n\r\n", "ok",
           t0);
  Result r =
      Exchange(kGet, "HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n", "", t0 + 10'000);
  ASSERT_EQ(r.decision.kind, Decision::Kind::kAnswer);
  EXPECT_EQ(r.body, "ok");
  EXPECT_NE(r.response_added.find("fwd=stale; fwd-status=503"), std::string::npos);
}

TEST_F(PolicyTest, UnsafeMethodsInvalidateTheUriAndSameOriginLocation) {
  for (const char* path : {"/a", "/b", "/c"}) {
    Exchange(std::string("GET ") + path + " HTTP/1.1\r\nHost: h\r\n\r\n",
             "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 1\r\n\r\n", "x");
  }
  EXPECT_EQ(policy_->store()->stats().objects.load(), 3);
  Exchange("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 201 Created\r\nLocation: http://h/b\r\nContent-Location: http://evil/c\r\n"
           "Content-Length: 0\r\n\r\n");
  EXPECT_EQ(policy_->store()->stats().objects.load(), 1);  // /c: another origin's word
  // An error response invalidates nothing.
  Exchange("DELETE /c HTTP/1.1\r\nHost: h\r\n\r\n",
           "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(policy_->store()->stats().objects.load(), 1);
}

TEST_F(PolicyTest, ConcurrentMissesWaitAndAnUncacheableAnswerReleasesThem) {
  Request req(kGet);
  std::string a1, b1, a2, b2;
  policy::Context leader(req.head, route_, "", "1", 1'000'000'000'000, 0, loop_, a1, b1, nullptr);
  policy::Context follower(req.head, route_, "", "2", 1'000'000'000'000, 0, loop_, a2, b2, nullptr);
  EXPECT_EQ(policy_->Admit(leader).kind, Decision::Kind::kPass);
  EXPECT_EQ(policy_->Admit(follower).kind, Decision::Kind::kWait);
  Decision waited;
  bool done = false;
  net::Spawn([](CachePolicy& p, policy::Context& ctx, Decision& out, bool& done,
                net::Loop& loop) -> net::Task<void> {
    out = co_await p.Wait(ctx);
    done = true;
    loop.Stop();
  }(*policy_, follower, waited, done, loop_));
  EXPECT_FALSE(done);
  Response resp("HTTP/1.1 200 OK\r\nCache-Control: private\r\nContent-Length: 0\r\n\r\n");
  policy_->OnResponse(leader, resp.head);  // uncacheable: released before the body
  loop_.Run();
  EXPECT_TRUE(done);
  EXPECT_EQ(waited.kind, Decision::Kind::kPass);
  policy_->End(follower, {});
  policy_->End(leader, {});
  // Released, not answered from the fill: it went upstream itself, so it is not coalesced.
  EXPECT_EQ(policy_->store()->stats().coalesced.load(), 0u);
  EXPECT_EQ(policy_->store()->stats().misses.load(), 2u);
}

TEST(BuildTest, AReloadWithTheSameCacheConfigKeepsTheStore) {
  config::Config config;
  config.routes.emplace_back();
  config.routes[0].name = "r";
  config.routes[0].cache = config::Cache{};
  policy::Chain first;
  BuildPolicies({config, config.routes[0], 0, nullptr}, first);
  ASSERT_EQ(first.size(), 1u);
  policy::Chain second;
  BuildPolicies({config, config.routes[0], 0, &first}, second);
  auto store = [](const policy::Chain& c) {
    return static_cast<const CachePolicy&>(*c[0]).store().get();
  };
  EXPECT_EQ(store(first), store(second));
  config.routes[0].cache->max_size *= 2;
  policy::Chain third;
  BuildPolicies({config, config.routes[0], 0, &second}, third);
  EXPECT_NE(store(second), store(third));
  std::string metrics;
  std::vector<policy::Chain> chains;
  chains.push_back(std::move(third));
  RenderMetrics(chains, metrics);
  EXPECT_NE(metrics.find("ficus_cache_hits_total{route=\"r\"} 0"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace ficus::cache
