// The blocking forms: a call polled to its end, Fetch, and the kept-alive Client.
#include <poll.h>

#include <cerrno>
#include <cstring>

#include "client/client.h"

namespace ficus::client {

void Run(Call& call, std::chrono::steady_clock::time_point deadline) {
  while (!call.Advance()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      call.Fail("timed out " + call.Waiting());
      return;
    }
    pollfd p{call.fd(), call.events(), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60'000) + 1));
    if (rc < 0 && errno != EINTR) {
      call.Fail(std::string("poll: ") + std::strerror(errno));
      return;
    }
  }
}

Response Fetch(const Url& url, const Request& request, std::chrono::milliseconds timeout,
               std::shared_ptr<TlsContext> tls) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Destination dest;
  Response r;
  if (!Destination::Resolve(url, std::move(tls), &dest, &r.error)) return r;
  Call call;
  Request req = request;
  req.keep_alive = false;
  call.Start(std::move(dest), req, Call::Options{});
  Run(call, deadline);
  return std::move(call.response());
}

Response Client::Send(Request request, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  request.keep_alive = true;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reuse = conn_.open();
    Destination dest;
    Response r;
    if (reuse) {
      dest.host = url_.host;
      dest.port = url_.port;
      dest.https = url_.https;
      dest.tls = tls_;
    } else {
      if (url_.https && tls_ == nullptr) tls_ = TlsContext::Create({}, &r.error);
      if (url_.https && tls_ == nullptr) return r;
      if (!Destination::Resolve(url_, tls_, &dest, &r.error)) return r;
      ++connections_;
    }
    Call call;
    call.Start(std::move(dest), request, Call::Options{}, std::move(conn_));
    Run(call, deadline);
    if (call.stale() && attempt == 0) continue;  // the server had closed the idle connection
    conn_ = call.TakeConnection();
    return std::move(call.response());
  }
  return Response{0, "unreachable", {}, {}, false};
}

}  // namespace ficus::client
