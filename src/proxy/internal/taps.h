// The taps: observers of an exchange at fixed points (begin, routed, request body bytes,
// response head, response body bytes, end). Metrics cells, the access-log and trace record,
// traffic capture (`record:`), 5xx error samples and the cacheability sample live here, so the
// transport phases only say what happened. A tap never changes the outcome. The set is fixed at
// compile time: inline calls that cost a predictable branch when a feature is off, no virtual
// dispatch per request. Internal to proxy/; one Taps per session, on the worker's thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

#include "http/http.h"
#include "policy/policy.h"
#include "proxy/internal/exchange.h"
#include "proxy/proxy.h"

namespace ficus::proxy {

class Taps {
 public:
  explicit Taps(Worker& worker) : worker_(worker) {}
  Taps(const Taps&) = delete;
  Taps& operator=(const Taps&) = delete;
  ~Taps() { CommitCapture(); }

  // The tail of the exchange block holds the access-log/trace record of the current exchange.
  static constexpr size_t kRecordBytes = (sizeof(observe::ExchangeRecord) + 63) / 64 * 64;

  // --- begin: every exchange, parsed or not (taps.cc) ---
  // Trace ids and the upstream traceparent, the sampling decisions, and (when sampled) the
  // request's strings copied into the record at `record_area` (the block's tail; null when the
  // session holds no block). `parsed` is false for a request whose head was rejected.
  void Begin(const Exchange& ex, std::string_view client_ip, char* record_area, bool parsed);

  // --- routed (taps.cc): counts the request and its client key, draws the cacheability sample
  // and, on a route with `record:`, starts the capture with a copy of `raw_head`.
  void OnRouted(Exchange& ex, const Snapshot& snap, int route, std::string_view client_ip,
                std::string_view raw_head);
  // The cluster (ex.cluster set) and each try's endpoint (after the pick).
  void OnCluster(const Exchange& ex);
  void OnEndpoint(const Exchange& ex, const Snapshot& snap, size_t endpoint);
  void OnConnectStart() {
    connect_start_ns_ = MonotonicNanos();
    connected_ns_ = 0;
  }
  void OnConnected() { connected_ns_ = MonotonicNanos(); }
  void OnRetry() {
    if (retries_ < UINT8_MAX) ++retries_;
  }

  // --- request body bytes as they go upstream. `first`: the piece sent with the head, which a
  // retry sends again (captured once).
  void OnRequestBody(std::string_view bytes, bool first) {
    if (record_slot_ != nullptr && (!first || record_slot_->body_seen == 0))
      record_slot_->AppendBody(bytes);
  }
  void OnRequestSent() {
    sent_ns_ = MonotonicNanos();
    first_byte_ns_ = 0;
  }

  // --- response head: the first byte, then the (final) head the client will get. A 5xx is
  // sampled with the request head as sent upstream (`request_head`, empty when unknown).
  void OnResponseFirstByte() { first_byte_ns_ = MonotonicNanos(); }
  void OnResponseHead(const Exchange& ex, std::string_view request_head,
                      std::string_view response_head) {
    upstream_status_ = static_cast<uint16_t>(ex.status);
    if (ex.status >= 500 && !request_head.empty()) SampleError(ex, request_head, response_head);
  }

  // --- response body bytes as they go downstream (`dechunk`: a chunked body decoded for an
  // HTTP/1.0 client). A chunked body relayed with its framing is seen through payload_sink()
  // instead, which the chunk scanner hands its payload pieces: never the framing.
  void OnResponseBody(const http::ResponseHead& resp, bool dechunk, const char* data, size_t n) {
    if (wants_payload()) [[unlikely]] {
      if (resp.framing != http::BodyFraming::kChunked || dechunk) TakePayload(this, {data, n});
    }
  }
  // A policy's sink for this exchange's response body (policy::Context::TapResponseBody); null
  // for none. Set before the body is relayed.
  void TapBody(policy::BodySink* sink) { body_sink_ = sink; }
  // Whether a tap wants the payload of a chunked body relayed with its framing: the chunk
  // scanner then hands the payload pieces to TakePayload (else it skips the callback).
  bool wants_payload() const { return repeat_sample_ || body_sink_ != nullptr; }
  static void TakePayload(void* self, std::string_view piece) {
    auto* taps = static_cast<Taps*>(self);
    if (taps->repeat_sample_) taps->repeat_hasher_.Update(piece.data(), piece.size());
    if (taps->body_sink_) taps->body_sink_->Body(piece);
  }
  // The whole body went out.
  void OnResponseDone(const Exchange& ex, const http::ResponseHead& resp) {
    if (repeat_sample_) [[unlikely]]
      FinishRepeatSample(ex, resp);
    if (body_sink_) [[unlikely]]
      std::exchange(body_sink_, nullptr)->Done(/*complete=*/true);
  }

