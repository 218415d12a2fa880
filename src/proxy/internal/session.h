// A downstream connection and the exchanges on it. The session owns the connection (its memory
// block, keep-alive, pipelining, timeouts, lingering close); the Exchange owns one request; the
// phases own the flow, each in its own file:
//   read_head.cc -> exchange.cc (route, then the runner) -> admit.cc -> forward.cc (pick,
//   attempt, retry) -> send.cc -> relay.cc / relay_decoded.cc / tunnel.cc, and fail.cc, the
//   one place an Error becomes an answer. The taps (taps.h) observe. Internal to proxy/.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "http/http.h"
#include "net/net.h"
#include "proxy/internal/exchange.h"
#include "proxy/internal/taps.h"
#include "proxy/proxy.h"

namespace ficus::proxy {

// The exchange memory of a connection: a worker block (see session.cc for its layout) holding
// the downstream input, the parsed header fields and the transfer buffer (request body chunks,
// then the upstream response). Released while parked. Nothing here is malloc'd per exchange: an
// idle connection's freed memory goes back to the OS instead of fragmenting the heap.
struct ExchangeMemory {
  static constexpr size_t kInCap = 16 * 1024;  // downstream input; larger heads move to big_in
  static constexpr size_t kBlockFields = 100;  // header fields per direction stored in the block

  char* block = nullptr;
  std::unique_ptr<char[]> big_in;  // heads larger than kInCap, up to limits.max_head_bytes
  char* in = nullptr;
  size_t in_cap = 0;
  size_t in_begin = 0;  // start of unconsumed downstream bytes
  size_t in_end = 0;
  char* xfer = nullptr;
  size_t xfer_cap = 0;
  std::span<http::Header> req_fields;   // in the block, or big_fields past the block's share
  std::span<http::Header> resp_fields;  // in the block
  std::vector<http::Header> big_fields;

  size_t Pending() const { return in_end - in_begin; }
  std::string_view PendingBytes() const { return {in + in_begin, Pending()}; }
  // The tail of the block, where the taps keep the exchange's record; null without a block.
  char* record_area() const {
    return block ? block + Worker::kBlockSize - Taps::kRecordBytes : nullptr;
  }
};

class Session final : public net::TimeoutList::Entry, private policy::BodyReader {
 public:
  Session(Worker& worker, net::Socket socket);
  ~Session() override;

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
  friend class PhaseTest;  // tests/proxy/phases_test.cc drives each phase alone

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
  net::Task<Result<Next>> ReadHead();  // read_head.cc
  void TakeCurrentSnapshot();          // the worker's, if a reload changed it
  net::Task<bool> RunExchange();       // exchange.cc: the runner; true = keep going
  void BeginExchange();                // the snapshot, deadlines, the request id, the taps' begin
  Status Route();                      // the route and its policies, or the Error to answer
  net::Task<StepResult> Admit();       // admit.cc: the route's policies
  // The policies' view of the upstream's response head (admit.cc): pass, answer or fail.
  policy::Decision ResponsePolicies(const http::ResponseHead& resp);
  // The policies' view of an upstream failure before the response started (admit.cc): pass
  // (the fail phase answers) or answer in its place.
  policy::Decision ErrorPolicies(const Error& error);
  // Every policy whose Admit ran sees the end of the exchange (admit.cc).
  void EndPolicies();
  // policy::BodyReader (read_body.cc): the whole request body, for a policy that answers.
  net::Task<Result<std::string_view>> ReadBody(uint64_t limit) override;
  net::Task<Status> Forward(const config::Route& route);  // forward.cc
  // One try on one endpoint (with the keep-alive-race resend on a fresh connection).
  net::Task<Status> Attempt(size_t endpoint, size_t body_start, bool replayable);
  size_t PickEndpoint(uint32_t try_number);
  // Reserves a retry (an endpoint this request has not tried, the budget, the max_retries
  // breaker, back-off before the deadline) and sets ex_.next_endpoint; false = no retry.
  // `connect_failure`: the failed try never reached the application.
  bool ReserveRetry(uint32_t next_try, bool connect_failure = false);
  // The balancer's view of the upstream attempt: StartAttempt calls OnStart, EndAttempt the
  // one OnEnd that every OnStart is owed (later calls do nothing). Attempt's guard ends an
  // attempt that no response head ended as failed, on every path out.
  void StartAttempt(size_t endpoint);
  void EndAttempt(bool ok);
  // send.cc. An Error that is `retryable` says the upstream cannot have acted on the request
  // (nothing of a response came back): what lets Attempt resend it after the keep-alive race.
  net::Task<Status> SendRequest(upstream::Connection& conn);
  net::Task<Status> RelayResponse(upstream::Connection& conn);  // relay.cc
  net::Task<Status> RelayBody(upstream::Connection& conn, const http::ResponseHead& resp,
                              size_t head_size, size_t got);
  // A body under a compression transfer coding: decoded, re-chunked for HTTP/1.1 clients.
  net::Task<Status> RelayDecodedBody(upstream::Connection& conn, const http::ResponseHead& resp,
                                     size_t head_size, size_t got);
  // A body a policy transforms (relay_transformed.cc): the payload through the transform, the
  // output chunked for HTTP/1.1 clients, delimited by close for HTTP/1.0. Not `to_client` (a
  // background refresh): the output goes to the taps (the policies' body sink) only, and a null
  // transform passes the payload as it is.
  net::Task<Status> RelayTransformedBody(upstream::Connection& conn, const http::ResponseHead& resp,
                                         size_t head_size, size_t got,
                                         policy::BodyTransform* transform, bool to_client);
  net::Task<void> Tunnel(upstream::Connection& conn);  // tunnel.cc
  net::Task<void> Pump(net::Socket& from, net::Socket& to, std::span<char> buf);
  net::Task<void> Fail(const Error& error);  // fail.cc
  // Answers the request with `answer` (a policy's), through the same writer as Fail.
  net::Task<void> Answer(const policy::Answer& answer);
  // Before an answer of ficus's own: a request whose body was not read (or `out_of_sync`: a
  // malformed one) leaves the stream out of sync: close after answering. A body that is
  // already here whole is skipped instead, and the connection kept if `keep_if_skipped`.
  void SettleUnreadBody(bool out_of_sync, bool keep_if_skipped);
  bool MayKeepAlive() const { return ex_.keep_alive && !worker_.draining() && !ListenerRemoved(); }

