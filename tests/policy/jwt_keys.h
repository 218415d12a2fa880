// Test keys for the JWT tests: an RSA 2048 key ("rsa"), an EC P-256 key ("ec") and an HMAC
// secret ("hs"), their JWKS, and a signer.
#pragma once

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <string>

namespace ficus::policy::test_keys {

inline std::string B64(std::string_view in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63];
  return out;
}

inline std::string BnB64(EVP_PKEY* k, const char* name, int pad = 0) {
  BIGNUM* bn = nullptr;
  EVP_PKEY_get_bn_param(k, name, &bn);
  std::string raw(static_cast<size_t>(pad > 0 ? pad : BN_num_bytes(bn)), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  BN_free(bn);
  return B64(raw);
}

class TestKeys {
 public:
  TestKeys() : rsa_(EVP_RSA_gen(2048)), ec_(EVP_EC_gen("P-256")), secret_(32, 's') {}
  ~TestKeys() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ec_);
  }
  std::string Jwks() const {
    return R"({"keys":[{"kty":"RSA","kid":"rsa","use":"sig","n":")" +
           BnB64(rsa_, OSSL_PKEY_PARAM_RSA_N) + R"(","e":")" + BnB64(rsa_, OSSL_PKEY_PARAM_RSA_E) +
           R"("},{"kty":"EC","kid":"ec","crv":"P-256","x":")" +
           BnB64(ec_, OSSL_PKEY_PARAM_EC_PUB_X, 32) + R"(","y":")" +
           BnB64(ec_, OSSL_PKEY_PARAM_EC_PUB_Y, 32) + R"("},{"kty":"oct","kid":"hs","k":")" +
           B64(secret_) + R"("}]})";
  }
  std::string RsaPublicPem() const {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(b, rsa_);
    char* p = nullptr;
    long n = BIO_get_mem_data(b, &p);
    std::string out(p, static_cast<size_t>(n));
    BIO_free(b);
    return out;
  }
  // A token signed with the key of `alg` (kid rsa, ec or hs unless `kid` says otherwise).
  std::string Sign(std::string_view alg, const std::string& claims, std::string kid = "") const {
    if (kid.empty()) kid = alg == "RS256" ? "rsa" : alg == "ES256" ? "ec" : "hs";
    const std::string signing =
        B64(R"({"alg":")" + std::string(alg) + R"(","kid":")" + kid + R"(","typ":"JWT"})") + "." +
        B64(claims);
    const auto* data = reinterpret_cast<const unsigned char*>(signing.data());
    std::string sig;
    if (alg == "HS256") {
      unsigned char md[32];
      unsigned int len = 0;
      HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()), data, signing.size(), md,
           &len);
      sig.assign(reinterpret_cast<char*>(md), len);
    } else {
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, alg == "RS256" ? rsa_ : ec_);
      size_t len = 0;
      EVP_DigestSign(ctx, nullptr, &len, data, signing.size());
      sig.resize(len);
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len, data, signing.size());
      sig.resize(len);
      EVP_MD_CTX_free(ctx);
      if (alg == "ES256") {  // DER -> r || s
        const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
        ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
        std::string rs(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(rs.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(rs.data()) + 32, 32);
        ECDSA_SIG_free(es);
        sig = rs;
      }
    }
    return signing + "." + B64(sig);
  }

 private:
  EVP_PKEY* rsa_;
  EVP_PKEY* ec_;
  std::string secret_;
};

}  // namespace ficus::policy::test_keys
