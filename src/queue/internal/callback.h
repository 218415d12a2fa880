// Callbacks: when a job of a queue with `callback:` finishes, its result is POSTed to the queue's
// URL (or the one its request named), signed as Standard Webhooks specify, so the client need not
// poll the job URL. Sent by the queue's deliverer thread (many in flight, the same poll), retried
// with back-off up to max_attempts; a callback not yet sent is marked in the store (callback_state
// 1) and sent again after a restart. At-least-once, like deliveries: the receiver deduplicates by
// webhook-id.
#pragma once

#include <poll.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "config/config.h"
#include "queue/internal/store.h"

namespace ficus::queue::internal {

struct Counters;

// Standard Webhooks: "v1," + base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>")), the key being
// the base64 after "whsec_" in `secret`, or the secret's bytes when it has no such prefix.
std::string SignWebhook(std::string_view secret, std::string_view id, int64_t timestamp_s,
                        std::string_view body);

// The callback's JSON: {"type": "job.succeeded"|"job.failed"|"job.dead", "timestamp", "data":
// the job as its URL shows it, with "location"}.
std::string CallbackPayload(const JobView& job, std::string_view jobs_path, int64_t now_ms);

// The webhook-id of a job's callback: the same for every retry of one message, another when the
// job finishes again after `ficus jobs retry`.
std::string CallbackMessageId(const JobView& job);

// Checks a URL a request named (`request_header`) against the queue's allowed_origins. Empty
// string: allowed; else why not.
std::string CheckRequestedCallback(const config::QueueCallback& cb, std::string_view url);

// One queue's callbacks in flight and waiting for a retry. The deliverer's thread only.
class CallbackSender {
 public:
  CallbackSender(std::string queue, Writer& writer, Counters& counters)
      : queue_(std::move(queue)), writer_(writer), counters_(counters) {}

  void Configure(const std::optional<config::QueueCallback>& cb, const std::string& jobs_path);
  bool enabled() const { return cb_.has_value(); }
  void Push(PendingCallback cb);
  // Starts what is due; adds the calls' descriptors to `fds` (their index recorded) and lowers
  // *timeout_ms to the next deadline or retry.
  void Poll(std::vector<pollfd>& fds, int* timeout_ms, int64_t now_ms);
  // After poll(): advances the calls whose descriptors fired, completes the finished ones.
  void Advance(const std::vector<pollfd>& fds, int64_t now_ms);
  size_t pending() const { return waiting_.size() + inflight_.size(); }

 private:
  struct Message {
    PendingCallback cb;
    uint32_t attempts = 0;
    int64_t next_ms = 0;
    std::string body;  // the JSON, made once: the signature covers it on every attempt
  };
  struct InFlight {
    std::unique_ptr<Message> message;
    client::Call call;
    int64_t deadline_ms = 0;
    size_t fd_index = 0;
  };
  void Start(std::unique_ptr<Message> m, int64_t now_ms);
  void Complete(InFlight& f, int64_t now_ms);

  std::string queue_;
  Writer& writer_;
  Counters& counters_;
  std::optional<config::QueueCallback> cb_;
  std::string jobs_path_;
  std::shared_ptr<client::TlsContext> tls_;  // the system store, made at the first https call
  std::vector<std::unique_ptr<Message>> waiting_;
  std::vector<InFlight> inflight_;
  uint64_t rng_ = 0x2545f4914f6cdd1dull;
  static constexpr size_t kMaxInFlight = 64;
};

}  // namespace ficus::queue::internal
