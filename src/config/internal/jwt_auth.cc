// `auth.jwt` of a route: where the key set comes from (a JWKS file, or a URL fetched and
// refreshed in the background), which tokens pass (algorithms, issuer, audience, leeway), and
// the verified-token cache.
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"

namespace ficus::config::internal {

bool Loader::ReadJwtAuth(const Value& j, JwtAuth* out) {
  Fields jf;
  if (!ReadMap(j,
               {"jwks_file", "jwks_url", "jwks_ca_file", "jwks_refresh", "jwks_min_refresh",
                "jwks_timeout", "token_cache", "issuer", "audience", "algorithms", "leeway",
                "consumer_claim"},
               &jf)) {
    return false;
  }
  bool ok = true;
  JwtAuth jwt;
  const Value* file = jf.Get("jwks_file");
  const Value* url = jf.Get("jwks_url");
  if ((file == nullptr) == (url == nullptr)) {
    Error(j, file ? "sets both jwks_file and jwks_url: the key set comes from one of them"
                  : "names no key set: set jwks_file (a JWKS file) or jwks_url (fetched)");
    return false;
  }
  if (file) {
    if (auto s = String(*file); s && !s->empty()) jwt.jwks_file = *s;
    ok = ok && !jwt.jwks_file.empty();
  }
  if (url) {
    if (auto s = String(*url)) {
      Webhook parsed;
      std::string error;
      if (ParseHttpUrl(*s, &parsed, &error)) {
        jwt.jwks_url = *s;
      } else {
        Error(*url, Quote(*s) + ": " + error);
      }
    }
    ok = ok && !jwt.jwks_url.empty();
  }
  for (const char* key : {"jwks_ca_file", "jwks_refresh", "jwks_min_refresh", "jwks_timeout"}) {
    if (file && jf.Get(key)) {
      Error(*jf.Get(key), std::string(key) + " applies to jwks_url only (this key set is a file)");
      ok = false;
    }
  }
  if (const Value* c = jf.Get("jwks_ca_file")) {
    if (auto path = String(*c)) {
      std::string error;
      if (ReadableFile(*path, &error)) {
        jwt.jwks_ca_file = *path;
      } else {
        Error(*c, error);
        ok = false;
      }
    }
  }
  if (const Value* p = jf.Get("jwks_refresh")) {
    if (auto d = DurationIn(*p, std::chrono::seconds(1), std::chrono::hours(24)))
      jwt.jwks_refresh = *d;
  }
  if (const Value* p = jf.Get("jwks_min_refresh")) {
    if (auto d = DurationIn(*p, std::chrono::milliseconds(100), std::chrono::hours(1)))
      jwt.jwks_min_refresh = *d;
  }
  if (const Value* p = jf.Get("jwks_timeout")) {
    if (auto d = DurationIn(*p, std::chrono::milliseconds(10), std::chrono::minutes(1)))
      jwt.jwks_timeout = *d;
  }
  if (const Value* p = jf.Get("token_cache")) {
    if (auto n = Integer(*p, 0, 1 << 20)) jwt.token_cache = static_cast<uint32_t>(*n);
  }
  if (const Value* p = jf.Get("issuer")) {
    if (auto s = String(*p)) jwt.issuer = *s;
  }
  if (const Value* p = jf.Get("audience")) {
    if (p->node.IsSequence()) {
      size_t i = 0;
      for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
        if (auto s = String(Item(*p, *it, i))) jwt.audiences.push_back(*s);
      }
    } else if (auto s = String(*p)) {
      jwt.audiences.push_back(*s);
    }
  }
  if (const Value* p = jf.Get("algorithms")) {
    jwt.algorithms.clear();
    if (ExpectList(*p)) {
      size_t i = 0;
      for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
        const Value item = Item(*p, *it, i);
        std::optional<std::string> s = String(item);
        if (s && *s != "RS256" && *s != "ES256" && *s != "HS256") {
          Error(item, "expected RS256, ES256 or HS256, got " + Quote(*s));
          ok = false;
        } else if (s) {
          jwt.algorithms.push_back(*s);
        }
      }
    }
    if (jwt.algorithms.empty()) ok = false;
  }
  if (const Value* p = jf.Get("leeway")) {
    if (auto d = DurationIn(*p, Duration{0}, std::chrono::minutes(10))) jwt.leeway = *d;
  }
  if (const Value* p = jf.Get("consumer_claim")) {
    if (auto s = String(*p); s && !s->empty()) jwt.consumer_claim = *s;
  }
  *out = std::move(jwt);
  return ok;
}

}  // namespace ficus::config::internal
