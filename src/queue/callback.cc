// Callbacks (internal/callback.h): the Standard Webhooks signature, the message, and the sender
// the deliverer's poll loop drives.
#include "queue/internal/callback.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>

#include "base/base64.h"
#include "base/json.h"
#include "base/log.h"
#include "queue/internal/runtime.h"
#include "queue/internal/service.h"

namespace ficus::queue::internal {

namespace {

class CallbackStateWork final : public Work {
 public:
  CallbackStateWork(std::string id, CallbackState state) : id_(std::move(id)), state_(state) {}
  void Run(Store& s) override { s.SetCallbackState(id_, state_); }
  void Done(bool) override { delete this; }

 private:
  std::string id_;
  CallbackState state_;
};

std::string IsoTime(int64_t ms) {
  const time_t secs = static_cast<time_t>(ms / 1000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::string out(buf, n);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  return out + frac;
}

}  // namespace

std::string SignWebhook(std::string_view secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body) {
  std::string key;
  if (!secret.starts_with("whsec_") || !DecodeBase64(secret.substr(6), &key))
    key = std::string(secret);
  std::string signed_content;
  signed_content.reserve(id.size() + body.size() + 24);
  signed_content.append(id).append(".").append(std::to_string(timestamp_s)).append(".");
  signed_content.append(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(signed_content.data()), signed_content.size(), mac,
       &mac_len);
  std::string out = "v1,";
  AppendBase64(out, std::string_view(reinterpret_cast<const char*>(mac), mac_len));
  return out;
}

std::string CallbackMessageId(const JobView& job) {
  // The job finishes once per run; `ficus jobs retry` starts a run over with attempts from 0,
  // and updated_ms tells the runs apart.
  return "job_" + job.id + "_" + std::to_string(job.updated_ms);
}

std::string CallbackPayload(const JobView& job, std::string_view jobs_path, int64_t now_ms) {
  std::string data = JobJson(job, std::string(jobs_path));
  if (!data.empty() && data.back() == '\n') data.pop_back();
  JsonWriter w;
  w.BeginObject();
  w.Key("type").String(std::string("job.") + StateName(job.state));
  w.Key("timestamp").String(IsoTime(now_ms));
  w.Key("data").Raw(data);
  w.EndObject();
  return w.Take();
}

std::string CheckRequestedCallback(const config::QueueCallback& cb, std::string_view url) {
  client::Url u;
  std::string error;
  if (!client::ParseUrl(url, &u, &error)) return "the callback URL is not valid: " + error;
  const std::string origin = config::CallbackOrigin(u.https, u.host, u.port);
  if (std::find(cb.allowed_origins.begin(), cb.allowed_origins.end(), origin) ==
      cb.allowed_origins.end())
    return "the callback URL's origin " + origin + " is not in the queue's allowed_origins";
  return {};
}

void CallbackSender::Configure(const std::optional<config::QueueCallback>& cb,
                               const std::string& jobs_path) {
  cb_ = cb;
  jobs_path_ = jobs_path;
}

void CallbackSender::Push(PendingCallback cb) {
  auto m = std::make_unique<Message>();
  m->cb = std::move(cb);
  waiting_.push_back(std::move(m));
}

void CallbackSender::Start(std::unique_ptr<Message> m, int64_t now_ms) {
  ++m->attempts;
  counters_.callback_attempts.fetch_add(1, std::memory_order_relaxed);
  if (m->body.empty()) m->body = CallbackPayload(m->cb.job, jobs_path_, now_ms);
  InFlight f;
  f.deadline_ms = now_ms + cb_->timeout.count();
  std::string error;
  client::Url url;
  // The URL the request named, else the queue's (a job records one only when it named one).
  std::string_view text = m->cb.url;
  if (text.empty() && cb_->url) text = cb_->url->url;
  client::Destination dest;
  bool ok = !text.empty() && client::ParseUrl(text, &url, &error);
  if (text.empty()) error = "the queue has no callback url";
  if (ok && url.https && tls_ == nullptr) {
    tls_ = client::TlsContext::Create({cb_->url ? cb_->url->ca_file : std::string()}, &error);
    ok = tls_ != nullptr;
  }
  // Resolving a name blocks this thread (getaddrinfo); callback URLs are few and usually IPs.
  if (ok) ok = client::Destination::Resolve(url, tls_, &dest, &error);
  const std::string id = CallbackMessageId(m->cb.job);
  const int64_t ts = now_ms / 1000;
  client::Request req;
  req.method = "POST";
  req.target = url.target;
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("webhook-id", id);
  req.headers.emplace_back("webhook-timestamp", std::to_string(ts));
  req.headers.emplace_back("webhook-signature", SignWebhook(cb_->secret, id, ts, m->body));
  req.body = m->body;
  req.keep_alive = false;
  f.message = std::move(m);
  if (ok) {
    f.call.Start(std::move(dest), req, {}, {});
  } else {
    f.call.Fail(error);
  }
  inflight_.push_back(std::move(f));
}

void CallbackSender::Poll(std::vector<pollfd>& fds, int* timeout_ms, int64_t now_ms) {
  if (!cb_) {
    // The queue's callback was removed by a reload: what is pending stays marked in the store
    // and goes when a callback is configured again (at the next start).
    waiting_.clear();
    inflight_.clear();
    return;
  }
  for (size_t i = 0; i < waiting_.size() && inflight_.size() < kMaxInFlight;) {
    if (waiting_[i]->next_ms <= now_ms) {
      std::unique_ptr<Message> m = std::move(waiting_[i]);
      waiting_[i] = std::move(waiting_.back());
      waiting_.pop_back();
      Start(std::move(m), now_ms);
    } else {
      ++i;
    }
  }
  for (const auto& m : waiting_)
    *timeout_ms =
        std::min<int>(*timeout_ms, static_cast<int>(std::max<int64_t>(0, m->next_ms - now_ms)));
  for (InFlight& f : inflight_) {
    f.fd_index = fds.size();
    fds.push_back({f.call.done() ? -1 : f.call.fd(), f.call.events(), 0});
    *timeout_ms = f.call.done() ? 0
                                : std::min<int>(*timeout_ms, static_cast<int>(std::max<int64_t>(
                                                                 0, f.deadline_ms - now_ms)));
  }
}

void CallbackSender::Advance(const std::vector<pollfd>& fds, int64_t now_ms) {
  size_t kept = 0;
  for (size_t i = 0; i < inflight_.size(); ++i) {
    InFlight& f = inflight_[i];
    bool done = f.call.done();
    if (!done && f.fd_index < fds.size() && fds[f.fd_index].revents != 0) done = f.call.Advance();
    if (!done && now_ms >= f.deadline_ms) {
      f.call.Fail("timed out after " + config::FormatDuration(cb_->timeout) + " " +
                  f.call.Waiting());
      done = true;
    }
    if (done) {
      Complete(f, now_ms);
    } else if (kept != i) {
      inflight_[kept++] = std::move(f);
    } else {
      ++kept;
    }
  }
  inflight_.resize(kept);
}

void CallbackSender::Complete(InFlight& f, int64_t now_ms) {
  std::unique_ptr<Message> m = std::move(f.message);
  const client::Response& resp = f.call.response();
  if (resp.status >= 200 && resp.status < 300) {
    counters_.callbacks_sent.fetch_add(1, std::memory_order_relaxed);
    writer_.Submit(new CallbackStateWork(m->cb.job.id, CallbackState::kSent));
    return;
  }
  const std::string why = resp.status != 0 ? "status " + std::to_string(resp.status) : resp.error;
  if (m->attempts >= cb_->max_attempts) {
    counters_.callbacks_failed.fetch_add(1, std::memory_order_relaxed);
    log::warn("queue {}: the callback of job {} not delivered after {} attempts: {}", queue_,
              m->cb.job.id, m->attempts, why);
    writer_.Submit(new CallbackStateWork(m->cb.job.id, CallbackState::kGaveUp));
    return;
  }
  // Exponential back-off from 1 s, at most 5 minutes, with equal jitter.
  const int64_t base =
      std::min<int64_t>(300'000, int64_t{1000} << std::min<uint32_t>(m->attempts - 1, 20));
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  m->next_ms = now_ms + base / 2 + static_cast<int64_t>(rng_ % static_cast<uint64_t>(base / 2 + 1));
  waiting_.push_back(std::move(m));
}

}  // namespace ficus::queue::internal
