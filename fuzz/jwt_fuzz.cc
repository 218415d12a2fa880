// Fuzzes the JWT and JWKS parsers (src/policy/internal/jwt.h). The first byte picks the input's
// role. Beyond "does not crash":
//  - a token is never accepted unless it verifies against the fixed HMAC key (the fuzzer cannot
//    forge an HMAC-SHA256, so kOk must never come back for a token it made up), and a refused
//    token never names a consumer;
//  - a JWKS either parses with at least one key or says why;
//  - base64url decoding and the unverified claim reader hold for any input.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "policy/internal/jwt.h"

namespace {

using namespace ficus::policy::internal;

const Jwks& FixedKeys() {
  static const Jwks keys = [] {
    std::string error;
    // k = 32 bytes of 'K'.
    return *Jwks::Parse(
        R"({"keys":[{"kty":"oct","kid":"k1","k":"S0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0tLS0s"}]})",
        &error);
  }();
  return keys;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      JwtRules rules;
      JwtResult r = VerifyJwt(in, FixedKeys(), rules, 1'800'000'000);
      FUZZ_CHECK(r.status != JwtStatus::kOk);
      FUZZ_CHECK(r.consumer.empty());
      FUZZ_CHECK(JwtStatusName(r.status)[0] != '\0');
      break;
    }
    case 1: {
      std::string error;
      auto set = Jwks::Parse(in, &error);
      FUZZ_CHECK(set ? !set->keys().empty() : !error.empty());
      break;
    }
    default: {
      std::string out;
      if (DecodeBase64Url(in, &out)) FUZZ_CHECK(out.size() <= in.size());
      (void)JwtClaim(in, "sub");
      (void)BearerToken(in);
      break;
    }
  }
  return 0;
}
