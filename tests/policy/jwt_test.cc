// JWT verification against a JWKS: the three algorithms, the time and audience checks, and the
// refusals (alg none, algorithm confusion, unknown kid, malformed tokens).
#include "policy/internal/jwt.h"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <vector>

#include "jwt_keys.h"

namespace ficus::policy::internal {
namespace {

using test_keys::B64;
using test_keys::TestKeys;

constexpr int64_t kNow = 1'800'000'000;

class JwtTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { keys_ = new TestKeys(); }
  static void TearDownTestSuite() { delete keys_; }
  void SetUp() override {
    std::string error;
    auto set = Jwks::Parse(keys_->Jwks(), &error);
    ASSERT_TRUE(set) << error;
    jwks_ = std::move(*set);
    rules_.issuer = "https://issuer";
    rules_.audiences = {"shop"};
  }
  std::string Claims(int64_t exp = kNow + 60) {
    return R"({"sub":"alice","iss":"https://issuer","aud":["x","shop"],"exp":)" +
           std::to_string(exp) + "}";
  }
  static TestKeys* keys_;
  Jwks jwks_;
  JwtRules rules_;
};
TestKeys* JwtTest::keys_ = nullptr;

TEST_F(JwtTest, EachAlgorithmVerifies) {
  for (const char* alg : {"RS256", "ES256", "HS256"}) {
    JwtResult r = VerifyJwt(keys_->Sign(alg, Claims()), jwks_, rules_, kNow);
    EXPECT_EQ(r.status, JwtStatus::kOk) << alg << ": " << JwtStatusName(r.status);
    EXPECT_EQ(r.consumer, "alice");
  }
}

TEST_F(JwtTest, TimeChecksHaveLeeway) {
  rules_.leeway_s = 30;
  EXPECT_EQ(VerifyJwt(keys_->Sign("RS256", Claims(kNow - 20)), jwks_, rules_, kNow).status,
            JwtStatus::kOk);
  EXPECT_EQ(VerifyJwt(keys_->Sign("RS256", Claims(kNow - 31)), jwks_, rules_, kNow).status,
            JwtStatus::kExpired);
  const std::string nbf = R"({"sub":"a","iss":"https://issuer","aud":"shop","exp":)" +
                          std::to_string(kNow + 600) + R"(,"nbf":)" + std::to_string(kNow + 100) +
                          "}";
  EXPECT_EQ(VerifyJwt(keys_->Sign("ES256", nbf), jwks_, rules_, kNow).status,
            JwtStatus::kNotYetValid);
  EXPECT_EQ(VerifyJwt(keys_->Sign("ES256", nbf), jwks_, rules_, kNow + 80).status, JwtStatus::kOk);
  // No exp at all: refused (a token that never expires is not accepted).
  EXPECT_EQ(VerifyJwt(keys_->Sign("HS256", R"({"sub":"a","iss":"https://issuer","aud":"shop"})"),
                      jwks_, rules_, kNow)
                .status,
            JwtStatus::kExpired);
}

TEST_F(JwtTest, IssuerAndAudience) {
  const std::string other_iss =
      R"({"sub":"a","iss":"https://evil","aud":"shop","exp":)" + std::to_string(kNow + 60) + "}";
  EXPECT_EQ(VerifyJwt(keys_->Sign("RS256", other_iss), jwks_, rules_, kNow).status,
            JwtStatus::kIssuer);
  const std::string other_aud =
      R"({"sub":"a","iss":"https://issuer","aud":"admin","exp":)" + std::to_string(kNow + 60) + "}";
  EXPECT_EQ(VerifyJwt(keys_->Sign("RS256", other_aud), jwks_, rules_, kNow).status,
            JwtStatus::kAudience);
}

TEST_F(JwtTest, AlgNoneIsRefused) {
  const std::string token = B64(R"({"alg":"none"})") + "." + B64(Claims()) + ".";
  EXPECT_EQ(VerifyJwt(token, jwks_, rules_, kNow).status, JwtStatus::kAlgorithm);
  const std::string token2 = B64(R"({"alg":"none","kid":"rsa"})") + "." + B64(Claims()) + ".";
  EXPECT_EQ(VerifyJwt(token2, jwks_, rules_, kNow).status, JwtStatus::kAlgorithm);
}

// The classic confusion: an HS256 token whose HMAC key is the RSA key's public text.
TEST_F(JwtTest, AlgorithmConfusionIsRefused) {
  const std::string header = R"({"alg":"HS256","kid":"rsa"})";
  const std::string signing = B64(header) + "." + B64(Claims());
  const std::string pub = keys_->RsaPublicPem();
  unsigned char md[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), pub.data(), static_cast<int>(pub.size()),
       reinterpret_cast<const unsigned char*>(signing.data()), signing.size(), md, &len);
  const std::string token = signing + "." + B64(std::string(reinterpret_cast<char*>(md), len));
  EXPECT_EQ(VerifyJwt(token, jwks_, rules_, kNow).status, JwtStatus::kAlgorithm);
  // An RS256 token presented as ES256 against the EC key's kid.
  std::string rs = keys_->Sign("RS256", Claims());
  const std::string relabeled = B64(R"({"alg":"ES256","kid":"rsa"})") + rs.substr(rs.find('.'));
  EXPECT_EQ(VerifyJwt(relabeled, jwks_, rules_, kNow).status, JwtStatus::kAlgorithm);
}

TEST_F(JwtTest, AlgorithmNotAllowedByTheRoute) {
  rules_.algorithms = {"RS256"};
  EXPECT_EQ(VerifyJwt(keys_->Sign("HS256", Claims()), jwks_, rules_, kNow).status,
            JwtStatus::kAlgorithm);
}

TEST_F(JwtTest, UnknownKidAndBadSignature) {
  std::string token = keys_->Sign("RS256", Claims(), "nope");
  EXPECT_EQ(VerifyJwt(token, jwks_, rules_, kNow).status, JwtStatus::kUnknownKey);
  token = keys_->Sign("RS256", Claims());
  token[token.size() - 5] = token[token.size() - 5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(VerifyJwt(token, jwks_, rules_, kNow).status, JwtStatus::kBadSignature);
  // The payload changed after signing.
  token = keys_->Sign("ES256", Claims());
  const size_t d1 = token.find('.'), d2 = token.rfind('.');
  const std::string forged = token.substr(0, d1 + 1) +
                             B64(R"({"sub":"root","iss":"https://issuer","aud":"shop","exp":)" +
                                 std::to_string(kNow + 60) + "}") +
                             token.substr(d2);
  EXPECT_EQ(VerifyJwt(forged, jwks_, rules_, kNow).status, JwtStatus::kBadSignature);
}

TEST_F(JwtTest, MalformedTokens) {
  for (const std::string& t :
       std::vector<std::string>{"", ".", "..", "a.b.c", "a.b", "a.b.c.d", "!!!.???.###",
                                B64("[]") + "." + B64("{}") + "."}) {
    EXPECT_EQ(VerifyJwt(t, jwks_, rules_, kNow).status, JwtStatus::kMalformed) << t;
  }
  // A claim of the wrong type.
  EXPECT_EQ(VerifyJwt(keys_->Sign("HS256", R"({"sub":"a","exp":"tomorrow"})"), jwks_, rules_, kNow)
                .status,
            JwtStatus::kMalformed);
}

TEST(Jwks, RefusesSetsWithoutUsableKeys) {
  std::string error;
  EXPECT_FALSE(Jwks::Parse("not json", &error));
  EXPECT_FALSE(Jwks::Parse(R"({"keys":[]})", &error));
  EXPECT_FALSE(Jwks::Parse(R"({"keys":[{"kty":"oct","k":"c2hvcnQ"}]})", &error));  // too short
  EXPECT_FALSE(Jwks::Parse(R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})", &error));
  EXPECT_NE(error.find("no usable key"), std::string::npos);
}

TEST(Jwt, Helpers) {
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer  abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
  std::string out;
  EXPECT_TRUE(DecodeBase64Url("aGVsbG8", &out));
  EXPECT_EQ(out, "hello");
  EXPECT_FALSE(DecodeBase64Url("aGVsbG8=", &out));
  EXPECT_FALSE(DecodeBase64Url("a", &out));
  const std::string t = B64("{}") + "." + B64(R"({"tenant":"t1","n":42})") + ".x";
  EXPECT_EQ(JwtClaim(t, "tenant"), "t1");
  EXPECT_EQ(JwtClaim(t, "n"), "42");
  EXPECT_EQ(JwtClaim(t, "missing"), "");
  EXPECT_EQ(JwtClaim("garbage", "tenant"), "");
}

}  // namespace
}  // namespace ficus::policy::internal
