// Phase: relay, a body a policy transforms (policy::BodyTransform: compression). The upstream's
// payload (its framing removed) goes through the transform piece by piece as it arrives; the
// output is chunked for an HTTP/1.1 client and delimited by closing the connection for an
// HTTP/1.0 one. Nothing is held whole: memory is the transform's window and one output piece.
#include <cstdio>
#include <cstring>

#include "proxy/internal/session.h"
#include "proxy/internal/transfer_decoder.h"

namespace ficus::proxy {

using http::BodyFraming;

namespace {

// Room before the output for a chunk-size line: up to 16 hex digits and CRLF.
constexpr size_t kSizeLine = 18;

// The transform's output in frame[kSizeLine, size) made ready to send: a chunk (size line before,
// CRLF after) or, close-delimited, the bytes as they are. Empty when there is no output.
std::string_view Framed(std::string& frame, bool chunked) {
  const size_t n = frame.size() - kSizeLine;
  if (n == 0) return {};
  if (!chunked) return {frame.data() + kSizeLine, n};
  char line[kSizeLine + 1];
  const int len = std::snprintf(line, sizeof line, "%zx\r\n", n);
  char* start = frame.data() + kSizeLine - len;
  std::memcpy(start, line, static_cast<size_t>(len));
  frame.append("\r\n");
  return {start, n + static_cast<size_t>(len) + 2};
}

}  // namespace

net::Task<Status> Session::RelayTransformedBody(upstream::Connection& conn,
                                                const http::ResponseHead& resp, size_t head_size,
                                                size_t got, policy::BodyTransform* transform,
                                                bool to_client) {
  const bool chunked = ex_.head.version_minor == 1;  // else close-delimited (keep_alive is off)
  http::ChunkedScanner scanner;
  scanner.set_upstream(true);
  uint64_t remaining = resp.framing == BodyFraming::kContentLength ? resp.content_length : 0;
  bool done = resp.framing == BodyFraming::kNone ||
              (resp.framing == BodyFraming::kContentLength && remaining == 0);
  bool clean = true;  // nothing beyond the message came from the upstream
  bool head_sent = false;
  // Output of the transform, after room for the chunk-size line. One string per transformed
  // exchange: the transform's own state (a codec window) dwarfs it.
  std::string frame;
  char* data = mem_.xfer + head_size;
  size_t available = got - head_size;
  bool short_read = true;  // the last read drained the socket: the upstream paused
  if (to_client) ex_.response_started = true;
  for (;;) {
    // The payload of what arrived, moved to the front of `data`.
    size_t payload = 0;
    switch (resp.framing) {
      case BodyFraming::kNone:
        clean = available == 0;
        break;
      case BodyFraming::kContentLength:
        payload = static_cast<size_t>(std::min<uint64_t>(available, remaining));
        remaining -= payload;
        done = remaining == 0;
        clean = payload == available;
        break;
      case BodyFraming::kChunked: {
        InPlaceDecoder decoded{data};
        auto scanned = scanner.Scan({data, available}, &InPlaceDecoder::Take, &decoded);
        if (!scanned) co_return Unexpected{scanned.error()};
        payload = decoded.size;
        done = scanner.done();
        clean = *scanned == available;
        break;
      }
      case BodyFraming::kUntilClose:
        payload = available;
        break;
    }
    frame.assign(kSizeLine, '\0');
    if (transform == nullptr) {
      frame.append(data, payload);
    } else {
      if (payload > 0) {
        Status s = transform->Write({data, payload}, frame);
        if (!s) co_return s;
      }
      // A streamed body (chunked or close-delimited) that paused is flushed, so that the client
      // sees what the upstream sent so far; a body of known length is sent when the codec has a
      // block, and wholly at its end.
      if (!done && short_read && resp.framing != BodyFraming::kContentLength && to_client) {
        Status s = transform->Flush(frame);
        if (!s) co_return s;
      }
      if (done) {
        Status s = transform->Finish(frame);
        if (!s) co_return s;
      }
    }
    const size_t produced = frame.size() - kSizeLine;
    if (produced > 0) {
      taps_.OnResponseBody(resp, /*dechunk=*/true, frame.data() + kSizeLine, produced);
      ex_.response_body_bytes += produced;
    }
    const std::string_view piece = to_client ? Framed(frame, chunked) : std::string_view();
    const bool last_chunk = done && chunked;
    if (to_client && (!piece.empty() || !head_sent || last_chunk)) {
      iovec iov[3];
      int n = 0;
      if (!head_sent) iov[n++] = {out_.data(), out_.size()};
      if (!piece.empty()) iov[n++] = {const_cast<char*>(piece.data()), piece.size()};
      // Trailers are not relayed: they would describe the upstream's bytes, not these.
      if (last_chunk) iov[n++] = {const_cast<char*>("0\r\n\r\n"), 5};
      head_sent = true;
      Status s = co_await WriteDownstream(iov, n);
      if (!s) co_return s;
    }
    if (done) break;
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    auto r = co_await conn.socket.ReadSome({mem_.xfer, mem_.xfer_cap});
    if (!r.ec && r.bytes == 0 && resp.framing == BodyFraming::kUntilClose) {
      done = true;
      available = 0;
      continue;
    }
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) ex_.cluster_cell->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    data = mem_.xfer;
    available = r.bytes;
    short_read = r.bytes < mem_.xfer_cap;
  }
  ex_.pool_ok = ex_.pool_ok && resp.keep_alive && resp.framing != BodyFraming::kUntilClose &&
                clean && ex_.request_body_done && !closing_;
  ex_.response_complete = true;
  taps_.OnResponseDone(ex_, resp);
  co_return Status{};
}

}  // namespace ficus::proxy
