#include "policy/internal/jwt.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include <boost/json.hpp>
#include <cmath>

namespace ficus::policy::internal {

namespace json = boost::json;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};

std::optional<json::object> ParseObject(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string_view StringField(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return {};
  return {v->get_string().data(), v->get_string().size()};
}

// A NumericDate (RFC 7519 §2): a JSON number of seconds; nullopt when absent, *bad when not a
// number.
std::optional<int64_t> DateField(const json::object& o, std::string_view key, bool* bad) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64())
    return v->get_uint64() > INT64_MAX / 2 ? INT64_MAX / 2 : static_cast<int64_t>(v->get_uint64());
  if (v->is_double() && std::isfinite(v->get_double()) && std::fabs(v->get_double()) < 1e15) {
    return static_cast<int64_t>(v->get_double());
  }
  *bad = true;
  return std::nullopt;
}

BIGNUM* Bn(std::string_view b64) {
  std::string raw;
  if (!DecodeBase64Url(b64, &raw) || raw.empty()) return nullptr;
  return BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()),
                   nullptr);
}

EVP_PKEY* FromData(const char* type, OSSL_PARAM* params) {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr);
  if (ctx != nullptr && EVP_PKEY_fromdata_init(ctx) == 1) {
    if (EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) pkey = nullptr;
  }
  EVP_PKEY_CTX_free(ctx);
  return pkey;
}

EVP_PKEY* RsaKey(const json::object& k) {
  BIGNUM* n = Bn(StringField(k, "n"));
  BIGNUM* e = Bn(StringField(k, "e"));
  EVP_PKEY* pkey = nullptr;
  // Keys under 2048 bits are refused, as RFC 7518 §3.3 requires.
  if (n != nullptr && e != nullptr && BN_num_bits(n) >= 2048 && BN_num_bits(n) <= 16384) {
    OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
    if (params != nullptr) pkey = FromData("RSA", params);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
  }
  BN_free(n);
  BN_free(e);
  return pkey;
}

EVP_PKEY* EcKey(const json::object& k) {
  if (StringField(k, "crv") != "P-256") return nullptr;
  std::string x, y;
  if (!DecodeBase64Url(StringField(k, "x"), &x) || !DecodeBase64Url(StringField(k, "y"), &y) ||
      x.size() != 32 || y.size() != 32) {
    return nullptr;
  }
  std::string point = "\x04" + x + y;  // uncompressed SEC 1 point
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  return FromData("EC", params);
}

bool VerifySignature(const Jwk& key, std::string_view alg, std::string_view signed_part,
                     const std::string& sig) {
  const auto* data = reinterpret_cast<const unsigned char*>(signed_part.data());
  if (alg == "HS256") {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (HMAC(EVP_sha256(), key.secret.data(), static_cast<int>(key.secret.size()), data,
             signed_part.size(), md, &len) == nullptr) {
      return false;
    }
    return sig.size() == len && CRYPTO_memcmp(md, sig.data(), len) == 0;
  }
  std::string der;
  const unsigned char* s = reinterpret_cast<const unsigned char*>(sig.data());
  size_t s_len = sig.size();
  if (alg == "ES256") {
    // JWS carries r || s (RFC 7518 §3.4); OpenSSL verifies the DER form.
    if (sig.size() != 64) return false;
    ECDSA_SIG* es = ECDSA_SIG_new();
    BIGNUM* r = BN_bin2bn(s, 32, nullptr);
    BIGNUM* ss = BN_bin2bn(s + 32, 32, nullptr);
    ECDSA_SIG_set0(es, r, ss);
    unsigned char* out = nullptr;
    const int n = i2d_ECDSA_SIG(es, &out);
    ECDSA_SIG_free(es);
    if (n <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), static_cast<size_t>(n));
    OPENSSL_free(out);
    s = reinterpret_cast<const unsigned char*>(der.data());
    s_len = der.size();
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr &&
            EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key.pkey.get()) == 1 &&
            EVP_DigestVerify(ctx, s, s_len, data, signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

bool KeyFits(const Jwk& k, std::string_view alg) {
  const Jwk::Type want = alg == "HS256"   ? Jwk::Type::kOct
                         : alg == "ES256" ? Jwk::Type::kEc
                                          : Jwk::Type::kRsa;
  return k.type == want && (k.alg.empty() || k.alg == alg);
}

bool AudienceMatches(const json::value* aud, const std::vector<std::string>& want) {
  if (want.empty()) return true;
  if (aud == nullptr) return false;
  auto one = [&](const json::value& v) {
    if (!v.is_string()) return false;
    std::string_view s(v.get_string().data(), v.get_string().size());
    for (const std::string& w : want) {
      if (s == w) return true;
    }
    return false;
  };
  if (aud->is_array()) {
    for (const json::value& v : aud->get_array()) {
      if (one(v)) return true;
    }
    return false;
  }
  return one(*aud);
}

}  // namespace

