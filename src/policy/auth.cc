// Authentication: API keys (compared as SHA-256 digests) and JWTs (HS256/RS256/ES256). Missing
// or bad credentials: 401 with WWW-Authenticate; a consumer the route does not list: 403. No
// credential or token ever reaches a log line or a metric label.
#include "policy/internal/auth.h"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http/http.h"

namespace ficus::policy::internal {

namespace {

constexpr std::string_view kUnauthorizedBody =
    "{\"type\":\"about:blank\",\"title\":\"Unauthorized\",\"status\":401,"
    "\"detail\":\"This route needs a valid credential.\"}";
constexpr std::string_view kForbiddenBody =
    "{\"type\":\"about:blank\",\"title\":\"Forbidden\",\"status\":403,"
    "\"detail\":\"This consumer may not use this route.\"}";

std::string ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(what) + " " + path + ": cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool HexDecode(std::string_view hex, std::string* out) {
  if (hex.size() != 64) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (size_t j = i; j < i + 2; ++j) {
      const char c = hex[j];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) return false;
      v = v * 16 + d;
    }
    out->push_back(static_cast<char>(v));
  }
  return true;
}

}  // namespace

void Sha256Into(std::string_view data, unsigned char* out) {
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
}

std::string Sha256(std::string_view data) {
  unsigned char md[32];
  Sha256Into(data, md);
  return std::string(reinterpret_cast<char*>(md), sizeof md);
}

KeyMap LoadApiKeys(const config::ApiKeyAuth& c) {
  KeyMap keys;
  std::string digest;
  for (const auto& [consumer, hex] : c.keys) {
    if (HexDecode(hex, &digest)) keys[digest] = consumer;
  }
  if (c.file.empty()) return keys;
  std::istringstream in(ReadFile(c.file, "API key file"));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::istringstream fields(line);
    std::string consumer, key, extra;
    fields >> consumer;
    if (consumer.empty() || consumer.starts_with('#')) continue;
    fields >> key >> extra;
    const std::string where = "API key file " + c.file + ":" + std::to_string(n) + ": ";
    if (key.empty() || !extra.empty()) {
      throw std::runtime_error(where +
                               "expected \"<consumer> <key>\" or "
                               "\"<consumer> sha256:<hex>\"");
    }
    if (key.starts_with("sha256:")) {
      if (!HexDecode(std::string_view(key).substr(7), &digest))
        throw std::runtime_error(where + "sha256: must be followed by 64 hex digits");
    } else if (key.size() < 8) {
      throw std::runtime_error(where + "an API key must have at least 8 characters");
    } else {
      digest = Sha256(key);
    }
    keys[digest] = consumer;
  }
  return keys;
}

AuthPolicy::AuthPolicy(const config::Route& route, const AuthPolicy* previous)
    : config_(*route.auth) {
  if (config_.api_keys) keys_ = LoadApiKeys(*config_.api_keys);
  if (config_.jwt) {
    const config::JwtAuth& j = *config_.jwt;
    if (!j.jwks_file.empty()) {
      std::string error;
      std::optional<Jwks> set = Jwks::Parse(ReadFile(j.jwks_file, "JWKS file"), &error);
      if (!set) throw std::runtime_error("JWKS file " + j.jwks_file + ": " + error);
      file_jwks_ = std::make_shared<const Jwks>(std::move(*set));
    } else {
      auto ns = [](config::Duration d) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
      };
      source_ = JwksSource::Acquire({j.jwks_url, j.jwks_ca_file, ns(j.jwks_refresh),
                                     ns(j.jwks_min_refresh), ns(j.jwks_timeout)});
    }
    rules_.algorithms = j.algorithms;
    rules_.issuer = j.issuer;
    rules_.audiences = j.audiences;
    rules_.leeway_s = std::chrono::duration_cast<std::chrono::seconds>(j.leeway).count();
    rules_.consumer_claim = j.consumer_claim;
  }
  const std::string realm = "realm=\"" + route.name + "\"";
  challenge_ = config_.jwt ? "Bearer " + realm : "ApiKey " + realm;
  challenge_invalid_ = config_.jwt ? challenge_ + ", error=\"invalid_token\"" : challenge_;
  // The counters carry over a reload of the same route (they count, they decide nothing).
  counters_ = previous != nullptr ? previous->counters_ : std::make_shared<AuthCounters>();
}

