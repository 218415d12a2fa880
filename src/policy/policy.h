// ficus::policy — the unit a route's request path is extended by. A policy runs at admit, after
// route and before the upstream: it lets the request pass, changes it (adds a field sent
// upstream), or answers it itself (401, 429, 503, 304, 202, a cached 200) and ends the chain. It
// may also see the upstream's response (add fields to it, store it, replace it) and always sees
// the end of every exchange it admitted.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/base.h"
#include "config/config.h"
#include "http/http.h"
#include "net/net.h"
#include "net/task.h"

namespace ficus::policy {

// A route's chain runs in this order, whatever order the config lists them in (docs/
// architecture.md, "How to add a policy"): who may ask, how often, how many at once, which
// variant, whether a stored answer will do, whether the work waits.
// Compression sees the upstream's response before the cache, so that the cache stores the
// representation the client gets (its Content-Encoding, Vary and ETag).
enum class Order : uint8_t { kAuth, kRateLimit, kConcurrency, kFlags, kCompress, kCache, kOffload };

// An answer a policy gives in place of the upstream. Every view must stay valid until the
// exchange ends (the policy's End): static text, storage the policy owns, or an object it pins
// in its exchange state (Context::state). The body is written from the view, not copied.
struct Answer {
  int status = 200;
  std::string_view headers;       // extra fields, raw "Name: value\r\n" lines; may be empty
  std::string_view content_type;  // empty: no Content-Type field
  std::string_view body;
};

// What Admit (or OnResponse) decides: pass (the next policy, then the upstream), answer, fail
// with an Error that the fail phase turns into a status and a JSON body like any other, or (from
// Admit only) wait: the admit phase then co_awaits the policy's Wait for the decision.
struct Decision {
  enum class Kind : uint8_t { kPass, kAnswer, kError, kWait };
  Kind kind = Kind::kPass;
  Answer answer;  // kAnswer
  Error error;    // kError

  static Decision Pass() { return {}; }
  static Decision Respond(const Answer& a) { return {Kind::kAnswer, a, {}}; }
  static Decision Refuse(const Error& e) { return {Kind::kError, {}, e}; }
  static Decision Wait() { return {Kind::kWait, {}, {}}; }
};

// How an exchange ended, for End: what the client got and what the upstream did.
struct Outcome {
  int status = 0;                   // what the client was answered (0: nothing)
  bool upstream_reached = false;    // a response head came from the upstream
  bool complete = false;            // the whole response reached the client
  int64_t upstream_latency_ns = 0;  // request sent to response head, the last try; 0 if none
};

// The payload of an upstream response body as it is relayed to the client (no chunk framing,
// transfer codings removed): a cache stores while relaying. Runs on the worker thread; must not
// block.
class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void Body(std::string_view payload) = 0;
  // The body ended: `complete` is false when it was cut short (the upstream or client went).
  virtual void Done(bool complete) = 0;
};

// Rewrites the payload of an upstream response body on its way to the client (a content
// coding: compression). The relay hands it the payload piece by piece (framing and transfer
// codings removed) and sends what it appends to `out`, framed anew: chunked to an HTTP/1.1
// client, delimited by closing the connection to an HTTP/1.0 one. A body sink (a cache) sees the
// transformed bytes, which are what the client gets. Runs on the worker thread; must not block.
class BodyTransform {
 public:
  virtual ~BodyTransform() = default;
  virtual Status Write(std::string_view payload, std::string& out) = 0;
  // The upstream paused (nothing more has arrived yet): push out what the client can use now.
  virtual Status Flush(std::string& out) = 0;
  // The body ended: append the rest (a trailer, a checksum).
  virtual Status Finish(std::string& out) = 0;
};

// What the proxy offers a policy that must read the request body (offload): the whole body, up
// to `limit` bytes, into storage the connection keeps until the exchange ends. Over `limit`:
// ErrorKind::kBodyTooLarge (413). REQUIRES: called from Wait; a policy that read the body must
// answer (or refuse): the upstream is not sent a body that was consumed.
class BodyReader {
 public:
  virtual net::Task<Result<std::string_view>> ReadBody(uint64_t limit) = 0;

 protected:
  ~BodyReader() = default;
};