bool DecodeBase64Url(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 == 1) return false;
  out->reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return false;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero: one encoding per byte string.
  return (acc & ((1u << bits) - 1)) == 0;
}

std::optional<Jwks> Jwks::Parse(std::string_view text, std::string* error) {
  std::optional<json::object> root = ParseObject(text);
  const json::value* keys = root ? root->if_contains("keys") : nullptr;
  if (keys == nullptr || !keys->is_array()) {
    *error = "not a JWKS: expected a JSON object with a \"keys\" array";
    return std::nullopt;
  }
  Jwks set;
  for (const json::value& v : keys->get_array()) {
    if (!v.is_object()) continue;
    const json::object& k = v.get_object();
    const std::string_view use = StringField(k, "use");
    if (!use.empty() && use != "sig") continue;
    Jwk jwk;
    jwk.kid = StringField(k, "kid");
    jwk.alg = StringField(k, "alg");
    const std::string_view kty = StringField(k, "kty");
    EVP_PKEY* pkey = nullptr;
    if (kty == "RSA") {
      jwk.type = Jwk::Type::kRsa;
      pkey = RsaKey(k);
      if (pkey == nullptr) continue;
    } else if (kty == "EC") {
      jwk.type = Jwk::Type::kEc;
      pkey = EcKey(k);
      if (pkey == nullptr) continue;
    } else if (kty == "oct") {
      jwk.type = Jwk::Type::kOct;
      // At least the hash's size (RFC 7518 §3.2).
      if (!DecodeBase64Url(StringField(k, "k"), &jwk.secret) || jwk.secret.size() < 32) continue;
    } else {
      continue;
    }
    if (pkey != nullptr) jwk.pkey.reset(pkey, PkeyFree());
    if (!jwk.alg.empty() && !KeyFits(jwk, jwk.alg)) continue;
    set.keys_.push_back(std::move(jwk));
  }
  if (set.keys_.empty()) {
    *error = "the JWKS has no usable key (RSA of 2048+ bits, EC P-256, or oct of 32+ bytes)";
    return std::nullopt;
  }
  return set;
}

const char* JwtStatusName(JwtStatus s) {
  switch (s) {
    case JwtStatus::kOk:
      return "ok";
    case JwtStatus::kMalformed:
      return "malformed";
    case JwtStatus::kAlgorithm:
      return "algorithm";
    case JwtStatus::kUnknownKey:
      return "unknown_key";
    case JwtStatus::kBadSignature:
      return "bad_signature";
    case JwtStatus::kExpired:
      return "expired";
    case JwtStatus::kNotYetValid:
      return "not_yet_valid";
    case JwtStatus::kIssuer:
      return "issuer";
    case JwtStatus::kAudience:
      return "audience";
    case JwtStatus::kNoConsumer:
      return "no_consumer";
  }
  return "malformed";
}

