// A downstream connection and the exchanges on it, phase by phase. Internal to proxy/.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "http/http.h"
#include "net/net.h"
#include "proxy/proxy.h"

namespace ficus::proxy {

class Session final : public net::TimeoutList::Entry {
 public:
  Session(Worker& worker, net::Socket socket);
  ~Session() override;

  // The tail of the exchange block holds the access-log/trace record of the current exchange.
  static constexpr size_t kRecordBytes = (sizeof(observe::ExchangeRecord) + 63) / 64 * 64;

  // Serves requests until the connection closes. Owns nothing but its own state.
  net::Task<void> Run();

  // Timeout sweep: cancel whatever is pending; the phase that was waiting maps it to an error.
  void OnTimeout() override;
  // Drain: a connection waiting for its next request is closed now; one inside an exchange
  // finishes it and then closes.
  void CloseIfIdle();
  // Shutdown deadline passed: stop everything.
  void Abort();
  // `removed` (owned by the worker, outlives the session) turns true when a reload removes the
  // listener this connection came in on: its next response says Connection: close.
  void WatchListener(const bool* removed) { listener_removed_ = removed; }

 private:
  enum class Wait : uint8_t {
    kNone,
    kIdle,
    kPark,
    kHead,
    kBody,
    kConnect,
    kUpstreamSend,
    kUpstreamResponse,
    kUpstreamBody,
    kDownstreamWrite,
    kTunnel
  };
  enum class Next : uint8_t { kRequest, kClose };

  // --- phases ---
  net::Task<Result<Next>> ReadHead();
  void TakeCurrentSnapshot();  // the worker's, if a reload changed it
  net::Task<bool> Exchange();  // route -> upstream -> respond -> record; true = keep going
  net::Task<Status> Forward(const config::Route& route);
  // One try on one endpoint (with the keep-alive-race resend on a fresh connection).
  net::Task<Status> Attempt(size_t endpoint, size_t body_start, bool replayable);
  size_t PickEndpoint(uint32_t try_number);
  // Reserves a retry (an endpoint this request has not tried, the budget, the max_retries
  // breaker, back-off before the deadline) and sets next_endpoint_; false = no retry.
  // `connect_failure`: the failed try never reached the application.
  bool ReserveRetry(uint32_t next_try, bool connect_failure = false);
  net::Task<Status> SendRequest(upstream::Connection& conn, bool* retryable);
  net::Task<Status> RelayResponse(upstream::Connection& conn, bool* retryable);
  net::Task<Status> RelayBody(upstream::Connection& conn, const http::ResponseHead& resp,
                              size_t head_size, size_t got);
  // A body under a compression transfer coding: decoded, re-chunked for HTTP/1.1 clients.
  net::Task<Status> RelayDecodedBody(upstream::Connection& conn, const http::ResponseHead& resp,
                                     size_t head_size, size_t got);
  net::Task<void> Tunnel(upstream::Connection& conn);
  net::Task<void> Pump(net::Socket& from, net::Socket& to, std::span<char> buf);
  net::Task<void> Fail(const Error& error);
  void Record(int status);
  // A 5xx for a routed request: copies the request head (as sent, or as it would have been
  // sent, upstream) and the response head into this worker's error sample ring. A memcpy; a
  // full ring drops the sample.
  void SampleError(std::string_view request_head, std::string_view response_head);

  // --- observation (session_observe.cc): metrics cells, access log and trace record ---
  // At the start of an exchange: trace ids and the upstream traceparent, the sampling
  // decisions, and (when sampled) the request's strings copied into the record. `parsed` is
  // false for a request whose head was rejected.
  void BeginObserve(bool parsed);
  void EnterRoute(observe::TrafficStats* stats);  // counts the request, in flight
  void CountClientKey();                          // the route's heavy-hitter sketch
  void EnterCluster();                            // after cluster_ is set
  void EnterEndpoint(size_t endpoint);            // after the pick
  // --- cacheability sample (session_repeat.cc): 1 in telemetry.repeat_sample routed requests
  // has its GET/HEAD 200 response body hashed as it is relayed, then counted in the route's
  // RepeatSketch. Unsampled requests pay one countdown decrement (EnterRoute).
  void StartRepeatSample();
  // Body bytes as sent downstream (not for a chunked body relayed with its framing: the
  // scanner hands its payload to the hasher instead).
  void HashSent(const http::ResponseHead& resp, bool dechunk, const char* data, size_t n);
  void FinishRepeatSample(const http::ResponseHead& resp);

  // --- helpers ---
  void SetDeadline(int64_t after_ms, Wait what);
  int64_t upstream_timeout_ms() const;
  int64_t NowMs() const { return worker_.loop().NowMs(); }
  Error TimeoutError() const;
  Error ReadError(const net::ErrorCode& ec, Side side) const;
  void EnsureMemory();
  void ReleaseMemory();
  void SizeRequestFields(uint32_t max_header_count);
  size_t Pending() const { return in_end_ - in_begin_; }
  void CompactInput();
  net::Task<Status> WriteDownstream(iovec* iov, int count);
  // The balancer's view of the upstream attempt: StartAttempt calls OnStart, EndAttempt the
  // one OnEnd that every OnStart is owed (later calls do nothing). Forward's guard ends an
  // attempt that no response head ended as failed, on every path out.
  void StartAttempt(size_t endpoint);
  void EndAttempt(bool ok);

