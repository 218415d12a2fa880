// Webhook delivery: a background thread, a bounded queue, retries with exponential backoff; each
// POST is one blocking client::Fetch (http or https) with a timeout. Never on a worker thread.
#include <algorithm>
#include <map>
#include <mutex>

#include "base/log.h"
#include "client/client.h"
#include "slo/slo.h"

namespace ficus::slo {

namespace {

using Clock = std::chrono::steady_clock;

// One TLS context per ca_file ("" = the system store), made on first use: loading a trust
// store costs milliseconds, and a webhook is retried.
Outcome<std::shared_ptr<client::TlsContext>> TlsFor(const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<client::TlsContext>> contexts;
  std::lock_guard lock(mu);
  auto it = contexts.find(ca_file);
  if (it != contexts.end()) return it->second;
  std::string error;
  auto tls = client::TlsContext::Create({ca_file}, &error);
  if (tls == nullptr) return Failed(std::move(error));
  contexts.emplace(ca_file, tls);
  return tls;
}

}  // namespace

Outcome<int> HttpPost(const config::Webhook& hook, std::string_view body,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& extra_headers) {
  client::Url url;
  url.https = hook.https;
  url.host = hook.host;
  url.port = hook.port;
  url.target = hook.target;
  std::shared_ptr<client::TlsContext> tls;
  if (hook.https) {
    Outcome<std::shared_ptr<client::TlsContext>> made = TlsFor(hook.ca_file);
    if (!made) return Failed(made.message());
    tls = std::move(*made);
  }
  client::Request req;
  req.method = "POST";
  req.target = hook.target;
  req.headers = {{"User-Agent", "ficus-slo"}, {"Content-Type", "application/json"}};
  req.headers.insert(req.headers.end(), extra_headers.begin(), extra_headers.end());
  req.body = std::string(body);
  client::Response r = client::Fetch(url, req, timeout, std::move(tls));
  if (!r.error.empty()) return Failed(std::move(r.error));
  return r.status;
}

Notifier::Notifier(Options options) : options_(options), thread_([this] { Loop(); }) {}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::chrono::milliseconds Notifier::Backoff(int attempt) const {
  auto d = options_.first_backoff;
  for (int i = 1; i < attempt && d < options_.max_backoff; ++i) d *= 2;
  return std::min(d, options_.max_backoff);
}

void Notifier::Post(const std::vector<config::Webhook>& hooks, std::string body) {
  auto shared = std::make_shared<const std::string>(std::move(body));
  {
    std::lock_guard lock(mu_);
    for (const config::Webhook& hook : hooks) {
      if (queue_.size() >= options_.max_queue) {
        ++stats_.dropped;
        continue;
      }
      queue_.push_back(Delivery{hook, shared, 0, Clock::now()});
    }
  }
  cv_.notify_all();
}

bool Notifier::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
}

Notifier::Stats Notifier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Notifier::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    // The delivery due first (retries wait for their backoff; new ones are due now).
    auto next =
        std::min_element(queue_.begin(), queue_.end(),
                         [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
    if (next->due > Clock::now()) {
      cv_.wait_until(lock, next->due);
      continue;  // re-check: stop, or an earlier delivery queued meanwhile
    }
    Delivery d = std::move(*next);
    queue_.erase(next);
    ++in_flight_;
    lock.unlock();
    const Outcome<int> r = HttpPost(d.hook, *d.body, options_.timeout);
    lock.lock();
    --in_flight_;
    ++stats_.attempts;
    ++d.attempts;
    if (r && *r >= 200 && *r < 300) {
      ++stats_.delivered;
    } else if (d.attempts >= options_.max_attempts) {
      ++stats_.failed;
      log::warn("slo webhook {} failed after {} attempts: {}", d.hook.url, d.attempts,
                r ? "status " + std::to_string(*r) : r.message());
    } else {
      d.due = Clock::now() + Backoff(d.attempts);
      queue_.push_back(std::move(d));
    }
    cv_.notify_all();  // Flush waiters
  }
}

}  // namespace ficus::slo
