// Phase: forward. The cluster's breakers and retry budget, then up to retry.max_tries tries:
// pick an endpoint (affinity, balancer, health mask), attempt it (pooled or new connection, the
// keep-alive-race resend), and retry a failed try when policy, budget and deadline allow.
#include "proxy/internal/heads.h"
#include "proxy/internal/resilience.h"
#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

net::Task<Status> Session::Forward(const config::Route& route) {
  const config::Config& cfg = *snapshot_->config;
  if (!deferred_.empty()) [[unlikely]] {
    // Answers to earlier pipelined requests do not wait for this one's upstream.
    Status flushed = co_await FlushDeferred();
    if (!flushed) co_return flushed;
  }
  // Nothing since RunExchange took the snapshot waited: the worker's clusters are still its own.
  FICUS_DCHECK(worker_.snapshot() == snapshot_);
  ex_.cluster = worker_.cluster(route.cluster_index);
  ex_.cluster_cell = &ex_.cluster->stats()->Cell(worker_.id());
  taps_.OnCluster(ex_);
  if (ex_.head.framing == BodyFraming::kContentLength && cfg.limits.max_body_bytes != 0 &&
      ex_.head.content_length > cfg.limits.max_body_bytes) {
    mem_.in_begin += ex_.head.head_size;
    co_return Downstream(ErrorKind::kBodyTooLarge, "request body exceeds limits.max_body_bytes");
  }
  mem_.in_begin += ex_.head.head_size;
  const size_t body_start = mem_.in_begin;
  // A request is safe to send again when all of it is still in our buffer.
  const bool replayable =
      ex_.head.framing == BodyFraming::kNone ||
      (ex_.head.framing == BodyFraming::kContentLength && ex_.head.content_length <= Pending());

  upstream::ClusterShared& shared = ex_.cluster->shared();
  if (!shared.TryAcquire(upstream::ClusterCounters::kMaxRequests)) {
    co_return Upstream(ErrorKind::kOverloaded, "circuit breaker max_requests is open");
  }
  ex_.cluster->RequestStarted();
  ex_.retrying = false;
  struct RequestGuard {  // every way out gives back what the request holds
    Session& s;
    ~RequestGuard() {
      upstream::ClusterState& c = *s.ex_.cluster;
      c.shared().Release(upstream::ClusterCounters::kMaxRequests);
      if (s.ex_.retrying) {
        c.shared().Release(upstream::ClusterCounters::kMaxRetries);
        s.ex_.retrying = false;
      }
      s.ex_.attempt_deadline_ms = INT64_MAX;
    }
  } request_guard{*this};

  const config::RetryPolicy& policy = shared.config().retry;
  const uint32_t max_tries =
      policy.enabled() && replayable && !ex_.head.upgrade && MayRetry(ex_.head) ? policy.max_tries
                                                                                : 1;
  if (max_tries > 1) tried_.Clear();
  size_t endpoint = PickEndpoint(1);  // a retry's endpoint is chosen when it is reserved
  for (uint32_t try_number = 1;; ++try_number) {
    if (endpoint == upstream::kNoEndpoint) {
      co_return Upstream(ErrorKind::kConnectFailed, "no upstream endpoint available", true);
    }
    if (max_tries > 1) tried_.Insert(endpoint);
    ex_.try_number = try_number;
    ex_.may_retry_status = try_number < max_tries && !policy.on_status.empty();
    ex_.attempt_deadline_ms =
        policy.per_try_timeout.count() > 0 ? NowMs() + policy.per_try_timeout.count() : INT64_MAX;
    Status done = co_await Attempt(endpoint, body_start, replayable);
    ex_.attempt_deadline_ms = INT64_MAX;
    bool again = false;
    if (!done && done.error().kind == ErrorKind::kUpstreamRetryStatus) {
      again = true;  // a retryable 5xx, the retry already reserved by RelayResponse
    } else if (!done && !ex_.response_started && done.error().side == Side::kUpstream &&
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
    endpoint = ex_.next_endpoint;
    // Try again: the whole request is still in the input area.
    taps_.OnRetry();
    mem_.in_begin = body_start;
    ex_.request_body_bytes = 0;
    ex_.status = 0;
    if (ex_.backoff_ms > 0) {
      co_await worker_.loop().Sleep(std::chrono::milliseconds(ex_.backoff_ms));
      if (closing_) co_return Upstream(ErrorKind::kOverloaded, "ficus is shutting down");
    }
  }
}

size_t Session::PickEndpoint(uint32_t try_number) {
  upstream::ClusterState& c = *ex_.cluster;
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
  ex_.affinity_hit = false;
  if (const upstream::AffinityIndex* index = c.affinity()) {
    std::string_view cookie = CookieValue(ex_.head, cc.affinity.cookie);
    if (!cookie.empty()) {
      size_t e = index->Find(cookie);
      if (e != upstream::kNoEndpoint && !ctx.excluded.Contains(e) &&
          (ctx.available.empty() || ctx.available.Contains(e))) {
        ex_.affinity_hit = true;
        return e;
      }
    }
  }
  if (cc.hash_key.kind != config::HashKey::Kind::kNone) {
    ctx.hash = RequestHash(ex_.head, cc.hash_key, client_ip());
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
  upstream::ClusterState& c = *ex_.cluster;
  upstream::ClusterShared& shared = c.shared();
  ex_.backoff_ms = BackoffMs(shared.config().retry, next_try - 1, worker_.Random());
  if (ex_.deadline_ms != INT64_MAX && NowMs() + ex_.backoff_ms >= ex_.deadline_ms) {
    return false;  // no time left for another try
  }
  // The next try's endpoint is chosen now: when no endpoint is left that this request has not
  // tried, the failure in hand is the answer (a retryable 5xx is relayed, not dropped for a
  // retry with nowhere to go), and no budget is spent.
  ex_.next_endpoint = PickEndpoint(next_try);
  if (ex_.next_endpoint == upstream::kNoEndpoint) return false;
  const bool acquired = !ex_.retrying;  // the max_retries breaker counts requests that retry
  if (acquired && !shared.TryAcquire(upstream::ClusterCounters::kMaxRetries)) return false;
  // Every retry is paid for: the budget is a rate of retries, not of retrying requests.
  if (!c.TryStartRetry(NowMs(), connect_failure)) {
    if (acquired) shared.Release(upstream::ClusterCounters::kMaxRetries);
    return false;
  }
  ex_.retrying = true;
  shared.counters().retries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

inline void Session::BuildUpstreamHead() {  // Attempt only
  out_.clear();
  ForwardContext ctx{client_ip(),
                     ex_.id(),
                     ex_.head.version_minor == 0,
                     taps_.tracing() ? taps_.traceparent() : std::string_view(),
                     taps_.drop_tracestate(),
                     added_};
  AppendUpstreamRequestHead(ex_.head, ctx, out_);
  ex_.out_is_request = true;
}

net::Task<Status> Session::Attempt(size_t endpoint, size_t body_start, bool replayable) {
  // The keep-alive-race resend below is the same attempt on the same endpoint (it says nothing
  // about the endpoint's health), so one OnStart and one OnEnd.
  taps_.OnEndpoint(ex_, *snapshot_, endpoint);
  StartAttempt(endpoint);
  struct AttemptGuard {  // a failed or abandoned attempt still owes the balancer its OnEnd
    Session& session;
    ~AttemptGuard() { session.EndAttempt(false); }
  } guard{*this};
  upstream::ClusterShared& shared = ex_.cluster->shared();
  upstream::EndpointPool& pool = ex_.cluster->pool(endpoint);

  for (int attempt = 0;; ++attempt) {
    BuildUpstreamHead();

    // The resend skips the pool: its connections are as old as the one that just failed.
    std::unique_ptr<upstream::Connection> conn =
        attempt == 0 ? pool.Take(NowMs(), ex_.cluster->pool_config().idle_timeout.count())
                     : nullptr;
    const bool reused = conn != nullptr;
    if (reused) {
      ex_.cluster_cell->connections_reused.Add();
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
      SetDeadline(ex_.cluster->connect_timeout_ms(), Wait::kConnect);
      taps_.OnConnectStart();
      net::ErrorCode ec =
          co_await conn->socket.Connect(worker_.loop(), ex_.cluster->address(endpoint));
      shared.Release(upstream::ClusterCounters::kMaxPending);
      if (ec || closing_) {
        upstream_ = nullptr;
        ex_.cluster_cell->connect_failures.Add();
        // Down for every worker's picks at once, not after outlier detection's count or the
        // next health check: the requests already on their way there would fail the same way.
        if (!closing_ && ConnectErrorMarksEndpoint(ec)) shared.ConnectFailed(endpoint, NowMs());
        co_return Upstream(ErrorKind::kConnectFailed,
                           timed_out_ == Wait::kConnect ? "connect to upstream timed out"
                                                        : "could not connect to upstream",
                           true);
      }
      ex_.cluster_cell->connections_opened.Add();
      shared.ConnectSucceeded(endpoint);
      taps_.OnConnected();
    }
    ex_.cluster_cell->requests.Add();
    ++conn->requests;

    ex_.pool_ok = false;
    Status done = co_await SendRequest(*conn);
    if (done) done = co_await RelayResponse(*conn);
    upstream_ = nullptr;
    if (!done && done.error().retryable && done.error().kind == ErrorKind::kUpstreamReset &&
        reused && replayable && attempt == 0 && !closing_ && MayRetry(ex_.head)) {
      // The upstream closed a pooled connection just as we reused it (the keep-alive race):
      // nothing of a response came back, and we still hold the whole request. Send it again
      // on a fresh connection -- unless the method is not idempotent (and no Idempotency-Key
      // says otherwise): the upstream may have acted on it before closing, and a POST must
      // not reach the application twice. That request gets a 502.
      mem_.in_begin = body_start;
      taps_.OnRetry();
      continue;
    }
    if (done && ex_.pool_ok) {
      pool.Put(std::move(conn), NowMs(), ex_.cluster->pool_config().max_idle);
    }
    co_return done;
  }
}

void Session::StartAttempt(size_t endpoint) {
  ex_.cluster->OnStart(endpoint);
  ex_.attempt_endpoint = endpoint;
  ex_.attempt_start_ns = ex_.cluster->wants_latency() ? MonotonicNanos() : 0;
  ex_.attempt_open = true;
}

void Session::EndAttempt(bool ok) {
  if (!ex_.attempt_open) return;
  ex_.attempt_open = false;
  const uint64_t latency_us =
      ex_.attempt_start_ns != 0
          ? static_cast<uint64_t>(MonotonicNanos() - ex_.attempt_start_ns) / 1000
          : 0;
  ex_.cluster->OnEnd(ex_.attempt_endpoint, latency_us, ok);
}
}  // namespace ficus::proxy
