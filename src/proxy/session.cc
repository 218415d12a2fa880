// The downstream connection: read head -> route -> [admit] -> upstream -> respond -> record.
#include "proxy/internal/session.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <new>
#include <type_traits>

#include "base/log.h"
#include "proxy/internal/forward.h"
#include "proxy/internal/resilience.h"
#include "proxy/internal/transfer_decoder.h"

namespace ficus::proxy {
namespace {

using http::BodyFraming;

// A block (Worker::kBlockSize) is laid out as: downstream input | request fields | response
// fields | transfer buffer.
constexpr size_t kInCap = 16 * 1024;  // downstream input; larger heads move to big_in_
constexpr size_t kBlockFields = 100;  // header fields per direction stored in the block
constexpr size_t kFieldsBytes = 8 * 1024;
static_assert(2 * kBlockFields * sizeof(http::Header) <= kFieldsBytes);
static_assert(std::is_trivially_destructible_v<http::Header>);
constexpr int64_t kParkAfterMs = 200;  // an idle keep-alive connection gives its memory back
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr int kNotRoutable = -2;  // RouteTable::Match returns -1 for "no route"

// Moves each payload piece to the write position, decoding a chunked body in place.
struct InPlaceDecoder {
  char* out;
  size_t size = 0;
  static void Take(void* self, std::string_view piece) {
    auto* d = static_cast<InPlaceDecoder*>(self);
    std::memmove(d->out + d->size, piece.data(), piece.size());
    d->size += piece.size();
  }
};

Unexpected Downstream(ErrorKind kind, const char* why) {
  return Fail(kind, Side::kDownstream, why);
}
Unexpected Upstream(ErrorKind kind, const char* why, bool retryable = false) {
  return Fail(kind, Side::kUpstream, why, retryable);
}

}  // namespace

Session::Session(Worker& worker, net::Socket socket) : worker_(worker), client_(std::move(socket)) {
  worker_.SessionStarted(this);
}

Session::~Session() {
  CommitRecord();
  ReleaseMemory();
  worker_.SessionEnded(this);
}

void Session::SetDeadline(int64_t after_ms, Wait what) {
  waiting_ = what;
  timed_out_ = Wait::kNone;
  int64_t at = NowMs() + after_ms;
  if (request_deadline_ms_ < at && what != Wait::kIdle && what != Wait::kPark) {
    at = request_deadline_ms_;  // the total request deadline bounds every phase
  }
  if (attempt_deadline_ms_ < at &&
      (what == Wait::kConnect || what == Wait::kUpstreamSend || what == Wait::kUpstreamResponse)) {
    at = attempt_deadline_ms_;  // per_try_timeout bounds one try, up to its response head
  }
  net::TimeoutList::Entry::SetDeadline(at);
}

void Session::OnTimeout() {
  timed_out_ = waiting_;
  client_.Cancel();
  if (upstream_) upstream_->socket.Cancel();
}

void Session::CloseIfIdle() {
  closing_ = true;
  if (waiting_ == Wait::kIdle || waiting_ == Wait::kPark) client_.Cancel();
}

void Session::Abort() {
  closing_ = true;
  client_.Cancel();
  if (upstream_) upstream_->socket.Cancel();
}

Error Session::TimeoutError() const {
  switch (timed_out_) {
    case Wait::kHead:
      return Error{ErrorKind::kHeadTimeout, Side::kDownstream, false,
                   "request head not received within timeouts.request_head"};
    case Wait::kBody:
      return Error{ErrorKind::kHeadTimeout, Side::kDownstream, false,
                   "request body stalled longer than timeouts.request_head"};
    case Wait::kConnect:
      return Error{ErrorKind::kConnectFailed, Side::kUpstream, true,
                   "connect to upstream timed out"};
    default:
      return Error{ErrorKind::kUpstreamTimeout, Side::kUpstream, false,
                   "upstream did not respond in time"};
  }
}

Error Session::ReadError(const net::ErrorCode& ec, Side side) const {
  if (ec == net::Aborted() && timed_out_ != Wait::kNone) return TimeoutError();
  if (side == Side::kDownstream)
    return Error{ErrorKind::kDownstreamClosed, side, false, "client closed the connection"};
  return Error{ErrorKind::kUpstreamReset, side, false, "upstream closed or reset the connection"};
}

void Session::EnsureMemory() {
  if (block_ != nullptr) return;
  block_ = worker_.AcquireBlock();
  in_ = block_;
  in_cap_ = kInCap;
  auto* fields = new (block_ + kInCap) http::Header[2 * kBlockFields];
  resp_fields_ = {fields + kBlockFields, kBlockFields};
  SizeRequestFields(snapshot_->config->limits.max_header_count);
  xfer_ = block_ + kInCap + kFieldsBytes;
  xfer_cap_ = Worker::kBlockSize - kInCap - kFieldsBytes - kRecordBytes;
  if (out_.capacity() < 2048) out_.reserve(2048);
}

void Session::SizeRequestFields(uint32_t max_header_count) {
  if (max_header_count <= kBlockFields) {
    req_fields_ = {reinterpret_cast<http::Header*>(block_ + kInCap), kBlockFields};
  } else {  // a config allowing more fields than the block holds: rare, so the heap
    big_fields_.resize(max_header_count);
    req_fields_ = big_fields_;
  }
}

void Session::ReleaseMemory() {
  if (block_ == nullptr) return;
  worker_.ReleaseBlock(block_);
  block_ = in_ = xfer_ = nullptr;
  in_cap_ = xfer_cap_ = in_begin_ = in_end_ = 0;
  big_in_.reset();
  req_fields_ = resp_fields_ = {};
  std::vector<http::Header>().swap(big_fields_);
}

void Session::CompactInput() {
  if (in_begin_ == 0) return;
  std::memmove(in_, in_ + in_begin_, Pending());
  in_end_ -= in_begin_;
  in_begin_ = 0;
}

net::Task<Status> Session::WriteDownstream(iovec* iov, int count) {
  SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kDownstreamWrite);
  net::ErrorCode ec = co_await client_.WriteAll(iov, count);
  if (ec) co_return Downstream(ErrorKind::kDownstreamClosed, "client stopped reading");
  co_return Status{};
}

// ---- phase: read head ----------------------------------------------------------------------

