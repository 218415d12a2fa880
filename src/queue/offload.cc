// The offload policy: admit reserves a place in the queue (503 when it is full), Wait reads the
// body, hands the job to the writer and suspends until the group commit that holds it is on
// disk; then 202 Accepted with the job's URL. Nothing is acknowledged before its commit.
#include <string>

#include "base/json.h"
#include "http/http.h"
#include "queue/internal/callback.h"
#include "queue/internal/service.h"

namespace ficus::queue::internal {

namespace {

using policy::Answer;
using policy::Context;
using policy::Decision;

constexpr std::string_view kJson = "application/json";

// Fields of the client's request that are not sent on with the job: framing (the deliverer
// frames the stored body itself), hop-by-hop fields, and the key ficus sends itself.
bool Stored(const http::Header& h) {
  switch (h.role) {
    case http::HeaderRole::kHopByHop:
    case http::HeaderRole::kContentLength:
    case http::HeaderRole::kTransferEncoding:
    case http::HeaderRole::kExpect:
      return false;
    default:
      return !http::EqualsIgnoreCase(h.name, "idempotency-key");
  }
}

std::string_view IdempotencyKey(const http::RequestHead& head) {
  for (const http::Header& h : head.headers) {
    if (http::EqualsIgnoreCase(h.name, "idempotency-key")) return h.value;
  }
  return {};
}

class OffloadPolicy;

// One offloaded request from Wait to End (pinned in ctx.state()): the work the writer runs and
// the storage the answer's views point into.
class Pending final : public Work {
 public:
  enum class Outcome : uint8_t { kNone, kInserted, kExisting, kConflict, kWriteFailed };

  // Builds the job here, on the worker: the writer is the one thread every enqueue goes
  // through, so it only inserts (the copies, the token's getrandom and the fingerprint are
  // paid by the workers, in parallel).
  Pending(net::Loop& loop, const OffloadPolicy& policy, const http::RequestHead& head,
          std::string_view body);

  void Run(Store& store) override;
  void Done(bool committed) override;

  net::Wakeup& wakeup() { return wakeup_; }
  Outcome outcome() const { return outcome_; }
  const std::string& id() const { return id_; }
  int64_t body_size() const { return body_size_; }
  bool bytes_reserved = false;
  std::string fields;  // the answer's extra fields
  std::string json;    // the answer's body

 private:
  net::Wakeup wakeup_;
  const OffloadPolicy& policy_;
  std::unique_ptr<Job> job_;
  uint64_t fingerprint_ = 0;
  int64_t key_since_ms_ = INT64_MAX;
  int64_t body_size_ = 0;
  Outcome outcome_ = Outcome::kNone;
  std::string id_;
};

class OffloadPolicy final : public policy::Policy {
 public:
  OffloadPolicy(const config::Offload& offload, const config::Queue& queue, std::string cluster,
                std::shared_ptr<QueueRuntime> rt)
      : offload_(offload), queue_(queue), cluster_(std::move(cluster)), rt_(std::move(rt)) {
    retry_after_ =
        "Retry-After: " + std::to_string(std::max<int64_t>(1, queue_.retry_after.count() / 1000)) +
        "\r\n";
  }

  policy::Order order() const override { return policy::Order::kOffload; }

  Decision Admit(Context& ctx) override {
    if (!rt_) return Unavailable(kNotRunning);
    const http::RequestHead& head = ctx.request();
    if (head.framing == http::BodyFraming::kContentLength && head.content_length > queue_.max_body)
      return Decision::Refuse(
          {ErrorKind::kBodyTooLarge, Side::kDownstream, false, "request body over max_body"});
    if (std::string_view url = CallbackUrl(head); !url.empty()) {
      if (!CheckRequestedCallback(*queue_.callback, url).empty())
        return Decision::Respond({400, {}, kJson, kCallbackRefused});
    }
    Counters& c = rt_->counters;
    // Reserve the place first: concurrent admissions cannot overshoot max_jobs.
    if (c.depth.fetch_add(1, std::memory_order_relaxed) >= static_cast<int64_t>(queue_.max_jobs)) {
      c.depth.fetch_sub(1, std::memory_order_relaxed);
      c.full.fetch_add(1, std::memory_order_relaxed);
      return Unavailable(kFull);
    }
    ctx.state() = 1;  // depth reserved, no Pending yet
    return Decision::Wait();
  }

