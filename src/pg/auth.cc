// SCRAM-SHA-256 both ways and the md5 response (internal/auth.h).
#include "pg/internal/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cctype>
#include <charconv>

namespace ficus::pg::internal {

namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha256(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string SaltedPassword(std::string_view password, std::string_view salt, uint32_t iterations) {
  unsigned char out[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    sizeof(out), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string Xor(std::string_view a, std::string_view b) {
  std::string r(a);
  for (size_t i = 0; i < r.size() && i < b.size(); ++i) r[i] = static_cast<char>(r[i] ^ b[i]);
  return r;
}

// The value of attribute `name` ("r", "s", "i", "c", "p", "v") in a comma-separated SCRAM
// message; nullopt when absent.
std::optional<std::string_view> Attr(std::string_view msg, char name) {
  size_t start = 0;
  while (start <= msg.size()) {
    size_t end = msg.find(',', start);
    if (end == std::string_view::npos) end = msg.size();
    std::string_view part = msg.substr(start, end - start);
    if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    start = end + 1;
  }
  return std::nullopt;
}

bool Printable(std::string_view s) {
  for (char c : s)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return !s.empty();
}

}  // namespace

std::string Base64Encode(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(raw.data()),
                                static_cast<int>(raw.size()));
  out.resize(n);
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.size() > 4096) return std::nullopt;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='))
      return std::nullopt;
  }
  std::string out(text.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  if (text.size() >= 1 && text.back() == '=') --len;  // EVP_DecodeBlock keeps pad bytes
  if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::string RandomNonce() {
  unsigned char raw[18];
  RAND_bytes(raw, sizeof(raw));
  return Base64Encode(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw)));
}

std::optional<ScramVerifier> MakeVerifier(std::string_view password) {
  ScramVerifier v;
  if (password.starts_with("SCRAM-SHA-256$")) {
    // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
    std::string_view rest = password.substr(14);
    const size_t colon = rest.find(':'), dollar = rest.find('$');
    if (colon == std::string_view::npos || dollar == std::string_view::npos || dollar < colon)
      return std::nullopt;
    std::string_view iter = rest.substr(0, colon);
    auto [p, ec] = std::from_chars(iter.data(), iter.data() + iter.size(), v.iterations);
    if (ec != std::errc() || p != iter.data() + iter.size() || v.iterations == 0)
      return std::nullopt;
    auto salt = Base64Decode(rest.substr(colon + 1, dollar - colon - 1));
    std::string_view keys = rest.substr(dollar + 1);
    const size_t c2 = keys.find(':');
    if (!salt || c2 == std::string_view::npos) return std::nullopt;
    auto stored = Base64Decode(keys.substr(0, c2));
    auto server = Base64Decode(keys.substr(c2 + 1));
    if (!stored || !server || stored->size() != 32 || server->size() != 32) return std::nullopt;
    v.salt = *salt;
    v.stored_key = *stored;
    v.server_key = *server;
    return v;
  }
  unsigned char salt[16];
  RAND_bytes(salt, sizeof(salt));
  v.salt.assign(reinterpret_cast<char*>(salt), sizeof(salt));
  const std::string salted = SaltedPassword(password, v.salt, v.iterations);
  v.stored_key = Sha256(Hmac(salted, "Client Key"));
  v.server_key = Hmac(salted, "Server Key");
  return v;
}

bool ScramServer::First(std::string_view msg, std::string* server_first, std::string* error) {
  // gs2-header: "n,," or "y,," (a client that could bind but thinks we cannot); "p=" needs TLS.
  if (msg.starts_with("p=")) {
    *error = "channel binding is not supported (the connection is not TLS)";
    return false;
  }
  if (!(msg.starts_with("n,") || msg.starts_with("y,"))) {
    *error = "malformed SCRAM client-first-message";
    return false;
  }
  const size_t second = msg.find(',', 2);
  if (second == std::string_view::npos) {
    *error = "malformed SCRAM client-first-message";
    return false;
  }
  gs2_header_ = std::string(msg.substr(0, second + 1));
  client_first_bare_ = std::string(msg.substr(second + 1));
  auto nonce = Attr(client_first_bare_, 'r');
  if (!client_first_bare_.starts_with("n=") || !nonce || !Printable(*nonce)) {
    *error = "malformed SCRAM client-first-message";
    return false;
  }
  nonce_ = std::string(*nonce) + RandomNonce();
  server_first_ =
      "r=" + nonce_ + ",s=" + Base64Encode(v_.salt) + ",i=" + std::to_string(v_.iterations);
  *server_first = server_first_;
  return true;
}