net::Task<Result<Session::Next>> Session::ReadHead() {
  const config::Config& cfg = *snapshot_->config;
  if (Pending() == 0) {
    in_begin_ = in_end_ = 0;
    if (closing_ || worker_.draining()) co_return Next::kClose;
    // A new connection's first request must start within request_head (as nginx's
    // client_header_timeout); later ones may idle for timeouts.idle.
    const int64_t idle_ms =
        (head_.head_size == 0 ? cfg.timeouts.request_head : cfg.timeouts.idle).count();
    bool parked = block_ == nullptr;
    int64_t idle_left_ms = idle_ms;
    if (!parked) {
      // Back-to-back requests: read straight into the exchange memory we hold.
      SetDeadline(std::min(idle_ms, kParkAfterMs),
                  idle_ms > kParkAfterMs ? Wait::kPark : Wait::kIdle);
      auto r = co_await client_.ReadSome({in_, in_cap_});
      if (!r.ec && r.bytes == 0) co_return Next::kClose;
      if (r.ec) {
        if (timed_out_ != Wait::kPark || closing_) co_return Next::kClose;
        ReleaseMemory();
        parked = true;
        idle_left_ms = idle_ms - kParkAfterMs;
      } else {
        in_end_ = r.bytes;
      }
    }
    if (parked) {
      // Idle for a while: wait for readability holding no buffer, then take one.
      SetDeadline(idle_left_ms, Wait::kIdle);
      net::ErrorCode ec = co_await client_.WaitReadable();
      if (ec || closing_) co_return Next::kClose;
      EnsureMemory();
      auto r = co_await client_.ReadSome({in_, in_cap_});
      if (r.ec || r.bytes == 0) co_return Next::kClose;
      in_end_ = r.bytes;
    }
  }
  EnsureMemory();
  SetDeadline(cfg.timeouts.request_head.count(), Wait::kHead);
  http::Limits limits{cfg.limits.max_head_bytes, cfg.limits.max_header_count};
  if (req_fields_.size() != std::max<size_t>(limits.max_header_count, kBlockFields)) {
    SizeRequestFields(limits.max_header_count);  // a reload changed the limit
  }
  http::RequestHeadParser parser(limits, req_fields_);
  for (;;) {
    auto parsed = parser.Parse({in_ + in_begin_, Pending()}, head_);
    if (!parsed) co_return Unexpected{parsed.error()};
    if (*parsed > 0) co_return Next::kRequest;
    if (in_end_ == in_cap_) {
      if (in_begin_ > 0) {
        CompactInput();
        parser.Reset();
      } else {
        // The head outgrew the block's input area: move to a buffer one byte larger than the
        // limit, so the parser itself reports 431 when it is exceeded.
        size_t cap = size_t{cfg.limits.max_head_bytes} + 1;
        if (cap <= in_cap_)
          co_return Downstream(ErrorKind::kHeadTooLarge, "request head too large");
        auto bigger = std::make_unique<char[]>(cap);
        std::memcpy(bigger.get(), in_, in_end_);
        big_in_ = std::move(bigger);
        in_ = big_in_.get();
        in_cap_ = cap;
      }
    }
    auto r = co_await client_.ReadSome({in_ + in_end_, in_cap_ - in_end_});
    if (r.ec) {
      if (timed_out_ == Wait::kHead) co_return Unexpected{TimeoutError()};
      co_return Next::kClose;
    }
    if (r.bytes == 0) co_return Next::kClose;  // gave up mid-head: nobody to answer
    in_end_ += r.bytes;
  }
}

// ---- the exchange: route -> [admit] -> upstream -> respond -> record -----------------------

// Copies the worker's snapshot only when it changed: the copy is an atomic increment on a
// counter every worker shares, so the steady state does none.
void Session::TakeCurrentSnapshot() {
  if (snapshot_ != worker_.snapshot()) snapshot_ = worker_.snapshot();
}

net::Task<bool> Session::Exchange() {
  // The config may have been reloaded while the head was read (or the connection idled): the
  // exchange runs on the current one. It must, as the worker's cluster states are the current
  // snapshot's (indexed by its clusters), and routing with an older snapshot's indices reached
  // past them or into another cluster once a reload removed or reordered clusters.
  TakeCurrentSnapshot();
  const Snapshot& snap = *snapshot_;
  const config::Config& cfg = *snap.config;
  worker_.server_stats().requests.Add();
  start_ns_ = MonotonicNanos();
  status_ = 0;
  route_ = nullptr;
  route_cell_ = nullptr;
  cluster_cell_ = nullptr;
  cluster_.reset();
  request_body_bytes_ = response_body_bytes_ = 0;
  response_started_ = false;
  out_is_request_ = false;
  keep_alive_ = head_.keep_alive && !head_.upgrade;
  request_body_done_ = head_.framing == BodyFraming::kNone;
  request_deadline_ms_ = INT64_MAX;
  if (cfg.timeouts.request.count() > 0)
    request_deadline_ms_ = NowMs() + cfg.timeouts.request.count();

  if (!head_.request_id.empty() && head_.request_id.size() <= sizeof request_id_) {
    std::memcpy(request_id_, head_.request_id.data(), head_.request_id.size());
    request_id_len_ = head_.request_id.size();
  } else {
    worker_.NewRequestId(request_id_);
    request_id_len_ = 36;
  }
  BeginObserve(/*parsed=*/true);

  // Field names with '_': dropped (the default) or refused before anything reads the fields.
  const config::UnderscoreAction underscores = cfg.limits.headers_with_underscores;
  if (head_.underscore_names && underscores == config::UnderscoreAction::kDrop)
    http::DropUnderscoreFields(head_);
  const bool refuse_underscores =
      head_.underscore_names && underscores == config::UnderscoreAction::kReject;

  // phase: route (CONNECT is a tunnel request, never routed to an origin server)
  const int r = head_.method == http::Method::kConnect ? kNotRoutable : snap.routes.Match(head_);
  if (refuse_underscores) {
    worker_.server_stats().parse_errors.Add();
    in_begin_ += head_.head_size;
    co_await Fail(Error{ErrorKind::kBadRequest, Side::kDownstream, false,
                        "header field name with an underscore"});
  } else if (r == kNotRoutable) {
    in_begin_ += head_.head_size;
    co_await Fail(Error{ErrorKind::kNotImplemented, Side::kDownstream, false,
                        "CONNECT tunnels are not supported"});
  } else if (r < 0) {
    worker_.server_stats().no_route.Add();
    in_begin_ += head_.head_size;
    co_await Fail(
        Error{ErrorKind::kNoRoute, Side::kDownstream, false, "no route matches this request"});
  } else {
    route_ = &cfg.routes[r];
    EnterRoute(snap.route_stats[r]);
    if (const auto& rec = snap.route_records[r]; rec.recorder && record::Sample(rec.sample)) {
      recorder_ = rec.recorder;  // a copy of the head now, body bytes as they pass (SendRequest)
      record_slot_ = recorder_->Begin(worker_.id(), rec.policy, {in_ + in_begin_, head_.head_size},
                                      head_.framing == BodyFraming::kChunked, rec.max_body_bytes);
    }
    if (route_->timeout) {  // the route's own deadline replaces the global one; 0 = none
      request_deadline_ms_ =
          route_->timeout->count() > 0 ? NowMs() + route_->timeout->count() : INT64_MAX;
    }
    // phase: admit — rate limits, concurrency limits and load shedding go here (later issues).
    // phase: upstream (+ respond: the response streams back as it arrives)
    Status s = co_await Forward(*route_);
    if (!s) {
      if (!response_started_)
        co_await Fail(s.error());
      else
        keep_alive_ = false;  // mid-response failure: closing is the only honest signal
    }
  }
  Record(status_);
  CommitRecord();
  ClearDeadline();
  request_deadline_ms_ = INT64_MAX;
  cluster_.reset();
  co_return keep_alive_&& request_body_done_ && !closing_ && !worker_.draining() &&
      !ListenerRemoved();
}

