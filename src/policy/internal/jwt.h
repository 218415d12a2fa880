// JSON Web Tokens (RFC 7519, JWS compact serialization RFC 7515) verified against a JSON Web
// Key Set (RFC 7517): HS256, RS256 and ES256 with OpenSSL 3. Parsing needs only the standard
// library, Boost.JSON and libcrypto, so the fuzzer (fuzz/jwt_fuzz.cc) compiles this file alone.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

typedef struct evp_pkey_st EVP_PKEY;

namespace ficus::policy::internal {

// One key of a set. The key type decides the algorithm it may verify (an RSA key never checks
// an HS256 token: algorithm confusion), and a key's own "alg", when given, narrows it further.
struct Jwk {
  enum class Type : uint8_t { kRsa, kEc, kOct };
  std::string kid;
  Type type = Type::kRsa;
  std::string alg;                 // empty: any algorithm of its type
  std::shared_ptr<EVP_PKEY> pkey;  // kRsa, kEc
  std::string secret;              // kOct
};

class Jwks {
 public:
  // Parses {"keys":[...]}. Keys of other types or curves, or for other uses ("use":"enc"), are
  // skipped; a set with no usable key is an error. On error: nullopt and *error says why.
  static std::optional<Jwks> Parse(std::string_view json, std::string* error);
  const std::vector<Jwk>& keys() const { return keys_; }

 private:
  std::vector<Jwk> keys_;
};

// What a verified token must also satisfy.
struct JwtRules {
  std::vector<std::string> algorithms = {"RS256", "ES256", "HS256"};
  std::string issuer;                  // empty: any
  std::vector<std::string> audiences;  // empty: any; else "aud" must name one
  int64_t leeway_s = 30;
  std::string consumer_claim = "sub";
};

enum class JwtStatus : uint8_t {
  kOk,
  kMalformed,   // not three base64url parts of JSON, or a claim of the wrong type
  kAlgorithm,   // "none", not allowed, or not the key's
  kUnknownKey,  // no key with that kid (or no kid and not exactly one candidate)
  kBadSignature,
  kExpired,      // exp (+ leeway) passed, or no exp
  kNotYetValid,  // nbf (- leeway) not reached
  kIssuer,
  kAudience,
  kNoConsumer,  // the consumer claim is missing or not a string
};
// For logs and metrics labels ("malformed", "expired", ...): never the token.
const char* JwtStatusName(JwtStatus s);

struct JwtResult {
  JwtStatus status = JwtStatus::kMalformed;
  std::string consumer;  // the consumer claim, when kOk
  int64_t exp = 0;       // the token's exp (unix seconds), when kOk: how long a verdict may be kept
};
JwtResult VerifyJwt(std::string_view token, const Jwks& keys, const JwtRules& rules, int64_t now_s);

// "Bearer <token>" -> the token (scheme case-insensitive), else empty.
std::string_view BearerToken(std::string_view authorization);
// The claim `name` of a token's payload as text (a string as is, a number as written), without
// verifying anything: for a rate-limit key on a route whose auth policy verified the token.
std::string JwtClaim(std::string_view token, std::string_view name);

// base64url without padding (RFC 4648 §5, as JWS uses it); false on any other character.
bool DecodeBase64Url(std::string_view in, std::string* out);

}  // namespace ficus::policy::internal