bool ScramServer::Final(std::string_view msg, std::string* server_final, std::string* error) {
  const size_t p_at = msg.rfind(",p=");
  auto binding = Attr(msg, 'c');
  auto nonce = Attr(msg, 'r');
  if (p_at == std::string_view::npos || !binding || !nonce) {
    *error = "malformed SCRAM client-final-message";
    return false;
  }
  if (*binding != Base64Encode(gs2_header_)) {
    *error = "SCRAM channel binding check failed";
    return false;
  }
  if (*nonce != nonce_) {
    *error = "SCRAM nonce mismatch";
    return false;
  }
  auto proof = Base64Decode(msg.substr(p_at + 3));
  if (!proof || proof->size() != 32) {
    *error = "malformed SCRAM proof";
    return false;
  }
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(msg.substr(0, p_at));
  const std::string client_key = Xor(*proof, Hmac(v_.stored_key, auth_message));
  const std::string stored = Sha256(client_key);
  if (CRYPTO_memcmp(stored.data(), v_.stored_key.data(), 32) != 0) {
    *error = "password authentication failed";
    return false;
  }
  *server_final = "v=" + Base64Encode(Hmac(v_.server_key, auth_message));
  return true;
}

std::string ScramClient::First() {
  nonce_ = RandomNonce();
  client_first_bare_ = "n=,r=" + nonce_;
  return "n,," + client_first_bare_;
}

bool ScramClient::Final(std::string_view server_first, std::string* client_final,
                        std::string* error) {
  auto nonce = Attr(server_first, 'r');
  auto salt64 = Attr(server_first, 's');
  auto iter = Attr(server_first, 'i');
  uint32_t iterations = 0;
  if (!nonce || !salt64 || !iter || !nonce->starts_with(nonce_) ||
      std::from_chars(iter->data(), iter->data() + iter->size(), iterations).ec != std::errc() ||
      iterations == 0 || iterations > 10'000'000) {
    *error = "malformed SCRAM server-first-message";
    return false;
  }
  auto salt = Base64Decode(*salt64);
  if (!salt) {
    *error = "malformed SCRAM salt";
    return false;
  }
  const std::string salted = SaltedPassword(password_, *salt, iterations);
  const std::string client_key = Hmac(salted, "Client Key");
  const std::string without_proof = "c=biws,r=" + std::string(*nonce);
  const std::string auth_message =
      client_first_bare_ + "," + std::string(server_first) + "," + without_proof;
  const std::string proof = Xor(client_key, Hmac(Sha256(client_key), auth_message));
  expected_server_signature_ = Hmac(Hmac(salted, "Server Key"), auth_message);
  *client_final = without_proof + ",p=" + Base64Encode(proof);
  return true;
}

bool ScramClient::Verify(std::string_view server_final) const {
  auto v = Attr(server_final, 'v');
  if (!v) return false;
  auto sig = Base64Decode(*v);
  return sig && sig->size() == expected_server_signature_.size() &&
         CRYPTO_memcmp(sig->data(), expected_server_signature_.data(), sig->size()) == 0;
}

std::string Md5Response(std::string_view user, std::string_view password, std::string_view salt) {
  auto md5hex = [](std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 15];
    }
    return out;
  };
  return "md5" + md5hex(md5hex(std::string(password) + std::string(user)) + std::string(salt));
}

}  // namespace ficus::pg::internal
