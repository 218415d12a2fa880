// Phase: forward, the request side of a try: the head and buffered body in one writev, then the
// rest of the body streamed with backpressure (Content-Length or validated chunked bytes).
#include <algorithm>
#include <cstring>

#include "proxy/internal/heads.h"
#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

namespace {
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
}  // namespace

net::Task<Status> Session::SendRequest(upstream::Connection& conn) {
  const config::Config& cfg = *snapshot_->config;
  http::ChunkedScanner scanner(http::ChunkedScanner::Limits{
      cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : UINT64_MAX});
  uint64_t remaining = 0;
  size_t first = 0;
  bool body_done = true;
  switch (ex_.head.framing) {
    case BodyFraming::kNone:
    case BodyFraming::kUntilClose:
      break;
    case BodyFraming::kContentLength:
      first = static_cast<size_t>(std::min<uint64_t>(Pending(), ex_.head.content_length));
      remaining = ex_.head.content_length - first;
      body_done = remaining == 0;
      break;
    case BodyFraming::kChunked: {
      auto scanned = scanner.Scan({mem_.in + mem_.in_begin, Pending()});
      if (!scanned) co_return Unexpected{scanned.error()};
      first = *scanned;
      body_done = scanner.done();
      break;
    }
  }
  // Head and every body byte already buffered, in one writev (a chunked body's trailer section
  // is held back by the gate until it is whole).
  TrailerGate trailers;
  const size_t sent = ex_.head.framing == BodyFraming::kChunked
                          ? trailers.Pass(scanner, {mem_.in + mem_.in_begin, first})
                          : first;
  iovec iov[3] = {{out_.data(), out_.size()},
                  {mem_.in + mem_.in_begin, sent},
                  {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
  taps_.OnRequestBody({mem_.in + mem_.in_begin, first}, /*first=*/true);
  mem_.in_begin += first;
  // Payload bytes, as the access log documents: a chunked body's framing is not counted.
  const bool chunked = ex_.head.framing == BodyFraming::kChunked;
  ex_.request_body_bytes = chunked ? scanner.payload_bytes() : first;
  SetDeadline(upstream_timeout_ms(), Wait::kUpstreamSend);
  net::ErrorCode ec = co_await conn.socket.WriteAll(iov, trailers.release().empty() ? 2 : 3);
  taps_.OnRequestSent();
  if (ec) {  // nothing of a response came back: retryable (the keep-alive race)
    co_return Upstream(ErrorKind::kUpstreamReset,
                       "upstream closed the connection while the request was being sent", true);
  }
  if (!body_done && ex_.head.expect_continue && first == 0) {
    iovec cont{const_cast<char*>(kContinue.data()), kContinue.size()};
    Status s = co_await WriteDownstream(&cont, 1);
    if (!s) co_return s;
  }
  // Stream the rest: read a piece, write it, and only then read the next (backpressure both
  // ways). Chunked reads are capped at the input area's size so that bytes of a pipelined next
  // request read past the body's end fit back into it.
  while (!body_done) {
    SetDeadline(cfg.timeouts.request_head.count(), Wait::kBody);
    size_t want = ex_.head.framing == BodyFraming::kContentLength
                      ? static_cast<size_t>(std::min<uint64_t>(mem_.xfer_cap, remaining))
                      : std::min(mem_.xfer_cap, ExchangeMemory::kInCap);
    auto r = co_await client_.ReadSome({mem_.xfer, want});
    if (r.ec || r.bytes == 0) {
      ex_.keep_alive = false;
      co_return Unexpected{ReadError(r.ec, Side::kDownstream)};
    }
    size_t take = r.bytes;
    if (ex_.head.framing == BodyFraming::kContentLength) {
      remaining -= take;
      body_done = remaining == 0;
    } else {
      auto scanned = scanner.Scan({mem_.xfer, r.bytes});
      if (!scanned) {
        ex_.keep_alive = false;
        co_return Unexpected{scanned.error()};
      }
      take = *scanned;
      body_done = scanner.done();
      if (take < r.bytes) {  // the start of the next request: back into the input area
        CompactInput();
        std::memcpy(mem_.in + mem_.in_end, mem_.xfer + take, r.bytes - take);
        mem_.in_end += r.bytes - take;
      }
    }
    ex_.request_body_bytes = chunked ? scanner.payload_bytes() : ex_.request_body_bytes + take;
    taps_.OnRequestBody({mem_.xfer, take}, /*first=*/false);
    const size_t pass = ex_.head.framing == BodyFraming::kChunked
                            ? trailers.Pass(scanner, {mem_.xfer, take})
                            : take;
    iovec pieces[2] = {{mem_.xfer, pass},
                       {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamSend);
    ec = co_await conn.socket.WriteAll(pieces, trailers.release().empty() ? 1 : 2);
    if (ec) {
      ex_.keep_alive = false;
      co_return Upstream(ErrorKind::kUpstreamReset,
                         "upstream closed the connection while the "
                         "request body was being sent");
    }
  }
  ex_.request_body_done = true;
  // Input before the last body byte went out: the upstream answered without reading the whole
  // body (an early error). What it makes of the rest -- possibly a request the client wrote --
  // is unknowable, so this connection serves no one else.
  ex_.pool_ok = ex_.head.framing == BodyFraming::kNone || !conn.socket.InputPending();
  co_return Status{};
}

}  // namespace ficus::proxy