// ---- phase: upstream ------------------------------------------------------------------------

net::Task<Status> Session::Forward(const config::Route& route) {
  const config::Config& cfg = *snapshot_->config;
  // Nothing since Exchange took the snapshot waited: the worker's clusters are still its own.
  FICUS_DCHECK(worker_.snapshot() == snapshot_);
  cluster_ = worker_.cluster(route.cluster_index);
  cluster_cell_ = &cluster_->stats()->Cell(worker_.id());
  EnterCluster();
  if (head_.framing == BodyFraming::kContentLength && cfg.limits.max_body_bytes != 0 &&
      head_.content_length > cfg.limits.max_body_bytes) {
    in_begin_ += head_.head_size;
    co_return Downstream(ErrorKind::kBodyTooLarge, "request body exceeds limits.max_body_bytes");
  }
  in_begin_ += head_.head_size;
  const size_t body_start = in_begin_;
  // A request is safe to send again when all of it is still in our buffer.
  const bool replayable =
      head_.framing == BodyFraming::kNone ||
      (head_.framing == BodyFraming::kContentLength && head_.content_length <= Pending());

  upstream::ClusterShared& shared = cluster_->shared();
  if (!shared.TryAcquire(upstream::ClusterCounters::kMaxRequests)) {
    co_return Upstream(ErrorKind::kOverloaded, "circuit breaker max_requests is open");
  }
  cluster_->RequestStarted();
  retrying_ = false;
  struct RequestGuard {  // every way out gives back what the request holds
    Session& s;
    ~RequestGuard() {
      upstream::ClusterState& c = *s.cluster_;
      c.shared().Release(upstream::ClusterCounters::kMaxRequests);
      if (s.retrying_) {
        c.shared().Release(upstream::ClusterCounters::kMaxRetries);
        s.retrying_ = false;
      }
      s.attempt_deadline_ms_ = INT64_MAX;
    }
  } request_guard{*this};

  const config::RetryPolicy& policy = shared.config().retry;
  const uint32_t max_tries =
      policy.enabled() && replayable && !head_.upgrade && MayRetry(head_) ? policy.max_tries : 1;
  if (max_tries > 1) tried_.Clear();
  size_t endpoint = PickEndpoint(1);  // a retry's endpoint is chosen when it is reserved
  for (uint32_t try_number = 1;; ++try_number) {
    if (endpoint == upstream::kNoEndpoint) {
      co_return Upstream(ErrorKind::kConnectFailed, "no upstream endpoint available", true);
    }
    if (max_tries > 1) tried_.Insert(endpoint);
    try_number_ = try_number;
    may_retry_status_ = try_number < max_tries && !policy.on_status.empty();
    retry_requested_ = false;
    attempt_deadline_ms_ =
        policy.per_try_timeout.count() > 0 ? NowMs() + policy.per_try_timeout.count() : INT64_MAX;
    Status done = co_await Attempt(endpoint, body_start, replayable);
    attempt_deadline_ms_ = INT64_MAX;
    bool again = retry_requested_;  // a retryable 5xx, already reserved by RelayResponse
    if (!done && !response_started_ && done.error().side == Side::kUpstream &&
        done.error().kind != ErrorKind::kOverloaded) {
      shared.Report(endpoint, upstream::Outcome::kGatewayFailure, NowMs());
      const ErrorKind k = done.error().kind;
      const bool wanted = (k == ErrorKind::kConnectFailed && policy.on_connect_failure) ||
                          ((k == ErrorKind::kUpstreamReset || k == ErrorKind::kUpstreamProtocol) &&
                           policy.on_reset) ||
                          (k == ErrorKind::kUpstreamTimeout && policy.on_timeout);
      again = wanted && try_number < max_tries &&
              ReserveRetry(try_number + 1, k == ErrorKind::kConnectFailed);
    }
    if (!again) co_return done;
    endpoint = next_endpoint_;
    // Try again: the whole request is still in the input area.
    if (retries_ < UINT8_MAX) ++retries_;
    in_begin_ = body_start;
    request_body_bytes_ = 0;
    status_ = 0;
    if (backoff_ms_ > 0) {
      co_await worker_.loop().Sleep(std::chrono::milliseconds(backoff_ms_));
      if (closing_) co_return Upstream(ErrorKind::kOverloaded, "ficus is shutting down");
    }
  }
}

size_t Session::PickEndpoint(uint32_t try_number) {
  upstream::ClusterState& c = *cluster_;
  upstream::ClusterShared& shared = c.shared();
  const config::Cluster& cc = shared.config();
  upstream::PickContext ctx;
  auto mask_words = [&] {  // room for one bitmap of this cluster's endpoints
    if (avail_words_.size() < shared.mask_words()) avail_words_.resize(shared.mask_words());
    return std::span<uint64_t>(avail_words_.data(), shared.mask_words());
  };
  // Every cluster is filtered: besides health and ejection, an endpoint whose last connect
  // failed is down for picks. Nothing down (the common case) costs three relaxed loads.
  if (shared.AnyDown()) {
    const std::span<uint64_t> words = mask_words();
    if (shared.AvailableMask(words)) ctx.available = upstream::EndpointMask{words};
  }
  if (try_number > 1) ctx.excluded = tried_.mask();
  affinity_hit_ = false;
  if (const upstream::AffinityIndex* index = c.affinity()) {
    std::string_view cookie = CookieValue(head_, cc.affinity.cookie);
    if (!cookie.empty()) {
      size_t e = index->Find(cookie);
      if (e != upstream::kNoEndpoint && !ctx.excluded.Contains(e) &&
          (ctx.available.empty() || ctx.available.Contains(e))) {
        affinity_hit_ = true;
        return e;
      }
    }
  }
  if (cc.hash_key.kind != config::HashKey::Kind::kNone) {
    ctx.hash = RequestHash(head_, cc.hash_key, {client_ip_, client_ip_len_});
  }
  size_t e = c.Pick(ctx);
  if (e == upstream::kNoEndpoint && try_number > 1) {
    // Every available endpoint was tried. A retry never goes back to an endpoint that failed
    // this request; one that is unhealthy or ejected but accepts connections is worth a try
    // (as in panic mode). A cluster of one endpoint has nothing else: it retries that one.
    const std::span<uint64_t> words = mask_words();
    ctx.available =
        shared.ConnectableMask(words) ? upstream::EndpointMask{words} : upstream::EndpointMask{};
    e = c.Pick(ctx);
    if (e == upstream::kNoEndpoint && c.endpoint_count() == 1) {
      ctx.excluded = {};
      ctx.available = {};
      e = c.Pick(ctx);
    }
  }
  return e;
}