JwtResult VerifyJwt(std::string_view token, const Jwks& keys, const JwtRules& rules,
                    int64_t now_s) {
  JwtResult out;
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos ||
      token.size() > 16384) {
    return out;
  }
  std::string header_text, payload_text, sig;
  if (!DecodeBase64Url(token.substr(0, dot1), &header_text) ||
      !DecodeBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload_text) ||
      !DecodeBase64Url(token.substr(dot2 + 1), &sig)) {
    return out;
  }
  std::optional<json::object> header = ParseObject(header_text);
  if (!header) return out;
  const std::string_view alg = StringField(*header, "alg");
  // "crit" names extensions the token requires the verifier to understand: ficus knows none.
  if (header->if_contains("crit") != nullptr) return out;
  bool allowed = false;
  for (const std::string& a : rules.algorithms) allowed = allowed || a == alg;
  if (alg.empty() || alg == "none" || !allowed) {
    out.status = JwtStatus::kAlgorithm;
    return out;
  }
  const json::value* kid_v = header->if_contains("kid");
  if (kid_v != nullptr && !kid_v->is_string()) return out;
  const std::string_view kid = StringField(*header, "kid");
  const Jwk* key = nullptr;
  int candidates = 0;
  for (const Jwk& k : keys.keys()) {
    if (kid_v != nullptr ? k.kid == kid : KeyFits(k, alg)) {
      key = &k;
      ++candidates;
    }
  }
  if (key == nullptr || candidates != 1) {
    out.status = JwtStatus::kUnknownKey;
    return out;
  }
  if (!KeyFits(*key, alg)) {
    out.status = JwtStatus::kAlgorithm;  // e.g. HS256 against an RSA key
    return out;
  }
  if (!VerifySignature(*key, alg, token.substr(0, dot2), sig)) {
    out.status = JwtStatus::kBadSignature;
    return out;
  }
  std::optional<json::object> claims = ParseObject(payload_text);
  if (!claims) return out;
  bool bad = false;
  const std::optional<int64_t> exp = DateField(*claims, "exp", &bad);
  const std::optional<int64_t> nbf = DateField(*claims, "nbf", &bad);
  if (bad) return out;
  if (!exp || now_s > *exp + rules.leeway_s) {
    out.status = JwtStatus::kExpired;
    return out;
  }
  if (nbf && now_s < *nbf - rules.leeway_s) {
    out.status = JwtStatus::kNotYetValid;
    return out;
  }
  if (!rules.issuer.empty() && StringField(*claims, "iss") != rules.issuer) {
    out.status = JwtStatus::kIssuer;
    return out;
  }
  if (!AudienceMatches(claims->if_contains("aud"), rules.audiences)) {
    out.status = JwtStatus::kAudience;
    return out;
  }
  const std::string_view consumer = StringField(*claims, rules.consumer_claim);
  if (consumer.empty()) {
    out.status = JwtStatus::kNoConsumer;
    return out;
  }
  out.consumer = consumer;
  out.exp = *exp;
  out.status = JwtStatus::kOk;
  return out;
}

std::string_view BearerToken(std::string_view authorization) {
  if (authorization.size() < 7) return {};
  for (size_t i = 0; i < 6; ++i) {
    if ((authorization[i] | 0x20) != "bearer"[i]) return {};
  }
  if (authorization[6] != ' ') return {};
  std::string_view t = authorization.substr(7);
  while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
  return t;
}

std::string JwtClaim(std::string_view token, std::string_view name) {
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  std::string payload;
  if (dot2 == std::string_view::npos ||
      !DecodeBase64Url(token.substr(dot1 + 1, dot2 - dot1 - 1), &payload)) {
    return {};
  }
  std::optional<json::object> claims = ParseObject(payload);
  if (!claims) return {};
  const json::value* v = claims->if_contains(json::string_view(name.data(), name.size()));
  if (v == nullptr) return {};
  if (v->is_string()) return std::string(v->get_string().data(), v->get_string().size());
  if (v->is_number()) return json::serialize(*v);
  return {};
}

}  // namespace ficus::policy::internal
