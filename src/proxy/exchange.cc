// The exchange runner: begin -> route -> admit -> forward (+ relay) -> record, on one parsed
// request; any phase's Error goes to fail. Also the route phase itself.
#include <cstring>

#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

// Copies the worker's snapshot only when it changed: the copy is an atomic increment on a
// counter every worker shares, so the steady state does none.
void Session::TakeCurrentSnapshot() {
  if (snapshot_ != worker_.snapshot()) snapshot_ = worker_.snapshot();
}

void Session::BeginExchange() {
  // The config may have been reloaded while the head was read (or the connection idled): the
  // exchange runs on the current one. It must, as the worker's cluster states are the current
  // snapshot's (indexed by its clusters), and routing with an older snapshot's indices reached
  // past them or into another cluster once a reload removed or reordered clusters.
  TakeCurrentSnapshot();
  const config::Config& cfg = *snapshot_->config;
  worker_.server_stats().requests.Add();
  // The rest of the exchange is as Run's reset left it.
  ex_.start_ns = MonotonicNanos();
  ex_.keep_alive = ex_.head.keep_alive && !ex_.head.upgrade;
  ex_.request_body_done = ex_.head.framing == BodyFraming::kNone;
  if (cfg.timeouts.request.count() > 0) ex_.deadline_ms = NowMs() + cfg.timeouts.request.count();
  if (!ex_.head.request_id.empty() && ex_.head.request_id.size() <= sizeof ex_.request_id) {
    std::memcpy(ex_.request_id, ex_.head.request_id.data(), ex_.head.request_id.size());
    ex_.request_id_len = ex_.head.request_id.size();
  } else {
    worker_.NewRequestId(ex_.request_id);
    ex_.request_id_len = 36;
  }
  taps_.Begin(ex_, client_ip(), mem_.record_area(), /*parsed=*/true);
}

Status Session::Route() {
  const Snapshot& snap = *snapshot_;
  const config::Config& cfg = *snap.config;
  // Field names with '_': dropped (the default) or refused before anything reads the fields.
  const config::UnderscoreAction underscores = cfg.limits.headers_with_underscores;
  if (ex_.head.underscore_names) {
    if (underscores == config::UnderscoreAction::kReject) {
      worker_.server_stats().parse_errors.Add();
      return Downstream(ErrorKind::kBadRequest, "header field name with an underscore");
    }
    if (underscores == config::UnderscoreAction::kDrop) http::DropUnderscoreFields(ex_.head);
  }
  // CONNECT is a tunnel request, never routed to an origin server.
  if (ex_.head.method == http::Method::kConnect)
    return Downstream(ErrorKind::kNotImplemented, "CONNECT tunnels are not supported");
  const int r = snap.routes.Match(ex_.head);
  if (r < 0) {
    worker_.server_stats().no_route.Add();
    return Downstream(ErrorKind::kNoRoute, "no route matches this request");
  }
  ex_.route = &cfg.routes[r];
  ex_.policies = &snap.route_policies[r];
  taps_.OnRouted(ex_, snap, r, client_ip(), {mem_.in + mem_.in_begin, ex_.head.head_size});
  if (ex_.route->timeout) {  // the route's own deadline replaces the global one; 0 = none
    ex_.deadline_ms =
        ex_.route->timeout->count() > 0 ? NowMs() + ex_.route->timeout->count() : INT64_MAX;
  }
  return Status{};
}

net::Task<bool> Session::RunExchange() {
  BeginExchange();
  Status s = Route();
  if (!s) {
    mem_.in_begin += ex_.head.head_size;
  } else if (ex_.policies->empty()) [[likely]] {
    // phase: forward (+ relay: the response streams back as it arrives). A route without
    // policies pays the one branch above for admit.
    s = co_await Forward(*ex_.route);
  } else {
    StepResult admitted = co_await Admit();  // phase: admit, the route's policies
    if (!admitted) {
      s = Unexpected{admitted.error()};
    } else if (*admitted == Step::kRefresh) {
      // The client has its answer; the upstream's response goes to the policies only. What the
      // client got stays the exchange's record, and a failure is the policies' (OnError).
      const int answered = ex_.status;
      const uint64_t answered_bytes = ex_.response_body_bytes;
      ex_.background = true;
      ex_.response_started = false;  // for the upstream's side (retries): nothing of it is sent
      Status refreshed = co_await Forward(*ex_.route);
      ex_.response_started = true;
      if (!refreshed && refreshed.error().side == Side::kUpstream) {
        ErrorPolicies(refreshed.error());
      }
      ex_.status = answered;
      ex_.response_body_bytes = answered_bytes;
    } else if (*admitted == Step::kContinue) {
      s = co_await Forward(*ex_.route);
      if (!s && !ex_.response_started && s.error().side == Side::kUpstream) {
        // The upstream failed before answering: a policy may answer instead (stale-if-error).
        policy::Decision d = ErrorPolicies(s.error());
        if (d.kind == policy::Decision::Kind::kAnswer) {
          taps_.OnError(s.error());
          co_await Answer(d.answer);
          s = Status{};
        }
      }
    }
  }
  if (!s && aborted_ && s.error().context != kDrainCut) {
    // The drain deadline cancelled the sockets: whatever failed, ficus cut the exchange.
    s = Unexpected{Error{ErrorKind::kOverloaded, Side::kInternal, false, kDrainCut}};
  }
  if (!s) {
    if (!ex_.response_started) {
      co_await Fail(s.error());  // phase: fail
    } else {
      taps_.OnError(s.error());  // the log says why the response was cut
      ex_.keep_alive = false;    // mid-response failure: closing is the only honest signal
    }
  }
  EndTermination(s);
  if (ex_.policies_admitted != 0) [[unlikely]] {
    taps_.SetConsumer(policy_ctx_->consumer());
    taps_.OnEnd(ex_);
    EndPolicies();
  } else {
    taps_.OnEnd(ex_);
  }
  ClearDeadline();
  ex_.deadline_ms = INT64_MAX;
  ex_.cluster.reset();
  co_return ex_.keep_alive&& ex_.request_body_done && !closing_ && !worker_.draining() &&
      !ListenerRemoved();
}

}  // namespace ficus::proxy