  net::Task<Decision> Wait(Context& ctx) override {
    Counters& c = rt_->counters;
    std::string_view body;
    if (policy::BodyReader* reader = ctx.body_reader()) {
      Result<std::string_view> read = co_await reader->ReadBody(queue_.max_body);
      if (!read) co_return Decision::Refuse(read.error());
      body = *read;
    }
    auto* p = new Pending(ctx.loop(), *this, ctx.request(), body);
    ctx.state() = reinterpret_cast<uint64_t>(p);
    const int64_t size = p->body_size();
    if (c.bytes.fetch_add(size, std::memory_order_relaxed) + size >
        static_cast<int64_t>(queue_.max_bytes)) {
      c.bytes.fetch_sub(size, std::memory_order_relaxed);
      c.full.fetch_add(1, std::memory_order_relaxed);
      co_return Unavailable(kFull);
    }
    p->bytes_reserved = true;
    rt_->writer->Submit(p);
    co_await p->wakeup();
    switch (p->outcome()) {
      case Pending::Outcome::kInserted:
      case Pending::Outcome::kExisting: {
        p->fields = "Location: " + queue_.jobs_path + "/" + p->id() + "\r\n" + retry_after_;
        JsonWriter w;
        w.BeginObject().Key("id").String(p->id()).Key("queue").String(queue_.name);
        w.Key("location").String(queue_.jobs_path + "/" + p->id());
        if (p->outcome() == Pending::Outcome::kExisting) w.Key("repeated").Bool(true);
        w.EndObject();
        p->json = w.Take();
        p->json += '\n';
        co_return Decision::Respond({202, p->fields, kJson, p->json});
      }
      case Pending::Outcome::kConflict:
        co_return Decision::Respond({422, {}, kJson, kConflictBody});
      default:
        c.write_failures.fetch_add(1, std::memory_order_relaxed);
        co_return Unavailable(kWriteFailed);
    }
  }

  void End(Context& ctx, const policy::Outcome&) override {
    uint64_t& state = ctx.state();
    if (state == 0 || !rt_) return;
    Counters& c = rt_->counters;
    if (state == 1) {  // refused before the body was stored
      c.depth.fetch_sub(1, std::memory_order_relaxed);
    } else {
      auto* p = reinterpret_cast<Pending*>(state);
      // An inserted job's place is the deliverer's to give back when the job finishes.
      if (p->outcome() != Pending::Outcome::kInserted) {
        c.depth.fetch_sub(1, std::memory_order_relaxed);
        if (p->bytes_reserved) c.bytes.fetch_sub(p->body_size(), std::memory_order_relaxed);
      }
      delete p;
    }
    state = 0;
  }

  const config::Offload& offload() const { return offload_; }
  const config::Queue& queue() const { return queue_; }
  // The callback URL the request names (the queue's callback.request_header), or empty.
  std::string_view CallbackUrl(const http::RequestHead& head) const {
    if (!queue_.callback || queue_.callback->request_header.empty()) return {};
    for (const http::Header& h : head.headers) {
      if (http::EqualsIgnoreCase(h.name, queue_.callback->request_header)) return h.value;
    }
    return {};
  }
  const std::string& cluster() const { return cluster_; }
  QueueRuntime& runtime() const { return *rt_; }