bool Session::ReserveRetry(uint32_t next_try, bool connect_failure) {
  if (closing_ || worker_.draining()) return false;
  upstream::ClusterState& c = *cluster_;
  upstream::ClusterShared& shared = c.shared();
  backoff_ms_ = BackoffMs(shared.config().retry, next_try - 1, worker_.Random());
  if (request_deadline_ms_ != INT64_MAX && NowMs() + backoff_ms_ >= request_deadline_ms_) {
    return false;  // no time left for another try
  }
  // The next try's endpoint is chosen now: when no endpoint is left that this request has not
  // tried, the failure in hand is the answer (a retryable 5xx is relayed, not dropped for a
  // retry with nowhere to go), and no budget is spent.
  next_endpoint_ = PickEndpoint(next_try);
  if (next_endpoint_ == upstream::kNoEndpoint) return false;
  const bool acquired = !retrying_;  // the max_retries breaker counts requests that retry
  if (acquired && !shared.TryAcquire(upstream::ClusterCounters::kMaxRetries)) return false;
  // Every retry is paid for: the budget is a rate of retries, not of retrying requests.
  if (!c.TryStartRetry(NowMs(), connect_failure)) {
    if (acquired) shared.Release(upstream::ClusterCounters::kMaxRetries);
    return false;
  }
  retrying_ = true;
  shared.counters().retries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

net::Task<Status> Session::Attempt(size_t endpoint, size_t body_start, bool replayable) {
  // The keep-alive-race resend below is the same attempt on the same endpoint (it says nothing
  // about the endpoint's health), so one OnStart and one OnEnd.
  EnterEndpoint(endpoint);
  StartAttempt(endpoint);
  struct AttemptGuard {  // a failed or abandoned attempt still owes the balancer its OnEnd
    Session& session;
    ~AttemptGuard() { session.EndAttempt(false); }
  } guard{*this};
  upstream::ClusterShared& shared = cluster_->shared();
  upstream::EndpointPool& pool = cluster_->pool(endpoint);

  for (int attempt = 0;; ++attempt) {
    out_.clear();
    ForwardContext ctx{
        {client_ip_, client_ip_len_},
        {request_id_, request_id_len_},
        head_.version_minor == 0,
        tracing_ ? std::string_view(traceparent_, sizeof traceparent_) : std::string_view(),
        drop_tracestate_};
    AppendUpstreamRequestHead(head_, ctx, out_);
    out_is_request_ = true;

    // The resend skips the pool: its connections are as old as the one that just failed.
    std::unique_ptr<upstream::Connection> conn =
        attempt == 0 ? pool.Take(NowMs(), cluster_->pool_config().idle_timeout.count()) : nullptr;
    const bool reused = conn != nullptr;
    if (reused) {
      cluster_cell_->connections_reused.Add();
      upstream_ = conn.get();
    } else {
      if (!shared.TryAcquire(upstream::ClusterCounters::kMaxConnections)) {
        co_return Upstream(ErrorKind::kOverloaded, "circuit breaker max_connections is open");
      }
      conn = std::make_unique<upstream::Connection>(endpoint);
      if (shared.limit(upstream::ClusterCounters::kMaxConnections) != 0) {
        conn->open_connections =
            &shared.counters().open[upstream::ClusterCounters::kMaxConnections];
      }
      if (!shared.TryAcquire(upstream::ClusterCounters::kMaxPending)) {
        co_return Upstream(ErrorKind::kOverloaded, "circuit breaker max_pending is open");
      }
      upstream_ = conn.get();
      SetDeadline(cluster_->connect_timeout_ms(), Wait::kConnect);
      connect_start_ns_ = MonotonicNanos();
      connected_ns_ = 0;
      net::ErrorCode ec =
          co_await conn->socket.Connect(worker_.loop(), cluster_->address(endpoint));
      shared.Release(upstream::ClusterCounters::kMaxPending);
      if (ec || closing_) {
        upstream_ = nullptr;
        cluster_cell_->connect_failures.Add();
        // Down for every worker's picks at once, not after outlier detection's count or the
        // next health check: the requests already on their way there would fail the same way.
        if (!closing_ && ConnectErrorMarksEndpoint(ec)) shared.ConnectFailed(endpoint, NowMs());
        co_return Upstream(ErrorKind::kConnectFailed,
                           timed_out_ == Wait::kConnect ? "connect to upstream timed out"
                                                        : "could not connect to upstream",
                           true);
      }
      cluster_cell_->connections_opened.Add();
      shared.ConnectSucceeded(endpoint);
      connected_ns_ = MonotonicNanos();
    }
    cluster_cell_->requests.Add();
    ++conn->requests;

    bool retryable = false;
    pool_ok_ = false;
    Status done = co_await SendRequest(*conn, &retryable);
    if (done) done = co_await RelayResponse(*conn, &retryable);
    upstream_ = nullptr;
    if (!done && retryable && reused && replayable && attempt == 0 && !closing_ &&
        MayRetry(head_)) {
      // The upstream closed a pooled connection just as we reused it (the keep-alive race):
      // nothing of a response came back, and we still hold the whole request. Send it again
      // on a fresh connection -- unless the method is not idempotent (and no Idempotency-Key
      // says otherwise): the upstream may have acted on it before closing, and a POST must
      // not reach the application twice. That request gets a 502.
      in_begin_ = body_start;
      if (retries_ < UINT8_MAX) ++retries_;
      continue;
    }
    if (done && pool_ok_) {
      pool.Put(std::move(conn), NowMs(), cluster_->pool_config().max_idle);
    }
    co_return done;
  }
}

void Session::StartAttempt(size_t endpoint) {
  cluster_->OnStart(endpoint);
  attempt_endpoint_ = endpoint;
  attempt_start_ns_ = cluster_->wants_latency() ? MonotonicNanos() : 0;
  attempt_open_ = true;
}

void Session::EndAttempt(bool ok) {
  if (!attempt_open_) return;
  attempt_open_ = false;
  const uint64_t latency_us =
      attempt_start_ns_ != 0 ? static_cast<uint64_t>(MonotonicNanos() - attempt_start_ns_) / 1000
                             : 0;
  cluster_->OnEnd(attempt_endpoint_, latency_us, ok);
}

net::Task<Status> Session::SendRequest(upstream::Connection& conn, bool* retryable) {
  const config::Config& cfg = *snapshot_->config;
  http::ChunkedScanner scanner(http::ChunkedScanner::Limits{
      cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : UINT64_MAX});
  uint64_t remaining = 0;
  size_t first = 0;
  bool body_done = true;
  switch (head_.framing) {
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:
      break;
    case BodyFraming::kContentLength:
      first = static_cast<size_t>(std::min<uint64_t>(Pending(), head_.content_length));
      remaining = head_.content_length - first;
      body_done = remaining == 0;
      break;
    case BodyFraming::kChunked: {
      auto scanned = scanner.Scan({in_ + in_begin_, Pending()});
      if (!scanned) co_return Unexpected{scanned.error()};
      first = *scanned;
      body_done = scanner.done();
      break;
    }
  }
  // Head and every body byte already buffered, in one writev (a chunked body's trailer section
  // is held back by the gate until it is whole).
  TrailerGate trailers;
  const size_t sent = head_.framing == BodyFraming::kChunked
                          ? trailers.Pass(scanner, {in_ + in_begin_, first})
                          : first;
  iovec iov[3] = {{out_.data(), out_.size()},
                  {in_ + in_begin_, sent},
                  {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
  if (record_slot_ && record_slot_->body_seen == 0)
    record_slot_->AppendBody({in_ + in_begin_, first});
  in_begin_ += first;
  request_body_bytes_ += first;
  SetDeadline(upstream_timeout_ms(), Wait::kUpstreamSend);
  net::ErrorCode ec = co_await conn.socket.WriteAll(iov, trailers.release().empty() ? 2 : 3);
  sent_ns_ = MonotonicNanos();
  first_byte_ns_ = 0;
  if (ec) {
    *retryable = true;
    co_return Upstream(ErrorKind::kUpstreamReset,
                       "upstream closed the connection while the "
                       "request was being sent");
  }
  if (!body_done && head_.expect_continue && first == 0) {
    iovec cont{const_cast<char*>(kContinue.data()), kContinue.size()};
    Status s = co_await WriteDownstream(&cont, 1);
    if (!s) co_return s;
  }
  // Stream the rest: read a piece, write it, and only then read the next (backpressure both
  // ways). Chunked reads are capped at the input area's size so that bytes of a pipelined next
  // request read past the body's end fit back into it.
  while (!body_done) {
    SetDeadline(cfg.timeouts.request_head.count(), Wait::kBody);
    size_t want = head_.framing == BodyFraming::kContentLength
                      ? static_cast<size_t>(std::min<uint64_t>(xfer_cap_, remaining))
                      : std::min(xfer_cap_, kInCap);
    auto r = co_await client_.ReadSome({xfer_, want});
    if (r.ec || r.bytes == 0) {
      keep_alive_ = false;
      co_return Unexpected{ReadError(r.ec, Side::kDownstream)};
    }
    size_t take = r.bytes;
    if (head_.framing == BodyFraming::kContentLength) {
      remaining -= take;
      body_done = remaining == 0;
    } else {
      auto scanned = scanner.Scan({xfer_, r.bytes});
      if (!scanned) {
        keep_alive_ = false;
        co_return Unexpected{scanned.error()};
      }
      take = *scanned;
      body_done = scanner.done();
      if (take < r.bytes) {  // the start of the next request: back into the input area
        CompactInput();
        std::memcpy(in_ + in_end_, xfer_ + take, r.bytes - take);
        in_end_ += r.bytes - take;
      }
    }
    request_body_bytes_ += take;
    if (record_slot_) record_slot_->AppendBody({xfer_, take});
    const size_t pass =
        head_.framing == BodyFraming::kChunked ? trailers.Pass(scanner, {xfer_, take}) : take;
    iovec pieces[2] = {{xfer_, pass},
                       {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamSend);
    ec = co_await conn.socket.WriteAll(pieces, trailers.release().empty() ? 1 : 2);
    if (ec) {
      keep_alive_ = false;
      co_return Upstream(ErrorKind::kUpstreamReset,
                         "upstream closed the connection while the "
                         "request body was being sent");
    }
  }
  request_body_done_ = true;
  // Input before the last body byte went out: the upstream answered without reading the whole
  // body (an early error). What it makes of the rest -- possibly a request the client wrote --
  // is unknowable, so this connection serves no one else.
  pool_ok_ = head_.framing == BodyFraming::kNone || !conn.socket.InputPending();
  co_return Status{};
}

int64_t Session::upstream_timeout_ms() const {
  if (route_ && route_->upstream_timeout) return route_->upstream_timeout->count();
  return snapshot_->config->timeouts.upstream_response.count();
}

// ---- phase: respond -------------------------------------------------------------------------

net::Task<Status> Session::RelayResponse(upstream::Connection& conn, bool* retryable) {
  // SendRequest said whether the request side ended cleanly; only a relayed body's clean end
  // may make the connection reusable (not a retried 5xx, not a tunnel).
  const bool sent_clean = std::exchange(pool_ok_, false);
  http::ResponseHead resp;
  http::ResponseHeadParser parser(http::Limits{static_cast<uint32_t>(xfer_cap_), 100},
                                  resp_fields_);
  size_t got = 0;
  size_t head_size = 0;
  bool interim_seen = false;  // the upstream answered something: not the keep-alive race
  SetDeadline(upstream_timeout_ms(), Wait::kUpstreamResponse);
  for (;;) {
    auto r = co_await conn.socket.ReadSome({xfer_ + got, xfer_cap_ - got});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamResponse) {
        cluster_cell_->timeouts.Add();
        co_return Unexpected{TimeoutError()};
      }
      *retryable = got == 0 && !interim_seen;
      co_return Upstream(ErrorKind::kUpstreamReset,
                         got == 0 ? "upstream closed the connection without responding"
                                  : "upstream closed the connection in the response head");
    }
    if (got == 0) first_byte_ns_ = MonotonicNanos();
    got += r.bytes;
    bool have_head = false;
    while (got > 0) {
      auto parsed = parser.Parse({xfer_, got}, head_.method, resp);
      if (!parsed) co_return Unexpected{parsed.error()};
      if (*parsed == 0) break;
      if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
        interim_seen = true;
        if (resp.status != 100 && head_.version_minor == 1) {
          // 102 Processing, 103 Early Hints, ...: forwarded as they come (RFC 9110 §15.2).
          // Not 100 Continue: ficus answered that itself. Not to HTTP/1.0 clients, which cannot
          // take interim responses. Rare, so a string of its own rather than the exchange's.
          std::string interim;
          AppendInterimResponseHead(resp, interim);
          iovec iov{interim.data(), interim.size()};
          Status s = co_await WriteDownstream(&iov, 1);
          if (!s) co_return s;
          SetDeadline(upstream_timeout_ms(), Wait::kUpstreamResponse);
        }
        std::memmove(xfer_, xfer_ + *parsed, got - *parsed);
        got -= *parsed;
        parser.Reset();
        continue;
      }
      head_size = *parsed;
      have_head = true;
      break;
    }
    if (have_head) break;
    if (got == xfer_cap_) {
      co_return Upstream(ErrorKind::kUpstreamProtocol, "upstream response head too large");
    }
  }
  EndAttempt(true);                  // the response head is the balancer's latency sample
  attempt_deadline_ms_ = INT64_MAX;  // per_try_timeout ends with the head
  cluster_cell_->responses[observe::StatusClassIndex(resp.status)].Add();
  upstream::ClusterShared& shared = cluster_->shared();
  shared.Report(attempt_endpoint_,
                resp.status >= 500 ? upstream::Outcome::k5xx : upstream::Outcome::kSuccess,
                NowMs());
  if (may_retry_status_ && resp.status >= 500) {
    const auto& retry_on = shared.config().retry.on_status;
    if (std::find(retry_on.begin(), retry_on.end(), resp.status) != retry_on.end() &&
        ReserveRetry(try_number_ + 1)) {
      // Not relayed: the next try answers. The connection is not reused (its body is unread).
      retry_requested_ = true;
      co_return Status{};
    }
  }
  status_ = resp.status;
  upstream_status_ = resp.status;
  const bool upgrade = resp.status == 101;
  if (upgrade && !head_.upgrade) {
    co_return Upstream(ErrorKind::kUpstreamProtocol,
                       "upstream switched protocols without an upgrade request");
  }
  if (resp.status >= 500 && out_is_request_) SampleError(out_, {xfer_, head_size});
  out_is_request_ = false;  // out_ becomes the downstream response head
  // An HTTP/1.0 client cannot take chunked framing (an upstream may send it anyway): decode
  // the body and delimit it by closing the connection.
  const bool dechunk = head_.version_minor == 0 && resp.framing == BodyFraming::kChunked &&
                       head_.method != http::Method::kHead;
  const bool decode =
      resp.framing == BodyFraming::kChunked && resp.transfer_coding != http::TransferCoding::kNone;
  if (resp.framing == BodyFraming::kUntilClose || dechunk || worker_.draining() || closing_ ||
      ListenerRemoved())
    keep_alive_ = false;
  out_.clear();
  AppendDownstreamResponseHead(resp,
                               ResponseContext{{request_id_, request_id_len_},
                                               keep_alive_,
                                               head_.version_minor == 0,
                                               upgrade,
                                               dechunk,
                                               decode && !dechunk},
                               out_);
  if (cluster_->affinity() && !affinity_hit_) {
    AddAffinityCookie(shared.config().affinity, cluster_->affinity_cookie_value(attempt_endpoint_),
                      out_);
  }
  if (upgrade) {
    response_started_ = true;
    iovec iov[2] = {{out_.data(), out_.size()}, {xfer_ + head_size, got - head_size}};
    Status s = co_await WriteDownstream(iov, got > head_size ? 2 : 1);
    if (!s) co_return s;
    co_await Tunnel(conn);
    keep_alive_ = false;
    co_return Status{};
  }
  pool_ok_ = sent_clean;
  if (decode) co_return co_await RelayDecodedBody(conn, resp, head_size, got);
  co_return co_await RelayBody(conn, resp, head_size, got);
}

net::Task<Status> Session::RelayDecodedBody(upstream::Connection& conn,
                                            const http::ResponseHead& resp, size_t head_size,
                                            size_t got) {
  TransferDecoder decoder(resp.transfer_coding);
  const bool chunk_out = head_.version_minor == 1;  // else close-delimited (keep_alive_ is off)
  // Decoded pieces go out as chunks: room for the size line before and the CRLF after.
  constexpr size_t kPiece = 16 * 1024;
  constexpr size_t kSizeLine = 18;  // up to 16 hex digits and CRLF
  auto piece = std::make_unique<char[]>(kSizeLine + kPiece + 2);
  http::ChunkedScanner scanner;
  scanner.set_upstream(true);
  response_started_ = true;
  iovec head{out_.data(), out_.size()};
  Status s = co_await WriteDownstream(&head, 1);
  if (!s) co_return s;
  char* data = xfer_ + head_size;
  size_t available = got - head_size;
  bool clean = true;
  for (;;) {
    InPlaceDecoder coded{data};  // the chunks' payload, still compressed, moved to the front
    auto scanned = scanner.Scan({data, available}, &InPlaceDecoder::Take, &coded);
    if (!scanned) co_return Unexpected{scanned.error()};
    clean = *scanned == available;
    decoder.Input(data, coded.size);
    for (;;) {
      auto n = decoder.Output(piece.get() + kSizeLine, kPiece);
      if (!n) co_return Unexpected{n.error()};
      if (*n == 0) break;
      if (repeat_sample_) [[unlikely]]
        HashSent(resp, /*dechunk=*/true, piece.get() + kSizeLine, *n);
      response_body_bytes_ += *n;
      char* start = piece.get() + kSizeLine;
      size_t size = *n;
      if (chunk_out) {
        char line[kSizeLine];
        const int len = std::snprintf(line, sizeof line, "%zx\r\n", *n);
        start -= len;
        std::memcpy(start, line, static_cast<size_t>(len));
        std::memcpy(piece.get() + kSizeLine + *n, "\r\n", 2);
        size += static_cast<size_t>(len) + 2;
      }
      iovec out{start, size};
      s = co_await WriteDownstream(&out, 1);
      if (!s) co_return s;
    }
    if (scanner.done()) break;
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    auto r = co_await conn.socket.ReadSome({xfer_, xfer_cap_});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) cluster_cell_->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    data = xfer_;
    available = r.bytes;
  }
  if (!decoder.finished()) {
    co_return Upstream(ErrorKind::kUpstreamProtocol, "transfer-coded body ends mid-stream");
  }
  if (chunk_out) {  // trailers are dropped: a recipient removing the coding may (RFC 9112 §7.1.2)
    iovec last{const_cast<char*>("0\r\n\r\n"), 5};
    s = co_await WriteDownstream(&last, 1);
    if (!s) co_return s;
  }
  pool_ok_ = pool_ok_ && resp.keep_alive && clean && request_body_done_ && !closing_;
  if (repeat_sample_) [[unlikely]]
    FinishRepeatSample(resp);
  co_return Status{};
}

