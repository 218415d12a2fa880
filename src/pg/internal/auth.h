// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL uses it, both ways: the proxy verifies
// clients against a verifier, and authenticates itself to servers (SCRAM, md5 or cleartext,
// whichever the server asks for). OpenSSL primitives; no channel binding (no TLS here).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ficus::pg::internal {

std::string Base64Encode(std::string_view raw);
std::optional<std::string> Base64Decode(std::string_view text);
std::string RandomNonce();  // 18 random bytes, base64

struct ScramVerifier {
  uint32_t iterations = 4096;
  std::string salt;                    // raw
  std::string stored_key, server_key;  // raw, 32 bytes each
};
// From a plain password (a fresh random salt) or a stored "SCRAM-SHA-256$..." verifier.
std::optional<ScramVerifier> MakeVerifier(std::string_view password);

// The server side of one exchange with a client.
class ScramServer {
 public:
  explicit ScramServer(const ScramVerifier& v) : v_(v) {}
  // client-first-message -> server-first-message; false: malformed (why in *error).
  bool First(std::string_view client_first, std::string* server_first, std::string* error);
  // client-final-message -> server-final-message ("v=..."); false: malformed or a wrong
  // password (*error says which; the caller answers 28P01 either way).
  bool Final(std::string_view client_final, std::string* server_final, std::string* error);

 private:
  ScramVerifier v_;
  std::string client_first_bare_, server_first_, nonce_, gs2_header_;
};

// The client side, towards a server.
class ScramClient {
 public:
  explicit ScramClient(std::string password) : password_(std::move(password)) {}
  std::string First();  // client-first-message
  bool Final(std::string_view server_first, std::string* client_final, std::string* error);
  bool Verify(std::string_view server_final) const;  // the server's signature

 private:
  std::string password_, nonce_, client_first_bare_, expected_server_signature_;
};

// md5 password response: "md5" + md5hex(md5hex(password + user) + salt).
std::string Md5Response(std::string_view user, std::string_view password, std::string_view salt);

}  // namespace ficus::pg::internal