// The exchange as the policies see it, from admit to end. Lives for one exchange on the worker
// thread that serves it; the admit phase sets the position of the policy it calls, so state()
// is that policy's own word.
class Context {
 public:
  static constexpr size_t kMaxPolicies = 8;  // one per Order, with room to spare

  Context(const http::RequestHead& request, const config::Route& route, std::string_view client_ip,
          std::string_view request_id, int64_t now_ms, int worker, net::Loop& loop,
          std::string& added, std::string& response_added, BodyReader* body_reader)
      : request_(request),
        route_(route),
        client_ip_(client_ip),
        request_id_(request_id),
        now_ms_(now_ms),
        worker_(worker),
        loop_(loop),
        added_(added),
        response_added_(response_added),
        body_reader_(body_reader) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const http::RequestHead& request() const { return request_; }
  const config::Route& route() const { return route_; }
  std::string_view client_ip() const { return client_ip_; }
  std::string_view request_id() const { return request_id_; }
  int64_t now_ms() const { return now_ms_; }  // the worker's coarse clock at admit
  int worker() const { return worker_; }      // the worker thread's index, for per-worker shards
  // The worker's event loop: what a policy's Wait suspends on (net::Wakeup, Loop::Sleep).
  net::Loop& loop() const { return loop_; }

  // Adds a field to the request head sent upstream (after the client's fields). REQUIRES: a
  // valid field name and value (no CR or LF). Copied into storage the connection keeps, so it
  // allocates only the first time a connection needs the room.
  void AddHeader(std::string_view name, std::string_view value) {
    added_.append(name).append(": ").append(value).append("\r\n");
  }
  // Adds a field to the response the client gets, whoever answers: the upstream, a policy or
  // the fail phase (RateLimit, Cache-Status, Vary). Same rules and storage as AddHeader.
  void AddResponseHeader(std::string_view name, std::string_view value) {
    response_added_.append(name).append(": ").append(value).append("\r\n");
  }

  // Who is asking, once an auth policy knows (empty before): rate-limit keys, the access log
  // and traces read it. Copied; at most kMaxConsumer bytes are kept.
  static constexpr size_t kMaxConsumer = 64;
  void set_consumer(std::string_view name) {
    consumer_len_ = name.size() < kMaxConsumer ? name.size() : kMaxConsumer;
    name.copy(consumer_, consumer_len_);
  }
  std::string_view consumer() const { return {consumer_, consumer_len_}; }

  // The calling policy's word of exchange state, zero when its Admit first runs: a slot it
  // holds, an entry it pinned. Its End releases what the word refers to.
  uint64_t& state() { return states_[position_]; }
  // The response body sink of this exchange (one at most; the last set wins). Set from
  // OnResponse; cleared when the exchange ends.
  void TapResponseBody(BodySink* sink) { body_sink_ = sink; }
  BodySink* response_body_sink() const { return body_sink_; }

  // The response body transform of this exchange (one at most; the last set wins), set from
  // OnResponse. The relay applies it to a body it relays from the upstream (not to a policy's
  // answer, nor to a body under a transfer coding, nor after HEAD, 1xx, 204 or 304) and then
  // sends no Content-Length. The policy describes the new representation with
  // AddRepresentationHeader and DropResponseField.
  void TransformResponseBody(BodyTransform* transform) { transform_ = transform; }
  BodyTransform* response_transform() const { return transform_; }
  // A field of the relayed response that describes its representation (Content-Encoding, Vary,
  // a weakened ETag): sent to the client like AddResponseHeader's, and part of what a cache
  // stores (unlike Cache-Status or RateLimit). Not sent with a policy's answer. Same rules.
  void AddRepresentationHeader(std::string_view name, std::string_view value) {
    representation_.append(name).append(": ").append(value).append("\r\n");
  }
  std::string_view representation_fields() const { return representation_; }
  // Removes the upstream's field `name` (any case) from the relayed response (an ETag replaced
  // by a weak one, Accept-Ranges of a re-encoded body). `name` must outlive the exchange
  // (static text); at most kMaxDropped names, more are ignored.
  static constexpr size_t kMaxDropped = 4;
  void DropResponseField(std::string_view name) {
    if (dropped_count_ < kMaxDropped) dropped_[dropped_count_++] = name;
  }
  std::span<const std::string_view> dropped_response_fields() const {
    return {dropped_, dropped_count_};
  }
  bool Dropped(std::string_view name) const {
    for (size_t i = 0; i < dropped_count_; ++i) {
      if (http::EqualsIgnoreCase(dropped_[i], name)) return true;
    }
    return false;
  }

