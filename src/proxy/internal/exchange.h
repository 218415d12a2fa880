// One request on a downstream connection: its state from the parsed head to the record, and
// the one result every phase returns. Internal to proxy/.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <type_traits>

#include "base/base.h"
#include "http/http.h"
#include "policy/policy.h"
#include "proxy/proxy.h"

namespace ficus::proxy {

// A phase goes on to the next, has answered the request itself (admit), or returns an Error,
// which the fail phase turns into a status and a JSON body.
// kRefresh: a policy answered and asked for a background refresh (policy::Context::
// RefreshInBackground): the request still goes upstream, its response to the policies only.
enum class Step : uint8_t { kContinue, kAnswered, kRefresh };
using StepResult = Result<Step>;

// The chain of a request not routed (yet): empty.
inline const policy::Chain kNoPolicies{};

// The per-request state. The session resets it by value before it reads each head, so nothing
// of one request leaks into the next on a keep-alive connection: the scalar part below
// (trivially copyable, so the reset is a few stores), while the parser resets the head as it
// starts one, the request id is written when the exchange begins, and the cluster is released
// when it ends. Observation of the exchange (metrics cells, timings, samples) is the taps'
// (taps.h); buffers are the session's.
struct ExchangeState {
  size_t request_id_len = 0;
  int64_t start_ns = 0;
  int64_t deadline_ms = INT64_MAX;   // timeouts.request, or the route's timeout
  int status = 0;                    // what the client was (or is being) answered
  bool keep_alive = true;            // the connection may serve another request after this
  bool request_body_done = true;     // every request body byte was read from the client
  bool response_started = false;     // a response head went out: errors can only close now
  bool response_complete = false;    // the whole response went out
  uint64_t request_body_bytes = 0;   // payload read from the client (chunk framing not counted)
  uint64_t response_body_bytes = 0;  // as relayed downstream
  // How the exchange ended (the access log's `termination`); set where a cause is known (a
  // failed write downstream), else from the exchange's result when it ends (EndTermination).
  observe::Termination termination = observe::Termination::kComplete;
  bool termination_known = false;

  // route
  const config::Route* route = nullptr;
  const policy::Chain* policies = &kNoPolicies;
  uint8_t policies_admitted = 0;  // how many of them ran Admit (and are owed End)
  observe::RouteCell* route_cell = nullptr;

  // forward: this try, and the retry state of the request
  observe::ClusterCell* cluster_cell = nullptr;
  bool pool_ok = false;         // the upstream connection may serve another request
  bool out_is_request = false;  // the session's out buffer holds the upstream request head
  bool attempt_open = false;    // the balancer's OnStart was called and its OnEnd is owed
  bool affinity_hit = false;    // the client's affinity cookie chose the endpoint
  bool background = false;      // a background refresh: the upstream's response is not relayed
  // The relay may turn a 5xx the retry policy names into a kUpstreamRetryStatus error (a
  // retry it reserves) instead of relaying it: not on the last try.
  bool may_retry_status = false;
  bool retrying = false;    // this request holds the max_retries breaker (released by Forward)
  uint32_t try_number = 1;  // from 1
  size_t attempt_endpoint = 0;
  size_t next_endpoint = 0;                 // the endpoint ReserveRetry chose
  int64_t attempt_start_ns = 0;             // 0 when the balancer does not use latency
  int64_t attempt_deadline_ms = INT64_MAX;  // per_try_timeout, until the response head
  int64_t backoff_ms = 0;                   // before the next try
};
static_assert(std::is_trivially_copyable_v<ExchangeState>);

struct Exchange : ExchangeState {
  http::RequestHead head;  // views into the session's input area; reset by the parser
  char request_id[128];    // the client's X-Request-Id, or a generated UUID
  std::shared_ptr<upstream::ClusterState> cluster;  // kept alive across a reload

  // Before each head. REQUIRES: the last exchange ended (its cluster released).
  void Reset() {
    FICUS_DCHECK(cluster == nullptr);
    static_cast<ExchangeState&>(*this) = ExchangeState{};
  }
  std::string_view id() const { return {request_id, request_id_len}; }
};

// The error of an exchange cut at the drain deadline: ficus closed its sockets (Session::Abort),
// so it is neither the upstream's failure nor the client's.
inline constexpr char kDrainCut[] = "closed by ficus at the drain deadline";

// Errors the phases return, by the side they are attributed to.
inline Unexpected Downstream(ErrorKind kind, const char* why) {
  return Fail(kind, Side::kDownstream, why);
}
inline Unexpected Upstream(ErrorKind kind, const char* why, bool retryable = false) {
  return Fail(kind, Side::kUpstream, why, retryable);
}

// Moves each payload piece to the write position, decoding a chunked body in place (a chunk
// scanner's payload callback).
struct InPlaceDecoder {
  char* out;
  size_t size = 0;
  static void Take(void* self, std::string_view piece) {
    auto* d = static_cast<InPlaceDecoder*>(self);
    std::memmove(d->out + d->size, piece.data(), piece.size());
    d->size += piece.size();
  }
};

}  // namespace ficus::proxy
