// The cache policy of one route (policy::Order::kCache) and its per-exchange state. Admit
// answers fresh hits (and clients' conditionals) from the store, sends stale entries upstream
// with validators, and makes concurrent misses for one key wait for the first; OnResponse
// stores (tapping the body as it is relayed), answers a 304 with the refreshed stored response,
// serves stale on a 5xx within stale-if-error, and invalidates after unsafe methods.
#pragma once

#include <memory>
#include <string>

#include "cache/internal/rfc.h"
#include "cache/internal/store.h"
#include "config/config.h"
#include "policy/policy.h"

namespace ficus::cache {

// The route's cache config as the policy reads it, in seconds.
struct Settings {
  Rules rules;
  KeyRules key_rules;
  int64_t stale_while_revalidate_s = 0;
  int64_t stale_if_error_s = 0;
  uint64_t max_object_bytes = 0;
  static Settings From(const config::Cache& c);
};

class Fill;

class CachePolicy final : public policy::Policy {
 public:
  CachePolicy(std::string route, const config::Cache& config, std::shared_ptr<Store> store);

  policy::Order order() const override { return policy::Order::kCache; }
  policy::Decision Admit(policy::Context& ctx) override;
  net::Task<policy::Decision> Wait(policy::Context& ctx) override;
  policy::Decision OnResponse(policy::Context& ctx, const http::ResponseHead& response) override;
  policy::Decision OnError(policy::Context& ctx, const Error& error) override;
  void End(policy::Context& ctx, const policy::Outcome& outcome) override;

  const std::string& route() const { return route_; }
  const config::Cache& config() const { return config_; }
  const std::shared_ptr<Store>& store() const { return store_; }
  const KeyRules& key_rules() const { return settings_.key_rules; }

 private:
  friend class Fill;
  // Answers from `o` (a hit, a refreshed or a stale response): 304 for a matching client
  // conditional, else the stored response. Adds Age and Cache-Status. The caller keeps `o`
  // pinned until End.
  policy::Decision Serve(policy::Context& ctx, const Object& o, std::string_view cache_status);
  // The stored object for a response head, or null when the response is not stored (the
  // Cache-Status detail in `why`).
  Object* Build(policy::Context& ctx, const Fill& f, const http::ResponseHead& r,
                std::string_view* why);
  // A copy of `stale` with the fields of a 304 merged in (§4.3.4), sharing its body.
  Object* Refresh(const Object& stale, const http::ResponseHead& r, int64_t request_time_ms,
                  int64_t now_ms);
  // Whether `stale` may answer in place of an upstream failure now (RFC 5861 stale-if-error,
  // within RFC 9111 §4.2.4: never against no-cache or must-revalidate).
  bool MayServeOnError(const Object& stale, int64_t now_ms) const;
  void Invalidate(policy::Context& ctx, const Fill& f, const http::ResponseHead& r);

  const std::string route_;
  const config::Cache config_;
  const Settings settings_;
  const std::shared_ptr<Store> store_;
};

// --- object.cc: the stored form of a response's fields ---

// The fields of `fields` a stored response keeps, as raw lines into `out`: not hop-by-hop (nor
// those a Connection field names), not framing, not Age (recomputed), not X-Request-Id (each
// answer has its own), not Set-Cookie (a cookie is never replayed to another client), and not
// those a qualified no-cache or private in `cc` names (§5.2.2.4, §5.2.2.7).
void AppendStoredFields(std::span<const http::Header> fields, std::string& out,
                        const CacheControl* cc = nullptr);
// Raw "Name: value\r\n" lines back into fields (views into `raw`).
void ParseStoredFields(std::string_view raw, std::vector<http::Header>& out);
// Sets what `o` derives from its stored fields and directives: timing (with `upstream_age`, the
// received response's Age, which the stored fields leave out), validators, tags, the 304 subset,
// revalidation flags.
void Describe(Object& o, std::span<const http::Header> fields, const Settings& settings,
              int64_t request_time_ms, int64_t response_time_ms, int64_t upstream_age);

}  // namespace ficus::cache