  // With an answer from Admit (not from Wait): after the answer has gone to the client, forward
  // the request upstream all the same, and give its response to the policies (OnResponse, the
  // body sink, the transform) but not to the client, which has its answer: a background refresh
  // (stale-while-revalidate). Only for a request without a body; a failure is the policies' to
  // see (OnError), not the client's.
  void RefreshInBackground() { refresh_in_background_ = true; }
  bool refresh_in_background() const { return refresh_in_background_; }

  // See BodyReader. Null in contexts that cannot read a body (tests may leave it unset).
  BodyReader* body_reader() const { return body_reader_; }

  // --- for the admit phase ---
  void set_position(size_t i) { position_ = i; }
  void set_now_ms(int64_t now) { now_ms_ = now; }

 private:
  const http::RequestHead& request_;
  const config::Route& route_;
  std::string_view client_ip_;
  std::string_view request_id_;
  int64_t now_ms_;
  int worker_;
  net::Loop& loop_;
  std::string& added_;
  std::string& response_added_;
  BodyReader* body_reader_;
  BodySink* body_sink_ = nullptr;
  BodyTransform* transform_ = nullptr;
  std::string representation_;
  std::string_view dropped_[kMaxDropped];
  size_t dropped_count_ = 0;
  bool refresh_in_background_ = false;
  size_t position_ = 0;
  uint64_t states_[kMaxPolicies] = {};
  size_t consumer_len_ = 0;
  char consumer_[kMaxConsumer];
};

// One configured policy of one route. Built once per config snapshot, shared by every worker:
// every method may run on several worker threads at once, so per-exchange state lives in the
// Context (state()), and shared state is the policy's own to synchronize (or keep per worker).
class Policy {
 public:
  virtual ~Policy() = default;
  virtual Order order() const = 0;
  // The fast path: decide now, or return Decision::Wait() to be awaited (a queue slot, a
  // durable write, a coalesced fetch).
  virtual Decision Admit(Context& ctx) = 0;
  // Called only after Admit returned Wait. Must not return Wait.
  virtual net::Task<Decision> Wait(Context& /*ctx*/) { co_return Decision::Pass(); }
  // The upstream's response head of a request the whole chain passed, before the client gets
  // it, in chain order. Pass relays it (with fields added by ctx.AddResponseHeader); Respond
  // replaces it with the policy's answer (a stored response after a 304, stale-if-error): the
  // upstream's body is then discarded. An Error fails the exchange as usual.
  virtual Decision OnResponse(Context& /*ctx*/, const http::ResponseHead& /*response*/) {
    return Decision::Pass();
  }
  // The upstream failed before any of its response reached the client (no endpoint, a connect
  // failure, a timeout, a reset, a malformed head: `error`, after retries), in chain order.
  // Respond answers in place of the error (stale-if-error); Pass leaves it to the fail phase.
  virtual Decision OnError(Context& /*ctx*/, const Error& /*error*/) { return Decision::Pass(); }
  // Every exchange whose Admit this policy ran ends here, however it ended (passed, answered by
  // this or a later policy, failed, client gone), in reverse chain order: release what
  // ctx.state() holds, feed a latency sample.
  virtual void End(Context& /*ctx*/, const Outcome& /*outcome*/) {}
};

// A route's policies in Order. Empty for a route without any: the admit phase then costs one
// branch, no virtual call and no allocation.
using Chain = std::vector<std::unique_ptr<Policy>>;

// What a module's builder gets for one route of a new snapshot. A builder appends the policies
// its config keys ask for; state that must outlive a reload (a cache's store, a limiter's
// counters) is taken from the same route's chain in the running snapshot (`previous`, null on
// the first load or for a new route), so a reload does not empty the cache.
struct BuildContext {
  const config::Config& config;
  const config::Route& route;
  size_t route_index;
  const Chain* previous;

  // The previous chain's policy of `order`, or null.
  const Policy* Previous(Order order) const {
    if (previous == nullptr) return nullptr;
    for (const auto& p : *previous) {
      if (p->order() == order) return p.get();
    }
    return nullptr;
  }
};

}  // namespace ficus::policy
