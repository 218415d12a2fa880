// The auth policy of a route: an API key (its SHA-256 looked up) or a JWT (verified against the
// route's JWKS) names the consumer; `consumers` decides whether it may use the route.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/internal/jwks_source.h"
#include "policy/internal/jwt.h"
#include "policy/internal/rate_limit.h"
#include "policy/internal/token_cache.h"
#include "policy/policy.h"

namespace ficus::policy::internal {

struct alignas(64) AuthCell {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> missing{0};
  std::atomic<uint64_t> invalid{0};
  std::atomic<uint64_t> forbidden{0};
  std::atomic<uint64_t> token_cache_hits{0};  // JWTs taken from the verified-token cache
};
struct AuthCounters {
  std::array<AuthCell, kCells> cells;
};

// Looks a digest up as a string_view: no allocation per request.
struct DigestHash {
  using is_transparent = void;
  size_t operator()(std::string_view d) const { return std::hash<std::string_view>()(d); }
};
using KeyMap = std::unordered_map<std::string, std::string, DigestHash, std::equal_to<>>;

// API keys as SHA-256 digests (raw 32 bytes) -> consumer. Read from the config's inline keys
// (already hashed) and the key file: "<consumer> <key>" or "<consumer> sha256:<hex>" per line,
// '#' comments. Throws std::runtime_error naming the file and line (never the key).
KeyMap LoadApiKeys(const config::ApiKeyAuth& c);
std::string Sha256(std::string_view data);  // raw digest
// The raw digest into `out` (32 bytes).
void Sha256Into(std::string_view data, unsigned char* out);

class AuthPolicy final : public Policy {
 public:
  // Reads the key file and the JWKS file (throws std::runtime_error when they do not load), or
  // acquires the JWKS URL's source (its first fetch may run now, bounded by its timeout).
  AuthPolicy(const config::Route& route, const AuthPolicy* previous);

  Order order() const override { return Order::kAuth; }
  Decision Admit(Context& ctx) override;

  const config::Auth& config() const { return config_; }
  const AuthCounters& counters() const { return *counters_; }
  size_t key_count() const { return keys_.size(); }
  const JwksSource* jwks_source() const { return source_.get(); }

 private:
  Decision Unauthorized(Context& ctx, bool bad);
  // The token's consumer into ctx, from the worker's cache or a verification; false: refused.
  bool VerifyToken(Context& ctx, std::string_view token);
  config::Auth config_;
  KeyMap keys_;                            // digest -> consumer
  std::shared_ptr<const Jwks> file_jwks_;  // jwks_file
  std::shared_ptr<JwksSource> source_;     // jwks_url
  JwtRules rules_;
  // One verified-token cache per worker, made by that worker on its first token.
  std::array<std::unique_ptr<TokenCache>, kCells> token_caches_;
  std::string challenge_;          // WWW-Authenticate, missing credentials
  std::string challenge_invalid_;  // WWW-Authenticate, bad credentials
  std::shared_ptr<AuthCounters> counters_;
};

}  // namespace ficus::policy::internal