  Worker& worker_;
  net::Socket client_;
  std::shared_ptr<const Snapshot> snapshot_;  // the config this exchange runs on
  char client_ip_[48] = {};
  size_t client_ip_len_ = 0;
  // observe::HashClient of this exchange's client key (CountClientKey), for the route's sketch
  // of distinct clients.
  uint64_t client_key_hash_ = 0;

  // Exchange memory (a worker block, see session.cc for its layout): downstream input, the
  // parsed header fields, and the transfer buffer (request body chunks, then the upstream
  // response). Released while parked. Nothing here is malloc'd per exchange: an idle
  // connection's freed memory goes back to the OS instead of fragmenting the heap.
  char* block_ = nullptr;
  std::unique_ptr<char[]> big_in_;  // heads larger than kInCap, up to limits.max_head_bytes
  char* in_ = nullptr;
  size_t in_cap_ = 0;
  size_t in_begin_ = 0;  // start of unconsumed downstream bytes
  size_t in_end_ = 0;
  char* xfer_ = nullptr;
  size_t xfer_cap_ = 0;
  std::string out_;  // heads we write; its capacity is kept for the connection's life
  std::span<http::Header> req_fields_;   // in the block, or big_fields_ past kBlockFields
  std::span<http::Header> resp_fields_;  // in the block
  std::vector<http::Header> big_fields_;

  // The current exchange.
  http::RequestHead head_;
  char request_id_[128] = {};
  size_t request_id_len_ = 0;
  int64_t start_ns_ = 0;
  int64_t request_deadline_ms_ = INT64_MAX;
  bool keep_alive_ = true;
  bool request_body_done_ = true;  // every request body byte was read from the client
  bool response_started_ = false;  // a response head went out: errors can only close now
  uint64_t request_body_bytes_ = 0;
  uint64_t response_body_bytes_ = 0;
  int status_ = 0;
  const config::Route* route_ = nullptr;
  observe::RouteCell* route_cell_ = nullptr;
  observe::ClusterCell* cluster_cell_ = nullptr;
  std::shared_ptr<upstream::ClusterState> cluster_;  // kept alive across a reload
  bool pool_ok_ = false;         // the upstream connection may serve another request
  bool out_is_request_ = false;  // out_ holds this exchange's upstream request head
  size_t attempt_endpoint_ = 0;
  // Observation of the current exchange (session_observe.cc). Times are monotonic ns, 0 when
  // the phase did not happen.
  observe::TrafficStats* route_stats_ = nullptr;
  observe::TrafficCell* cluster_traffic_ = nullptr;
  observe::TrafficStats* endpoint_stats_ = nullptr;
  observe::ExchangeRecord* record_ = nullptr;  // in the block; set when logged or traced
  const char* last_error_ = nullptr;
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
  char traceparent_[http::kTraceParentSize] = {};
  int64_t attempt_start_ns_ = 0;  // 0 when the balancer does not use latency
  bool attempt_open_ = false;     // OnStart was called and its OnEnd is still owed
  // `record:` on the route: this exchange's capture slot (null when not recorded).
  record::Recorder* recorder_ = nullptr;
  record::Slot* record_slot_ = nullptr;
  void CommitRecord();
  // The cacheability sample of this exchange (StartRepeatSample); false on most exchanges.
  bool repeat_sample_ = false;
  uint64_t repeat_key_ = 0;  // hash of method, host, path and query
  observe::BodyHasher repeat_hasher_;
  // This request carried the running assessment's secret (X-Ficus-Synthetic, CountClientKey):
  // Record also counts it in the route cell's `synthetic` counts, which the SLOs subtract.
  bool synthetic_ = false;

  // Retries (issue 3). The request stays in the input area; a retry rewinds in_begin_.
  upstream::EndpointSet tried_;        // endpoints this request tried (grows once per connection)
  std::vector<uint64_t> avail_words_;  // the health mask of the current pick
  int64_t attempt_deadline_ms_ = INT64_MAX;  // per_try_timeout, until the response head
  int64_t backoff_ms_ = 0;                   // before the next try
  uint32_t try_number_ = 1;                  // of the current request, from 1
  bool may_retry_status_ = false;            // a retryable 5xx may be retried instead of relayed
  bool retry_requested_ = false;             // RelayResponse took a retryable 5xx: try again
  bool retrying_ = false;                    // this request holds the max_retries breaker
  size_t next_endpoint_ = 0;                 // the endpoint ReserveRetry chose
  bool affinity_hit_ = false;                // the client's affinity cookie chose the endpoint

  // Timeouts and cancellation.
  Wait waiting_ = Wait::kNone;
  Wait timed_out_ = Wait::kNone;
  upstream::Connection* upstream_ = nullptr;  // to cancel on timeout
  bool closing_ = false;                      // drain/abort asked us to stop
  const bool* listener_removed_ = nullptr;    // WatchListener
  bool ListenerRemoved() const { return listener_removed_ != nullptr && *listener_removed_; }
};

}  // namespace ficus::proxy