  // --- helpers (session.cc) ---
  // Inline: every phase sets deadlines, and each is a few compares and a store.
  void SetDeadline(int64_t after_ms, Wait what) {
    waiting_ = what;
    timed_out_ = Wait::kNone;
    int64_t at = NowMs() + after_ms;
    if (ex_.deadline_ms < at && what != Wait::kIdle && what != Wait::kPark) {
      at = ex_.deadline_ms;  // the total request deadline bounds every phase
    }
    if (ex_.attempt_deadline_ms < at && (what == Wait::kConnect || what == Wait::kUpstreamSend ||
                                         what == Wait::kUpstreamResponse)) {
      at = ex_.attempt_deadline_ms;  // per_try_timeout bounds one try, up to its response head
    }
    net::TimeoutList::Entry::SetDeadline(at);
  }
  int64_t upstream_timeout_ms() const {
    if (ex_.route && ex_.route->upstream_timeout) return ex_.route->upstream_timeout->count();
    return snapshot_->config->timeouts.upstream_response.count();
  }
  int64_t NowMs() const { return worker_.loop().NowMs(); }
  Error TimeoutError() const;
  Error ReadError(const net::ErrorCode& ec, Side side) const;
  void EnsureMemory();
  void ReleaseMemory();
  void SizeRequestFields(uint32_t max_header_count);
  size_t Pending() const { return mem_.Pending(); }
  void CompactInput();
  // Writes `iov` to the client, after any deferred answers (one writev for both). count <= 6.
  net::Task<Status> WriteDownstream(iovec* iov, int count);
  // Writes the deferred answers (see deferred_). Call before anything that may wait: a read
  // from the client, an upstream exchange, a policy's Wait, the end of the connection.
  net::Task<Status> FlushDeferred();
  // Sets ex_.termination from the exchange's result `s` unless a cause is already known.
  void EndTermination(const Status& s);
  std::string_view client_ip() const { return {client_ip_, client_ip_len_}; }
  // The upstream request head of this exchange into out_ (forward.cc, inline there).
  void BuildUpstreamHead();
  bool ListenerRemoved() const { return listener_removed_ != nullptr && *listener_removed_; }

  Worker& worker_;
  net::Socket client_;
  std::shared_ptr<const Snapshot> snapshot_;  // the config this exchange runs on
  char client_ip_[48] = {};
  size_t client_ip_len_ = 0;
  uint64_t exchanges_ = 0;  // requests read on this connection (the first waits request_head)
  ExchangeMemory mem_;
  std::string out_;             // heads we write; its capacity is kept for the connection's life
  std::string added_;           // fields the policies added to this request (capacity kept)
  std::string response_added_;  // ... and to its response, whoever answers (capacity kept)
  std::string body_;            // a request body a policy read whole (capacity kept)
  // Pipelining: a small answer of ficus's own (a cache hit, a 429) given while the next request
  // is already buffered is appended here instead of written, so that the answers to what the
  // client sent together leave in one writev (fail.cc, Answer). Capacity kept.
  std::string deferred_;
  static constexpr size_t kDeferMaxBody = 4 * 1024;    // larger bodies go out from their storage
  static constexpr size_t kDeferMaxBytes = 16 * 1024;  // flushed at the next write past this
  std::optional<policy::Context> policy_ctx_;  // from admit to end, on a route with policies
  Exchange ex_;  // the current request, reset by value before each head
  Taps taps_;
  // Retries: connection-lifetime scratch, capacity kept. The request stays in the input area;
  // a retry rewinds mem_.in_begin.
  upstream::EndpointSet tried_;        // endpoints this request tried
  std::vector<uint64_t> avail_words_;  // the health mask of the current pick
  // Timeouts and cancellation.
  Wait waiting_ = Wait::kNone;
  Wait timed_out_ = Wait::kNone;
  upstream::Connection* upstream_ = nullptr;  // to cancel on timeout
  bool closing_ = false;                      // drain/abort asked us to stop
  bool aborted_ = false;                      // the drain deadline passed: ficus cuts us off
  const bool* listener_removed_ = nullptr;    // WatchListener
};

}  // namespace ficus::proxy
