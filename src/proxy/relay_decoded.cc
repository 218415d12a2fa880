// Phase: relay, a body under a compression transfer coding (gzip, deflate): decoded on the
// way and re-chunked (HTTP/1.1 clients) or delimited by close (HTTP/1.0).
#include <cstdio>
#include <cstring>

#include "proxy/internal/session.h"
#include "proxy/internal/transfer_decoder.h"

namespace ficus::proxy {

using http::BodyFraming;

net::Task<Status> Session::RelayDecodedBody(upstream::Connection& conn,
                                            const http::ResponseHead& resp, size_t head_size,
                                            size_t got) {
  TransferDecoder decoder(resp.transfer_coding);
  const bool chunk_out =
      ex_.head.version_minor == 1;  // else close-delimited (ex_.keep_alive is off)
  // Decoded pieces go out as chunks: room for the size line before and the CRLF after.
  constexpr size_t kPiece = 16 * 1024;
  constexpr size_t kSizeLine = 18;  // up to 16 hex digits and CRLF
  auto piece = std::make_unique<char[]>(kSizeLine + kPiece + 2);
  http::ChunkedScanner scanner;
  scanner.set_upstream(true);
  ex_.response_started = true;
  iovec head{out_.data(), out_.size()};
  Status s = co_await WriteDownstream(&head, 1);
  if (!s) co_return s;
  char* data = mem_.xfer + head_size;
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
      taps_.OnResponseBody(resp, /*dechunk=*/true, piece.get() + kSizeLine, *n);
      ex_.response_body_bytes += *n;
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
    auto r = co_await conn.socket.ReadSome({mem_.xfer, mem_.xfer_cap});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) ex_.cluster_cell->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    data = mem_.xfer;
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
  ex_.pool_ok = ex_.pool_ok && resp.keep_alive && clean && ex_.request_body_done && !closing_;
  ex_.response_complete = true;
  taps_.OnResponseDone(ex_, resp);
  co_return Status{};
}

}  // namespace ficus::proxy