net::Task<Status> Session::RelayBody(upstream::Connection& conn, const http::ResponseHead& resp,
                                     size_t head_size, size_t got) {
  http::ChunkedScanner scanner;
  scanner.set_upstream(true);
  const bool dechunk = head_.version_minor == 0 && resp.framing == BodyFraming::kChunked &&
                       head_.method != http::Method::kHead;
  InPlaceDecoder decoded{xfer_ + head_size};
  TrailerGate trailers;  // a chunked body relayed with its framing: no forbidden trailers
  uint64_t remaining = 0;
  size_t available = got - head_size;
  size_t first = 0;
  bool done = true;
  bool clean = true;  // the upstream sent nothing beyond the message: its connection is reusable
  switch (resp.framing) {
    case BodyFraming::kNone:
      clean = available == 0;
      break;
    case BodyFraming::kContentLength:
      first = static_cast<size_t>(std::min<uint64_t>(available, resp.content_length));
      remaining = resp.content_length - first;
      done = remaining == 0;
      clean = first == available;
      break;
    case BodyFraming::kChunked: {
      // A cacheability sample of a chunked body relayed as it came hashes the payload pieces
      // the scanner hands over (never the framing); other bodies are hashed as they are sent.
      auto scanned =
          dechunk ? scanner.Scan({xfer_ + head_size, available}, &InPlaceDecoder::Take, &decoded)
          : repeat_sample_ ? scanner.Scan({xfer_ + head_size, available},
                                          &observe::BodyHasher::TakePiece, &repeat_hasher_)
                           : scanner.Scan({xfer_ + head_size, available});
      if (!scanned) co_return Unexpected{scanned.error()};
      first = dechunk ? decoded.size : trailers.Pass(scanner, {xfer_ + head_size, *scanned});
      done = scanner.done();
      clean = *scanned == available;
      break;
    }
    case BodyFraming::kUntilClose:
      first = available;
      done = false;
      break;
  }
  if (head_.method == http::Method::kHead) {  // never a body, whatever the framing says
    first = 0;
    done = true;
    // A body written after a HEAD response would be read as the next request's answer.
    clean = available == 0 && resp.framing != BodyFraming::kUntilClose;
  }
  if (resp.framing == BodyFraming::kContentLength && first == 0 && !done &&
      remaining <= xfer_cap_ - got) {
    // The head came alone and a small body is on its way (upstreams that write head and body
    // separately, e.g. nginx with sendfile): wait for the body so that both leave in one write,
    // one segment instead of two. Streamed bodies (chunked, close-delimited, larger than the
    // buffer) never wait here, so their head is never held back.
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    // Read with room to spare: a short read tells the event loop the socket is drained (the
    // pool then reuses it without a check), and bytes past the body show up as not clean.
    auto r = co_await conn.socket.ReadSome({xfer_ + got, xfer_cap_ - got});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) cluster_cell_->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    first = static_cast<size_t>(std::min<uint64_t>(r.bytes, remaining));
    clean = first == r.bytes;
    remaining -= first;
    done = remaining == 0;
  }
  // Only now does the client see anything: a failure before this line (the upstream closing
  // while we waited for its small body) can still be answered, or retried, as a whole.
  response_started_ = true;
  iovec iov[3] = {{out_.data(), out_.size()},
                  {xfer_ + head_size, first},
                  {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
  response_body_bytes_ += first;
  if (repeat_sample_) [[unlikely]]
    HashSent(resp, dechunk, xfer_ + head_size, first);
  Status s = co_await WriteDownstream(iov, !trailers.release().empty() ? 3 : first ? 2 : 1);
  if (!s) co_return s;
  while (!done) {
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    // The whole buffer even for a known length: see the small-body wait above.
    auto r = co_await conn.socket.ReadSome({xfer_, xfer_cap_});
    if (!r.ec && r.bytes == 0 && resp.framing == BodyFraming::kUntilClose) break;
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) cluster_cell_->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    size_t take = r.bytes;
    if (resp.framing == BodyFraming::kContentLength) {
      take = static_cast<size_t>(std::min<uint64_t>(r.bytes, remaining));
      clean = take == r.bytes;
      remaining -= take;
      done = remaining == 0;
    } else if (resp.framing == BodyFraming::kChunked) {
      decoded = InPlaceDecoder{xfer_};
      auto scanned =
          dechunk ? scanner.Scan({xfer_, r.bytes}, &InPlaceDecoder::Take, &decoded)
          : repeat_sample_
              ? scanner.Scan({xfer_, r.bytes}, &observe::BodyHasher::TakePiece, &repeat_hasher_)
              : scanner.Scan({xfer_, r.bytes});
      if (!scanned) co_return Unexpected{scanned.error()};
      take = dechunk ? decoded.size : trailers.Pass(scanner, {xfer_, *scanned});
      done = scanner.done();
      clean = *scanned == r.bytes;
    }
    response_body_bytes_ += take;
    if (repeat_sample_) [[unlikely]]
      HashSent(resp, dechunk, xfer_, take);
    iovec pieces[2] = {{xfer_, take},
                       {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
    s = co_await WriteDownstream(pieces, trailers.release().empty() ? 1 : 2);
    if (!s) co_return s;
  }
  // Reused only when the exchange ended exactly at the message boundary on both sides: the
  // whole request body went up before the upstream said anything, and nothing beyond the
  // response came back.
  pool_ok_ = pool_ok_ && resp.keep_alive && resp.framing != BodyFraming::kUntilClose && clean &&
             request_body_done_ && !closing_;
  if (repeat_sample_) [[unlikely]]
    FinishRepeatSample(resp);
  co_return Status{};
}

// ---- upgrades: after a 101, bytes flow both ways until either side closes ------------------

namespace {
// The tunnel's two directions run as two tasks; the session waits for the spawned one.
struct TunnelJoin {
  net::Loop* loop;
  bool spawned_done = false;
  std::coroutine_handle<> waiter;
  bool await_ready() const noexcept { return spawned_done; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  void await_resume() noexcept {}
};

net::Task<void> SignalWhenDone(net::Task<void> pump, TunnelJoin* join) {
  co_await pump;
  join->spawned_done = true;
  if (join->waiter) join->loop->Ready(std::exchange(join->waiter, nullptr));
}
}  // namespace

net::Task<void> Session::Tunnel(upstream::Connection& conn) {
  const size_t half = xfer_cap_ / 2;
  SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kTunnel);
  if (Pending() > 0) {
    // The client did not wait for the 101: what it sent after the upgrade request is the new
    // protocol's first bytes. Held until the upstream agreed to switch (had it refused, they
    // would have reached it as HTTP), now they go first.
    net::ErrorCode ec = co_await conn.socket.WriteAll(std::string_view(in_ + in_begin_, Pending()));
    in_begin_ = in_end_;
    if (ec) co_return;
  }
  TunnelJoin join{&worker_.loop(), false, nullptr};
  net::Spawn(SignalWhenDone(Pump(client_, conn.socket, {xfer_, half}), &join));
  co_await Pump(conn.socket, client_, {xfer_ + half, half});
  co_await join;
}

net::Task<void> Session::Pump(net::Socket& from, net::Socket& to, std::span<char> buf) {
  for (;;) {
    auto r = co_await from.ReadSome(buf);
    if (r.ec || r.bytes == 0) {
      if (r.ec) {  // reset or idle timeout: tear down both directions
        from.Cancel();
        to.Cancel();
      }
      to.ShutdownWrite();
      co_return;
    }
    SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kTunnel);
    net::ErrorCode ec = co_await to.WriteAll(std::string_view(buf.data(), r.bytes));
    if (ec) {
      from.Cancel();
      to.Cancel();
      co_return;
    }
  }
}

// ---- Fail: the one place an Error becomes an HTTP answer -----------------------------------

net::Task<void> Session::Fail(const Error& error) {
  status_ = StatusFor(error.kind);
  last_error_ = error.context;
  if (error.kind == ErrorKind::kDownstreamClosed) {
    keep_alive_ = false;
    co_return;
  }
  // After a malformed request, or one whose body we did not read, the byte stream cannot be
  // trusted to be in sync: answer and close.
  if (!request_body_done_ || (error.side == Side::kDownstream && error.kind != ErrorKind::kNoRoute))
    keep_alive_ = false;
  if (!keep_alive_ && head_.framing == BodyFraming::kContentLength && !request_body_done_ &&
      head_.content_length <= Pending()) {
    // The whole body is already here: skip it and keep the connection after all.
    in_begin_ += head_.content_length;
    request_body_done_ = true;
    keep_alive_ = head_.keep_alive && error.side != Side::kDownstream;
  }
  EnsureMemory();
  const bool sample = status_ >= 500 && route_ != nullptr && worker_.error_sampler() != nullptr;
  if (sample && !out_is_request_) {
    // Failed before the request head was built (no endpoint): build it now for the sample.
    out_.clear();
    ForwardContext ctx{
        {client_ip_, client_ip_len_}, {request_id_, request_id_len_}, head_.version_minor == 0};
    AppendUpstreamRequestHead(head_, ctx, out_);
    out_is_request_ = true;
  }
  if (!sample) out_.clear();
  const size_t request_size = sample ? out_.size() : 0;
  AppendErrorResponse(error, {request_id_, request_id_len_},
                      keep_alive_ && !worker_.draining() && !ListenerRemoved(), out_);
  if (sample) {
    SampleError(std::string_view(out_).substr(0, request_size),
                std::string_view(out_).substr(request_size));
    out_.erase(0, request_size);  // a memmove within the kept capacity
  }
  out_is_request_ = false;
  iovec iov{out_.data(), out_.size()};
  Status s = co_await WriteDownstream(&iov, 1);
  if (!s) keep_alive_ = false;
}

// ---- phase: record (Session::Record is in session_observe.cc) ---------------------------

void Session::CommitRecord() {
  if (record_slot_) recorder_->Commit(worker_.id(), record_slot_);
  record_slot_ = nullptr;
}

void Session::SampleError(std::string_view request_head, std::string_view response_head) {
  telemetry::ErrorSampler* sampler = worker_.error_sampler();
  if (sampler == nullptr || route_ == nullptr) return;
  sampler->Push(worker_.id(), WallMicros() / 1000, route_->name, status_,
                {request_id_, request_id_len_}, request_head, response_head);
}

// ---- the connection ------------------------------------------------------------------------

net::Task<void> Session::Run() {
  client_ip_len_ = client_.PeerAddress(client_ip_, sizeof client_ip_);
  head_.head_size = 0;  // "no request yet": the first wait uses timeouts.request_head
  bool answered_error = false;
  for (;;) {
    TakeCurrentSnapshot();  // its limits and timeouts apply to reading the head
    auto next = co_await ReadHead();
    if (!next) {
      // A malformed, oversized or too-slow head: answer it and close.
      auto& stats = worker_.server_stats();
      stats.requests.Add();
      if (next.error().kind == ErrorKind::kHeadTimeout)
        stats.head_timeouts.Add();
      else
        stats.parse_errors.Add();
      worker_.NewRequestId(request_id_);
      request_id_len_ = 36;
      start_ns_ = MonotonicNanos();
      BeginObserve(/*parsed=*/false);
      request_body_done_ = false;
      keep_alive_ = false;
      route_cell_ = nullptr;
      co_await Fail(next.error());
      Record(status_);
      answered_error = true;
      break;
    }
    if (*next == Next::kClose) break;
    bool keep = co_await Exchange();
    if (!keep) {
      answered_error = status_ >= 400;
      break;
    }
  }
  ClearDeadline();
  if (answered_error && !closing_) {
    // Lingering close: if the client is still sending (a body we refused), closing now would
    // reset the connection and could destroy our answer before the client reads it. Stop
    // writing, then discard input for a short while.
    client_.ShutdownWrite();
    EnsureMemory();
    SetDeadline(1000, Wait::kIdle);
    for (int i = 0; i < 64; ++i) {
      auto r = co_await client_.ReadSome({xfer_, xfer_cap_});
      if (r.ec || r.bytes == 0) break;
    }
  }
  ClearDeadline();
  client_.Close();
}

}  // namespace ficus::proxy