Decision AuthPolicy::Unauthorized(Context& ctx, bool bad) {
  AuthCell& cell = counters_->cells[static_cast<size_t>(ctx.worker()) % kCells];
  (bad ? cell.invalid : cell.missing).fetch_add(1, std::memory_order_relaxed);
  ctx.AddResponseHeader("WWW-Authenticate", bad ? challenge_invalid_ : challenge_);
  return Decision::Respond({401, {}, "application/problem+json", kUnauthorizedBody});
}

bool AuthPolicy::VerifyToken(Context& ctx, std::string_view token) {
  const int64_t now_s = WallMicros() / 1'000'000;
  // The generation before the keys: a verdict is never filed under a newer set than checked it.
  const uint64_t generation = source_ ? source_->generation() : 0;
  TokenCache* cache = nullptr;
  const size_t w = static_cast<size_t>(ctx.worker()) % kCells;
  if (config_.jwt->token_cache > 0) {
    if (!token_caches_[w])
      token_caches_[w] = std::make_unique<TokenCache>(config_.jwt->token_cache);
    cache = token_caches_[w].get();
    if (const std::string* consumer = cache->Find(token, generation, now_s)) {
      counters_->cells[w].token_cache_hits.fetch_add(1, std::memory_order_relaxed);
      ctx.set_consumer(*consumer);
      return true;
    }
  }
  const std::shared_ptr<const Jwks> keys = source_ ? source_->keys() : file_jwks_;
  if (keys == nullptr) {  // the URL has not answered yet
    source_->UnknownKid(MonotonicNanos());
    return false;
  }
  JwtResult r = VerifyJwt(token, *keys, rules_, now_s);
  if (r.status == JwtStatus::kUnknownKey && source_) source_->UnknownKid(MonotonicNanos());
  if (r.status != JwtStatus::kOk) return false;
  if (cache != nullptr) cache->Put(token, generation, r.exp + rules_.leeway_s, r.consumer);
  ctx.set_consumer(r.consumer);
  return true;
}

Decision AuthPolicy::Admit(Context& ctx) {
  const http::RequestHead& req = ctx.request();
  std::string_view api_key, authorization;
  int authorizations = 0;
  for (const http::Header& h : req.headers) {
    if (http::EqualsIgnoreCase(h.name, "authorization")) {
      authorization = h.value;
      ++authorizations;
    } else if (config_.api_keys && api_key.empty() &&
               http::EqualsIgnoreCase(h.name, config_.api_keys->header)) {
      api_key = h.value;
    }
  }
  // Two credentials in one request: which one would the upstream believe? Refuse.
  if (authorizations > 1)
    return Decision::Refuse(
        {ErrorKind::kBadRequest, Side::kDownstream, false, "two Authorization fields"});
  if (config_.api_keys && api_key.empty() && !config_.api_keys->query.empty()) {
    std::string_view q = req.query;
    const std::string& name = config_.api_keys->query;
    while (!q.empty() && api_key.empty()) {
      const size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
      if (pair.size() > name.size() && pair.starts_with(name) && pair[name.size()] == '=')
        api_key = pair.substr(name.size() + 1);
    }
  }
  if (!api_key.empty()) {
    unsigned char md[32];
    Sha256Into(api_key, md);
    auto it = keys_.find(std::string_view(reinterpret_cast<char*>(md), sizeof md));
    if (it == keys_.end()) return Unauthorized(ctx, true);
    ctx.set_consumer(it->second);
  } else if (config_.jwt && !authorization.empty()) {
    std::string_view token = BearerToken(authorization);
    if (token.empty() || !VerifyToken(ctx, token)) return Unauthorized(ctx, true);
  } else {
    return Unauthorized(ctx, false);
  }
  AuthCell& cell = counters_->cells[static_cast<size_t>(ctx.worker()) % kCells];
  if (!config_.consumers.empty() && std::find(config_.consumers.begin(), config_.consumers.end(),
                                              ctx.consumer()) == config_.consumers.end()) {
    cell.forbidden.fetch_add(1, std::memory_order_relaxed);
    return Decision::Respond({403, {}, "application/problem+json", kForbiddenBody});
  }
  cell.ok.fetch_add(1, std::memory_order_relaxed);
  return Decision::Pass();
}

}  // namespace ficus::policy::internal
