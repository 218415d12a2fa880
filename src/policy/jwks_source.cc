// JWKS from a URL: the sources, the one fetcher thread that keeps them fresh, and one fetch
// with the project's HTTP client (client/), polled in short slices so shutdown never waits for
// a slow identity provider.
#include "policy/internal/jwks_source.h"

#include <openssl/crypto.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <vector>

#include "base/base.h"
#include "base/log.h"
#include "client/client.h"

namespace ficus::policy::internal {

namespace {

constexpr size_t kMaxJwksBytes = 1 << 20;

// Every live source, and the thread that fetches each when it is due.
class JwksFetcher {
 public:
  static JwksFetcher& Get() {
    // OpenSSL first: its exit handler must be registered before this object's destructor, so
    // that the destructor (which stops the thread and frees its OpenSSL state) runs first.
    [[maybe_unused]] static const bool openssl = OPENSSL_init_crypto(0, nullptr) == 1;
    static JwksFetcher f;
    return f;
  }
  ~JwksFetcher() {
    stop_flag_.store(true, std::memory_order_relaxed);  // cuts a fetch in progress short
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  bool stopping() const { return stop_flag_.load(std::memory_order_relaxed); }

  // A running source with these options, else null (the caller makes and adds one).
  std::shared_ptr<JwksSource> Find(const JwksSource::Options& o) {
    std::lock_guard lock(mu_);
    for (const auto& w : sources_) {
      if (auto s = w.lock(); s && s->options() == o) return s;
    }
    return nullptr;
  }
  void Add(const std::shared_ptr<JwksSource>& s) {
    std::lock_guard lock(mu_);
    std::erase_if(sources_, [](const auto& w) { return w.expired(); });
    sources_.push_back(s);
    if (!thread_.joinable()) {
      thread_ = std::thread([this] {
        Run();
        // OpenSSL's per-thread state (its error queue): freed before the thread ends, not left
        // to a thread-exit hook that may run after the process's leak check.
        OPENSSL_thread_stop();
      });
    }
    cv_.notify_one();
  }
  void Wake() {
    {
      std::lock_guard lock(mu_);
      woken_ = true;
    }
    cv_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const int64_t now = MonotonicNanos();
      int64_t next = now + 3'600'000'000'000;
      std::vector<std::shared_ptr<JwksSource>> due;
      for (const auto& w : sources_) {
        auto s = w.lock();
        if (!s) continue;
        if (s->next_fetch_ns() <= now) {
          due.push_back(std::move(s));
        } else {
          next = std::min(next, s->next_fetch_ns());
        }
      }
      if (!due.empty()) {
        lock.unlock();
        for (auto& s : due) {
          if (!stopping()) s->Fetch();
        }
        due.clear();  // a source's last owner may be this thread: release it unlocked
        // OpenSSL's per-thread state (its error queue) freed between fetches: at exit, its
        // thread-exit hook may come after the leak check (LeakSanitizer reported it).
        OPENSSL_thread_stop();
        lock.lock();
        continue;
      }
      woken_ = false;
      cv_.wait_for(lock, std::chrono::nanoseconds(next - now), [this] { return stop_ || woken_; });
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool woken_ = false;
  std::atomic<bool> stop_flag_{false};
  std::vector<std::weak_ptr<JwksSource>> sources_;
  std::thread thread_;
};

// GET `url` within `timeout_ns`; the body when the answer is a 2xx, else nullopt and *error.
std::optional<std::string> FetchBody(const JwksSource::Options& o, std::string* error) {
  client::Url url;
  if (!client::ParseUrl(o.url, &url, error)) return std::nullopt;
  std::shared_ptr<client::TlsContext> tls;
  if (url.https) {
    tls = client::TlsContext::Create({o.ca_file}, error);
    if (!tls) return std::nullopt;
  }
  const int64_t deadline = MonotonicNanos() + o.timeout_ns;
  client::Destination dest;
  if (!client::Destination::Resolve(url, tls, &dest, error)) return std::nullopt;
  client::Request req;
  req.target = url.target;
  req.headers = {{"Accept", "application/jwk-set+json, application/json"},
                 {"User-Agent", "ficus-jwks"}};
  client::Call call;
  client::Call::Options co;
  co.max_response_bytes = kMaxJwksBytes;
  call.Start(std::move(dest), req, co);
  // Slices of at most 100 ms, so a process shutting down does not wait out the timeout.
  while (!call.Advance()) {
    const int64_t left = deadline - MonotonicNanos();
    if (left <= 0 || JwksFetcher::Get().stopping()) {
      call.Fail("timed out " + call.Waiting());
      break;
    }
    pollfd p{call.fd(), call.events(), 0};
    ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left / 1'000'000 + 1, 100)));
  }
  const client::Response& r = call.response();
  if (!r.error.empty()) {
    *error = r.error;
    return std::nullopt;
  }
  if (r.status < 200 || r.status > 299) {
    *error = "HTTP status " + std::to_string(r.status);
    return std::nullopt;
  }
  return r.body;
}

}  // namespace

std::string_view UrlWithoutQuery(std::string_view url) { return url.substr(0, url.find('?')); }

std::shared_ptr<JwksSource> JwksSource::Acquire(const Options& options) {
  JwksFetcher& fetcher = JwksFetcher::Get();
  if (auto s = fetcher.Find(options)) return s;
  auto s = std::make_shared<JwksSource>(options);
  s->Fetch();
  fetcher.Add(s);
  return s;
}

void JwksSource::UnknownKid(int64_t now_ns) {
  int64_t allowed = next_kid_refresh_ns_.load(std::memory_order_relaxed);
  if (now_ns < allowed) return;
  if (!next_kid_refresh_ns_.compare_exchange_strong(allowed, now_ns + options_.min_refresh_ns))
    return;  // another worker asked first
  kid_refreshes.fetch_add(1, std::memory_order_relaxed);
  next_fetch_ns_.store(now_ns, std::memory_order_release);
  JwksFetcher::Get().Wake();
}

void JwksSource::Fetch() {
  std::lock_guard lock(fetch_mu_);
  std::string error;
  std::optional<std::string> body = FetchBody(options_, &error);
  std::optional<Jwks> parsed;
  if (body) {
    parsed = Jwks::Parse(*body, &error);
    if (!parsed) error = "the key set does not parse: " + error;
  }
  const int64_t now = MonotonicNanos();
  if (!parsed) {
    failed.fetch_add(1, std::memory_order_relaxed);
    const bool have = keys_.load() != nullptr;
    log::warn("JWKS {}: fetch failed ({}); {}", UrlWithoutQuery(options_.url), error,
              have ? "keeping the last good key set" : "no key set yet: tokens are refused");
    next_fetch_ns_.store(now + std::min(options_.min_refresh_ns, options_.refresh_ns),
                         std::memory_order_release);
    return;
  }
  fetched.fetch_add(1, std::memory_order_relaxed);
  last_success_unix_s.store(WallMicros() / 1'000'000, std::memory_order_relaxed);
  if (*body != last_body_ || keys_.load() == nullptr) {
    key_count.store(parsed->keys().size(), std::memory_order_relaxed);
    keys_.store(std::make_shared<const Jwks>(std::move(*parsed)), std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    last_body_ = std::move(*body);
  }
  next_fetch_ns_.store(now + options_.refresh_ns, std::memory_order_release);
}

}  // namespace ficus::policy::internal
