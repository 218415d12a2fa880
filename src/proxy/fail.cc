// Phase: fail. The one place an Error becomes an HTTP status and a JSON body; a policy's answer
// leaves through the same writer (Answer).
#include "proxy/internal/heads.h"
#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

void Session::SettleUnreadBody(bool out_of_sync, bool keep_if_skipped) {
  // After a malformed request, or one whose body we did not read, the byte stream cannot be
  // trusted to be in sync: answer and close.
  if (!ex_.request_body_done || out_of_sync) ex_.keep_alive = false;
  if (!ex_.keep_alive && ex_.head.framing == BodyFraming::kContentLength &&
      !ex_.request_body_done && ex_.head.content_length <= Pending()) {
    // The whole body is already here: skip it and keep the connection after all.
    mem_.in_begin += ex_.head.content_length;
    ex_.request_body_done = true;
    ex_.keep_alive = ex_.head.keep_alive && keep_if_skipped;
  }
}

net::Task<void> Session::Fail(const Error& error) {
  ex_.status = StatusFor(error.kind);
  taps_.OnError(error);
  // Nothing to answer: the client went away, or ficus is cutting the connection (drain).
  if (error.kind == ErrorKind::kDownstreamClosed || aborted_) {
    ex_.keep_alive = false;
    co_return;
  }
  SettleUnreadBody(error.side == Side::kDownstream && error.kind != ErrorKind::kNoRoute,
                   error.side != Side::kDownstream);
  EnsureMemory();
  const bool sample = ex_.status >= 500 && taps_.SamplesErrors(ex_);
  if (sample && !ex_.out_is_request) {
    // Failed before the request head was built (no endpoint): build it now for the sample.
    out_.clear();
    ForwardContext ctx{client_ip(), ex_.id(), ex_.head.version_minor == 0};
    AppendUpstreamRequestHead(ex_.head, ctx, out_);
    ex_.out_is_request = true;
  }
  if (!sample) out_.clear();
  const size_t request_size = sample ? out_.size() : 0;
  AppendErrorResponse(error, ex_.id(), MayKeepAlive(), response_added_, out_);
  if (sample) {
    taps_.SampleError(ex_, std::string_view(out_).substr(0, request_size),
                      std::string_view(out_).substr(request_size));
    out_.erase(0, request_size);  // a memmove within the kept capacity
  }
  ex_.out_is_request = false;
  iovec iov{out_.data(), out_.size()};
  Status s = co_await WriteDownstream(&iov, 1);
  if (!s) ex_.keep_alive = false;
  ex_.response_complete = static_cast<bool>(s);
}

net::Task<void> Session::Answer(const policy::Answer& answer) {
  ex_.status = answer.status;
  SettleUnreadBody(/*out_of_sync=*/false, /*keep_if_skipped=*/true);
  EnsureMemory();
  out_.clear();
  ex_.out_is_request = false;
  const bool head_only = ex_.head.method == http::Method::kHead;
  const bool no_content = answer.status == 204 || answer.status == 304;
  AppendAnswerHead(answer.status, answer.headers, response_added_, answer.content_type,
                   answer.body.size(), ex_.id(), MayKeepAlive(), out_);
  // The body goes out from the policy's own storage (a cached object is not copied).
  const size_t body = head_only || no_content ? 0 : answer.body.size();
  ex_.response_body_bytes = body;
  ex_.response_started = true;
  if (Pending() > 0 && body <= kDeferMaxBody && MayKeepAlive() &&
      deferred_.size() + out_.size() + body <= kDeferMaxBytes) {
    // The client pipelined: the next request is already here. Its answer and this one leave
    // together (one writev) rather than one write each; a small body is copied for that.
    deferred_.append(out_).append(answer.body.data(), body);
    ex_.response_complete = true;
    co_return;
  }
  iovec iov[2] = {{out_.data(), out_.size()}, {const_cast<char*>(answer.body.data()), body}};
  Status s = co_await WriteDownstream(iov, body != 0 ? 2 : 1);
  if (!s) ex_.keep_alive = false;
  ex_.response_complete = static_cast<bool>(s);
}

}  // namespace ficus::proxy