 private:
  static constexpr std::string_view kNotRunning =
      "{\"error\":\"queue_unavailable\",\"detail\":\"the job queue is not running\"}\n";
  static constexpr std::string_view kFull =
      "{\"error\":\"queue_full\",\"detail\":\"the job queue is full; retry later\"}\n";
  static constexpr std::string_view kWriteFailed =
      "{\"error\":\"queue_write_failed\",\"detail\":\"the job could not be stored; retry "
      "later\"}\n";
  static constexpr std::string_view kCallbackRefused =
      "{\"error\":\"callback_not_allowed\",\"detail\":\"the callback URL is not an http(s) URL "
      "of one of the queue's allowed_origins\"}\n";
  static constexpr std::string_view kConflictBody =
      "{\"error\":\"idempotency_key_reused\",\"detail\":\"this Idempotency-Key names a job of "
      "a different request\"}\n";

  Decision Unavailable(std::string_view body) const {
    return Decision::Respond({503, retry_after_, kJson, body});
  }

  config::Offload offload_;
  config::Queue queue_;
  std::string cluster_;
  std::shared_ptr<QueueRuntime> rt_;
  std::string retry_after_;
};

Pending::Pending(net::Loop& loop, const OffloadPolicy& policy, const http::RequestHead& head,
                 std::string_view body)
    : wakeup_(loop),
      policy_(policy),
      job_(std::make_unique<Job>()),
      body_size_(static_cast<int64_t>(body.size())) {
  const config::Queue& q = policy_.queue();
  Job& j = *job_;
  j.token = NewToken();
  j.queue = q.name;
  j.cluster = policy_.cluster();
  const std::string_view key = IdempotencyKey(head);
  j.idempotency_key = std::string(key);  // empty: Add makes the job id the key
  j.method = std::string(head.method_text);
  j.target = std::string(head.target);
  const std::string_view callback = policy_.CallbackUrl(head);
  j.callback_url = std::string(callback);
  for (const http::Header& h : head.headers) {
    // The callback header is ficus's, not the application's: it is not sent on.
    if (!callback.empty() && http::EqualsIgnoreCase(h.name, q.callback->request_header)) continue;
    if (Stored(h)) j.headers.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  j.body = std::string(body);
  j.max_attempts = policy_.offload().max_attempts;
  j.created_ms = WallMillis();
  fingerprint_ = key.empty() ? 0 : Fingerprint(j.method, j.target, j.body);
  // Without the client's key the job's own id is the key: nothing to look up.
  key_since_ms_ = key.empty() ? INT64_MAX : j.created_ms - q.retention.count();
}

void Pending::Run(Store& store) {
  Job& j = *job_;
  std::string existing;
  switch (store.Add(j, fingerprint_, key_since_ms_, &existing)) {
    case Store::Insert::kInserted:
      outcome_ = Outcome::kInserted;
      id_ = j.id;
      break;
    case Store::Insert::kExisting:
      outcome_ = Outcome::kExisting;
      id_ = existing;
      break;
    case Store::Insert::kConflict:
      outcome_ = Outcome::kConflict;
      break;
    case Store::Insert::kError:
      outcome_ = Outcome::kWriteFailed;
      break;
  }
}

void Pending::Done(bool committed) {
  QueueRuntime& rt = policy_.runtime();
  if (!committed) {
    outcome_ = Outcome::kWriteFailed;
  } else if (outcome_ == Outcome::kInserted) {
    rt.counters.enqueued.fetch_add(1, std::memory_order_relaxed);
    rt.deliverer->Push(std::move(job_));
  } else if (outcome_ == Outcome::kExisting) {
    rt.counters.duplicates.fetch_add(1, std::memory_order_relaxed);
  } else if (outcome_ == Outcome::kConflict) {
    rt.counters.conflicts.fetch_add(1, std::memory_order_relaxed);
  }
  job_.reset();
  wakeup_.Signal();  // last: the waiter may free this as soon as it runs
}

}  // namespace

std::unique_ptr<policy::Policy> MakeOffloadPolicy(const config::Offload& offload,
                                                  const config::Queue& queue,
                                                  const std::string& cluster,
                                                  std::shared_ptr<QueueRuntime> runtime) {
  return std::make_unique<OffloadPolicy>(offload, queue, cluster, std::move(runtime));
}

}  // namespace ficus::queue::internal