  // --- errors: the Error the fail phase answered, and whether a 5xx of this exchange would be
  // sampled (the caller then builds the request head it would have sent).
  void OnError(const Error& error) { last_error_ = error.context; }
  bool SamplesErrors(const Exchange& ex) const {
    return ex.route != nullptr && worker_.error_sampler() != nullptr;
  }
  // A 5xx for a routed request: the request head (as sent, or as it would have been sent,
  // upstream) and the response head into this worker's error sample ring. A memcpy; a full ring
  // drops the sample.
  void SampleError(const Exchange& ex, std::string_view request_head,
                   std::string_view response_head);

  // --- end: metrics cells, the access log and trace record, the capture committed.
  void OnEnd(const Exchange& ex) {
    if (body_sink_) [[unlikely]]
      std::exchange(body_sink_, nullptr)->Done(/*complete=*/false);  // the body was cut short
    Record(ex);
    CommitCapture();
  }
  // Who asked (an auth policy's consumer), for the record of this exchange. Before OnEnd.
  void SetConsumer(std::string_view consumer) {
    if (record_ != nullptr) record_->SetConsumer(consumer);
  }
  // For the policies' End: whether the upstream answered, and how fast (request sent to its
  // first response byte, the last try; 0 when unknown).
  bool upstream_answered() const { return upstream_status_ != 0; }
  int64_t upstream_latency_ns() const {
    return sent_ns_ != 0 && first_byte_ns_ > sent_ns_ ? first_byte_ns_ - sent_ns_ : 0;
  }
  void CommitCapture() {
    if (record_slot_) recorder_->Commit(worker_.id(), record_slot_);
    record_slot_ = nullptr;
  }

  // A rate limit (429) or concurrency limit (503) refused the request at admit: its client key
  // into the route's sketch of limited keys (the report names the keys ficus limited).
  void CountLimitedKey(const Exchange& ex, std::string_view client_ip);

  // What the upstream request head carries for tracing.
  bool tracing() const { return tracing_; }
  std::string_view traceparent() const { return {traceparent_, sizeof traceparent_}; }
  bool drop_tracestate() const { return drop_tracestate_; }

 private:
  void CountClientKey(const Exchange& ex, std::string_view client_ip);
  void Record(const Exchange& ex);
  // The cacheability sample (taps_repeat.cc): 1 in telemetry.repeat_sample routed requests has
  // its GET/HEAD 200 response body hashed as it is relayed, then counted in the route's
  // RepeatSketch. Unsampled requests pay one countdown decrement (OnRouted).
  void StartRepeatSample(const Exchange& ex, const Snapshot& snap);
  void FinishRepeatSample(const Exchange& ex, const http::ResponseHead& resp);

  Worker& worker_;
  // observe::HashClient of this exchange's client key, for the route's sketch of distinct
  // clients.
  uint64_t client_key_hash_ = 0;
  observe::TrafficStats* route_stats_ = nullptr;
  observe::TrafficCell* cluster_traffic_ = nullptr;
  observe::TrafficStats* endpoint_stats_ = nullptr;
  observe::ExchangeRecord* record_ = nullptr;  // in the block; set when logged or traced
  const char* last_error_ = nullptr;
  // Monotonic ns, 0 when the phase did not happen.
  int64_t upstream_start_ns_ = 0;
  int64_t connect_start_ns_ = 0;
  int64_t connected_ns_ = 0;
  int64_t sent_ns_ = 0;
  int64_t first_byte_ns_ = 0;
  uint16_t upstream_status_ = 0;
  uint8_t retries_ = 0;
  bool log_this_ = false;
  bool trace_this_ = false;
  bool tracing_ = false;          // the upstream gets traceparent_ (tracing is configured)
  bool drop_tracestate_ = false;  // the client's tracestate is not forwarded
  // This request carried the running assessment's secret (X-Ficus-Synthetic): Record also
  // counts it in the route cell's `synthetic` counts, which the SLOs subtract.
  bool synthetic_ = false;
  bool repeat_sample_ = false;  // the cacheability sample of this exchange
  char traceparent_[http::kTraceParentSize] = {};
  // `record:` on the route: this exchange's capture slot (null when not recorded).
  record::Recorder* recorder_ = nullptr;
  record::Slot* record_slot_ = nullptr;
  uint64_t repeat_key_ = 0;  // hash of method, host, path and query
  observe::BodyHasher repeat_hasher_;
  policy::BodySink* body_sink_ = nullptr;
};

}  // namespace ficus::proxy
