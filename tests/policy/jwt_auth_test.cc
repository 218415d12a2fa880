// The verified-token cache (hits, expiry, key set generations, bounds), the `auth.jwt` key set
// settings as read (jwks_file or jwks_url, with clear errors), and an auth policy answering a
// repeated token from its cache. JWKS fetching itself is tested against a real server in
// tests/integration/test_jwks.py.
#include <gtest/gtest.h>

#include <fstream>

#include "base/base.h"
#include "config/config.h"
#include "jwt_keys.h"
#include "policy/internal/auth.h"
#include "policy/internal/token_cache.h"

namespace ficus::policy::internal {
namespace {

TEST(TokenCache, HitsOnlyTheSameTokenOfTheSameGenerationBeforeItExpires) {
  TokenCache c(100);
  EXPECT_EQ(c.capacity(), 128u);
  EXPECT_EQ(c.Find("a.b.c", 0, 1000), nullptr);
  c.Put("a.b.c", 7, 1030, "alice");
  ASSERT_NE(c.Find("a.b.c", 7, 1000), nullptr);
  EXPECT_EQ(*c.Find("a.b.c", 7, 1030), "alice");  // exp + leeway is still valid
  EXPECT_EQ(c.Find("a.b.c", 7, 1031), nullptr);   // expired: verify again (and refuse)
  EXPECT_EQ(c.Find("a.b.c", 8, 1000), nullptr);   // a newer key set: not trusted
  EXPECT_EQ(c.Find("a.b.d", 7, 1000), nullptr);
  EXPECT_EQ(c.Find("a.b.", 7, 1000), nullptr);
  c.Put(std::string(TokenCache::kMaxTokenBytes + 1, 'x'), 7, 2000, "big");
  EXPECT_EQ(c.Find(std::string(TokenCache::kMaxTokenBytes + 1, 'x'), 7, 1000), nullptr);
}

TEST(TokenCache, StaysWithinItsSlots) {
  TokenCache c(16);
  for (int i = 0; i < 10000; ++i) c.Put("t" + std::to_string(i), 1, 5000, "u");
  int kept = 0;
  for (int i = 0; i < 10000; ++i) kept += c.Find("t" + std::to_string(i), 1, 1) != nullptr;
  EXPECT_GT(kept, 0);
  EXPECT_LE(kept, 16);
}

std::shared_ptr<const config::Config> Load(const std::string& jwt, std::string* error) {
  const std::string yaml =
      "listeners: [{ listen: 127.0.0.1:8080 }]\n"
      "clusters: [{ name: app, endpoints: [127.0.0.1:9000] }]\n"
      "routes:\n  - name: api\n    cluster: app\n    auth:\n      jwt: " +
      jwt + "\n";
  config::LoadResult r = config::LoadString(yaml, "jwt.yaml");
  *error = r.errors.empty() ? "" : r.errors[0].ToString();
  return r.config;
}

TEST(JwtConfig, KeySetFromAFileOrAUrl) {
  std::string error;
  auto c = Load(
      "{ jwks_url: 'https://idp.example/.well-known/jwks.json', jwks_refresh: 10m, "
      "jwks_min_refresh: 30s, jwks_timeout: 2s, token_cache: 100 }",
      &error);
  ASSERT_TRUE(c) << error;
  const config::JwtAuth& j = *c->routes[0].auth->jwt;
  EXPECT_EQ(j.jwks_url, "https://idp.example/.well-known/jwks.json");
  EXPECT_EQ(j.jwks_refresh, std::chrono::minutes(10));
  EXPECT_EQ(j.jwks_min_refresh, std::chrono::seconds(30));
  EXPECT_EQ(j.jwks_timeout, std::chrono::seconds(2));
  EXPECT_EQ(j.token_cache, 100u);
  // The YAML /config shows loads back to the same settings.
  auto again = config::LoadString(config::ToRedactedYaml(*c), "again.yaml");
  ASSERT_TRUE(again.errors.empty()) << again.errors[0].ToString();
  EXPECT_EQ(*again.config->routes[0].auth->jwt, j);

  struct Bad {
    const char* jwt;
    const char* says;
  } bad[] = {
      {"{ issuer: x }", "names no key set: set jwks_file"},
      {"{ jwks_file: a.json, jwks_url: 'http://a/' }", "sets both jwks_file and jwks_url"},
      {"{ jwks_url: 'ftp://a/' }", "ftp://a/"},
      {"{ jwks_file: a.json, jwks_refresh: 1m }", "jwks_refresh applies to jwks_url only"},
      {"{ jwks_url: 'http://a/', jwks_refresh: 10ms }", "jwks_refresh"},
      {"{ jwks_url: 'http://a/', token_cache: -1 }", "token_cache"},
  };
  for (const Bad& b : bad) {
    EXPECT_FALSE(Load(b.jwt, &error)) << b.jwt;
    EXPECT_NE(error.find(b.says), std::string::npos) << b.jwt << ": " << error;
    EXPECT_NE(error.find("jwt.yaml:"), std::string::npos) << error;
  }
}

TEST(JwtConfig, ARepeatedTokenIsTakenFromTheCache) {
  test_keys::TestKeys keys;
  const std::string path = ::testing::TempDir() + "jwt_auth_test_jwks.json";
  std::ofstream(path) << keys.Jwks();
  std::string error;
  auto c = Load("{ jwks_file: " + path + " }", &error);
  ASSERT_TRUE(c) << error;
  AuthPolicy p(c->routes[0], nullptr);
  const int64_t now = WallMicros() / 1'000'000;
  const std::string token =
      "Bearer " + keys.Sign("ES256", R"({"sub":"alice","exp":)" + std::to_string(now + 60) + "}");
  auto admit = [&](const std::string& authorization, int worker) {
    std::vector<http::Header> fields = {{"Authorization", authorization}};
    http::RequestHead head;
    head.headers = fields;
    net::Loop loop;
    std::string added, response_added;
    Context ctx(head, c->routes[0], "10.0.0.1", "rid", 0, worker, loop, added, response_added,
                nullptr);
    Decision d = p.Admit(ctx);
    return std::make_pair(d.kind, std::string(ctx.consumer()));
  };
  auto hits = [&] {
    uint64_t n = 0;
    for (const auto& cell : p.counters().cells) n += cell.token_cache_hits.load();
    return n;
  };
  EXPECT_EQ(admit(token, 0), std::make_pair(Decision::Kind::kPass, std::string("alice")));
  EXPECT_EQ(hits(), 0u);
  EXPECT_EQ(admit(token, 0), std::make_pair(Decision::Kind::kPass, std::string("alice")));
  EXPECT_EQ(hits(), 1u);
  EXPECT_EQ(admit(token, 1).first, Decision::Kind::kPass);  // another worker: its own cache
  EXPECT_EQ(hits(), 1u);
  // A token that differs in one signature byte is verified (and refused), never matched.
  std::string tampered = token;
  char& c10 = tampered[tampered.size() - 10];
  c10 = c10 == 'A' ? 'B' : 'A';
  EXPECT_EQ(admit(tampered, 0).first, Decision::Kind::kAnswer);
  EXPECT_EQ(hits(), 1u);
}

}  // namespace
}  // namespace ficus::policy::internal
