// The cache policy of one route (policy::Order::kCache) and its per-exchange state. Admit
// answers fresh hits (and clients' conditionals) from the store, sends stale entries upstream
// with validators, and makes concurrent misses for one key wait for the first; OnResponse
// stores (tapping the body as it is relayed), answers a 304 with the refreshed stored response,
// serves stale on a 5xx within stale-if-error, and invalidates after unsafe methods.
#pragma once

#include <memory>
#include <string>

#include "cache/internal/range.h"
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
  // serve.cc: the 206 (one range, or multipart/byteranges) or 416 of `o` for a GET's Range, or
  // the whole response when the field is not a valid bytes range set.
  policy::Decision ServeRange(policy::Context& ctx, const Object& o, std::string_view range);
  // serve.cc: where an answer built for this exchange is kept until End (the exchange's Fill; a
  // plain hit's pin moves into a new one).
  Fill& AnswerStorage(policy::Context& ctx);
  // §4.3.5: a 200 to a HEAD updates the stored GET response it could have selected (`f.stale`)
  // when their validators and length agree, else the stored response is invalidated. Whether it
  // was updated.
  bool UpdateFromHead(const Fill& f, const http::ResponseHead& r, int64_t now_ms);
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

// The state of one exchange that is not a plain hit (a hit only pins its object). Allocated on
// the slow path (a miss goes upstream anyway); it is the body sink of a response being stored.
class Fill final : public policy::BodySink {
 public:
  enum class Mode : uint8_t { kMiss, kRevalidate, kUnsafe };
  Fill(CachePolicy& p, std::string_view key, Mode mode) : policy(p), key(key), mode(mode) {}
  ~Fill() override {
    ReleaseWaiters();
    if (building) building->Unref();
    if (served) served->Unref();
    if (stale) {
      if (refreshing) stale->revalidating.store(false, std::memory_order_release);
      stale->Unref();
    }
  }

  void Body(std::string_view payload) override {
    if (!building) return;
    if (body->size() + payload.size() > policy.settings_.max_object_bytes) {
      Drop();  // over the bound: the rest passes through uncached
      return;
    }
    body->append(payload);
  }
  void Done(bool complete) override {
    if (building && complete && (expected == UINT64_MAX || body->size() == expected)) {
      // A body of unknown length grew by doubling: give the slack back before it is stored
      // (the store charges what the object holds).
      if (body->capacity() - body->size() > body->size() / 8) body->shrink_to_fit();
      policy.store_->Insert(std::exchange(building, nullptr));
    }
    Drop();
  }
  void Drop() {
    if (building) std::exchange(building, nullptr)->Unref();
    ReleaseWaiters();
  }
  void ReleaseWaiters() {
    if (leader) policy.store_->EndFill(key);
    leader = false;
  }

  CachePolicy& policy;
  std::string key;
  Mode mode;
  bool leader = false;                // holds the store's fill of `key`: others wait for it
  bool refreshing = false;            // holds stale->revalidating
  std::string_view fwd = "uri-miss";  // Cache-Status fwd= of a forwarded request
  CacheControl request_cc;
  int64_t request_time_ms = 0;
  Object* stale = nullptr;     // pinned: the stored response being revalidated
  Object* served = nullptr;    // pinned: what OnResponse or Wait answered with
  Object* building = nullptr;  // the response being stored
  std::shared_ptr<std::string> body;
  uint64_t expected = UINT64_MAX;
  // An answer built for this exchange (serve.cc: a multipart/byteranges 206), kept until End
  // because the answer's views point into it.
  std::string built_headers;
  std::string built_content_type;
  std::string built_body;
};

// The policy's word of exchange state (Context::state): 0, a pinned Object* (a plain hit), or a
// Fill* tagged with kFillTag.
inline constexpr uint64_t kFillTag = 1;
inline Fill* FillOf(uint64_t state) {
  return (state & kFillTag) ? reinterpret_cast<Fill*>(state & ~kFillTag) : nullptr;
}

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
