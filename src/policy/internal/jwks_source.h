// A JSON Web Key Set fetched from a URL (`auth.jwt.jwks_url`) and kept fresh by one background
// thread for the whole process (never a worker): fetched again every `jwks_refresh`, and early
// when a token names a kid the set does not have (at most once per `jwks_min_refresh`, so a
// flood of made-up kids cannot turn into a flood of fetches). A failed fetch keeps the last
// good set and tries again after `jwks_min_refresh`. Routes (and reloads) naming the same URL
// and settings share one source, so a reload neither refetches nor forgets the keys.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "policy/internal/jwt.h"

namespace ficus::policy::internal {

class JwksSource {
 public:
  struct Options {
    std::string url;
    std::string ca_file;
    int64_t refresh_ns = 300'000'000'000;
    int64_t min_refresh_ns = 10'000'000'000;
    int64_t timeout_ns = 5'000'000'000;
    bool operator==(const Options&) const = default;
  };
  // The running source with these options, or a new one whose first fetch runs now, on the
  // calling (control) thread, bounded by the timeout. A first fetch that fails is logged and
  // does not fail the load: tokens are refused (unknown key) until a fetch succeeds.
  static std::shared_ptr<JwksSource> Acquire(const Options& options);

  explicit JwksSource(Options options) : options_(std::move(options)) {}
  const Options& options() const { return options_; }

  // The current key set (null until a fetch succeeded) and its generation, which changes
  // whenever a fetch brings a different set (cached verdicts of an older one are not trusted).
  std::shared_ptr<const Jwks> keys() const { return keys_.load(std::memory_order_acquire); }
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Worker: a token named a kid the set lacks. Asks the fetcher for an early fetch unless one
  // was asked less than min_refresh ago. Lock-free except for the rare accepted request.
  void UnknownKid(int64_t now_ns);

  // One fetch now, on the calling thread (the fetcher thread; Acquire's first fetch).
  void Fetch();
  int64_t next_fetch_ns() const { return next_fetch_ns_.load(std::memory_order_acquire); }

  // /metrics: fetch outcomes, early fetches asked for by unknown kids, the set's size, and when
  // the last fetch succeeded (unix seconds; 0 never).
  std::atomic<uint64_t> fetched{0};  // a set was fetched and parsed (changed or not)
  std::atomic<uint64_t> failed{0};   // no response, a non-2xx status, or a set that did not parse
  std::atomic<uint64_t> kid_refreshes{0};
  std::atomic<uint64_t> key_count{0};
  std::atomic<int64_t> last_success_unix_s{0};

 private:
  const Options options_;
  std::atomic<std::shared_ptr<const Jwks>> keys_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_fetch_ns_{0};
  std::atomic<int64_t> next_kid_refresh_ns_{0};
  std::mutex fetch_mu_;    // one fetch at a time (Acquire's first and the thread's)
  std::string last_body_;  // under fetch_mu_
};

// A URL for logs and metric labels: without its query, which could carry a secret.
std::string_view UrlWithoutQuery(std::string_view url);

}  // namespace ficus::policy::internal
