// Phase: relay. The upstream's response head (1xx forwarded, a retryable 5xx handed back to
// forward, 101 into a tunnel), the rewritten head, then the body as it comes.
#include <algorithm>
#include <cstring>

#include "proxy/internal/heads.h"
#include "proxy/internal/resilience.h"
#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

net::Task<Status> Session::RelayResponse(upstream::Connection& conn) {
  // SendRequest said whether the request side ended cleanly; only a relayed body's clean end
  // may make the connection reusable (not a retried 5xx, not a tunnel).
  const bool sent_clean = std::exchange(ex_.pool_ok, false);
  http::ResponseHead resp;
  http::ResponseHeadParser parser(http::Limits{static_cast<uint32_t>(mem_.xfer_cap), 100},
                                  mem_.resp_fields);
  size_t got = 0;
  size_t head_size = 0;
  bool interim_seen = false;  // the upstream answered something: not the keep-alive race
  SetDeadline(upstream_timeout_ms(), Wait::kUpstreamResponse);
  for (;;) {
    auto r = co_await conn.socket.ReadSome({mem_.xfer + got, mem_.xfer_cap - got});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamResponse) {
        ex_.cluster_cell->timeouts.Add();
        co_return Unexpected{TimeoutError()};
      }
      // Nothing of a response came back: retryable (the keep-alive race).
      co_return Upstream(ErrorKind::kUpstreamReset,
                         got == 0 ? "upstream closed the connection without responding"
                                  : "upstream closed the connection in the response head",
                         got == 0 && !interim_seen);
    }
    if (got == 0) taps_.OnResponseFirstByte();
    got += r.bytes;
    bool have_head = false;
    while (got > 0) {
      auto parsed = parser.Parse({mem_.xfer, got}, ex_.head.method, resp);
      if (!parsed) co_return Unexpected{parsed.error()};
      if (*parsed == 0) break;
      if (resp.status >= 100 && resp.status < 200 && resp.status != 101) {
        interim_seen = true;
        if (resp.status != 100 && ex_.head.version_minor == 1 && !ex_.background) {
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
        std::memmove(mem_.xfer, mem_.xfer + *parsed, got - *parsed);
        got -= *parsed;
        parser.Reset();
        continue;
      }
      head_size = *parsed;
      have_head = true;
      break;
    }
    if (have_head) break;
    if (got == mem_.xfer_cap) {
      co_return Upstream(ErrorKind::kUpstreamProtocol, "upstream response head too large");
    }
  }
  EndAttempt(true);                     // the response head is the balancer's latency sample
  ex_.attempt_deadline_ms = INT64_MAX;  // per_try_timeout ends with the head
  ex_.cluster_cell->responses[observe::StatusClassIndex(resp.status)].Add();
  upstream::ClusterShared& shared = ex_.cluster->shared();
  shared.Report(ex_.attempt_endpoint,
                resp.status >= 500 ? upstream::Outcome::k5xx : upstream::Outcome::kSuccess,
                NowMs());
  if (ex_.may_retry_status && resp.status >= 500) {
    const auto& retry_on = shared.config().retry.on_status;
    if (std::find(retry_on.begin(), retry_on.end(), resp.status) != retry_on.end() &&
        ReserveRetry(ex_.try_number + 1)) {
      // Not relayed: the next try answers. The connection is not reused (its body is unread).
      co_return Upstream(ErrorKind::kUpstreamRetryStatus,
                         "upstream answered a status the retry policy retries", true);
    }
  }
  ex_.status = resp.status;
  const bool decode =
      resp.framing == BodyFraming::kChunked && resp.transfer_coding != http::TransferCoding::kNone;
  policy::BodyTransform* transform = nullptr;
  if (!ex_.policies->empty()) [[unlikely]] {
    // The policies may add fields, tap the body, or answer in the upstream's place (its body is
    // then left unread, and its connection not reused).
    policy::Decision d = ResponsePolicies(resp);
    if (d.kind == policy::Decision::Kind::kError) co_return Unexpected{d.error};
    if (d.kind == policy::Decision::Kind::kAnswer) {
      taps_.OnResponseHead(ex_, {}, {mem_.xfer, head_size});
      if (!ex_.background) co_await Answer(d.answer);  // else the client has its answer
      co_return Status{};
    }
    const policy::Context& ctx = *policy_ctx_;
    taps_.TapBody(ctx.response_body_sink());
    // A body the relay can re-encode: not under a transfer coding, not a status without one.
    if (resp.status >= 200 && resp.status != 204 && resp.status != 304 && !decode) {
      transform = ctx.response_transform();
    }
  }
  taps_.OnResponseHead(ex_, ex_.out_is_request ? std::string_view(out_) : std::string_view(),
                       {mem_.xfer, head_size});
  if (ex_.background) [[unlikely]] {
    // A background refresh: the body goes to the policies' sink (through their transform), and
    // nothing to the client, which has its answer.
    if (resp.status == 101 || decode || ex_.head.method == http::Method::kHead) co_return Status{};
    ex_.pool_ok = sent_clean;
    policy::BodyTransform* t = policy_ctx_->response_transform();
    co_return co_await RelayTransformedBody(conn, resp, head_size, got, t, /*to_client=*/false);
  }
  const bool upgrade = resp.status == 101;
  if (upgrade && !ex_.head.upgrade) {
    co_return Upstream(ErrorKind::kUpstreamProtocol,
                       "upstream switched protocols without an upgrade request");
  }
  ex_.out_is_request = false;  // out_ becomes the downstream response head
  // An HTTP/1.0 client cannot take chunked framing (an upstream may send it anyway): decode
  // the body and delimit it by closing the connection.
  const bool head_request = ex_.head.method == http::Method::kHead;
  const bool dechunk =
      ex_.head.version_minor == 0 && resp.framing == BodyFraming::kChunked && !head_request;
  // A transformed body goes out chunked to an HTTP/1.1 client and delimited by close to an
  // HTTP/1.0 one; after HEAD there is no body, and no framing field is sent.
  const bool close_delimited = transform != nullptr && ex_.head.version_minor == 0 && !head_request;
  if (resp.framing == BodyFraming::kUntilClose || dechunk || close_delimited ||
      worker_.draining() || closing_ || ListenerRemoved())
    ex_.keep_alive = false;
  out_.clear();
  ResponseContext rc{ex_.id(), ex_.keep_alive, ex_.head.version_minor == 0, upgrade};
  rc.dechunk = dechunk;
  rc.rechunk = decode && !dechunk;
  rc.added = response_added_;
  if (!ex_.policies->empty()) [[unlikely]] {
    const policy::Context& ctx = *policy_ctx_;
    rc.dropped = ctx.dropped_response_fields();
    rc.representation = ctx.representation_fields();
    if (transform != nullptr) {
      rc.transformed = true;
      rc.dechunk = dechunk || close_delimited || head_request;
      rc.rechunk = !rc.dechunk;
    }
  }
  AppendDownstreamResponseHead(resp, rc, out_);
  if (ex_.cluster->affinity() && !ex_.affinity_hit) {
    AddAffinityCookie(shared.config().affinity,
                      ex_.cluster->affinity_cookie_value(ex_.attempt_endpoint), out_);
  }
  if (upgrade) {
    ex_.response_started = true;
    iovec iov[2] = {{out_.data(), out_.size()}, {mem_.xfer + head_size, got - head_size}};
    Status s = co_await WriteDownstream(iov, got > head_size ? 2 : 1);
    if (!s) co_return s;
    co_await Tunnel(conn);
    ex_.keep_alive = false;
    co_return Status{};
  }
  ex_.pool_ok = sent_clean;
  if (transform != nullptr && !head_request) {
    co_return co_await RelayTransformedBody(conn, resp, head_size, got, transform,
                                            /*to_client=*/true);
  }
  if (decode) co_return co_await RelayDecodedBody(conn, resp, head_size, got);
  co_return co_await RelayBody(conn, resp, head_size, got);
}

net::Task<Status> Session::RelayBody(upstream::Connection& conn, const http::ResponseHead& resp,
                                     size_t head_size, size_t got) {
  http::ChunkedScanner scanner;
  scanner.set_upstream(true);
  const bool dechunk = ex_.head.version_minor == 0 && resp.framing == BodyFraming::kChunked &&
                       ex_.head.method != http::Method::kHead;
  InPlaceDecoder decoded{mem_.xfer + head_size};
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
      // The taps that want the payload of a chunked body relayed as it came (the cacheability
      // sample, a policy's body sink) get the pieces the scanner hands over, never the framing;
      // other bodies they see as they are sent.
      const bool tap = taps_.wants_payload();
      auto scanned =
          dechunk
              ? scanner.Scan({mem_.xfer + head_size, available}, &InPlaceDecoder::Take, &decoded)
          : tap ? scanner.Scan({mem_.xfer + head_size, available}, &Taps::TakePayload, &taps_)
                : scanner.Scan({mem_.xfer + head_size, available});
      if (!scanned) co_return Unexpected{scanned.error()};
      first = dechunk ? decoded.size : trailers.Pass(scanner, {mem_.xfer + head_size, *scanned});
      done = scanner.done();
      clean = *scanned == available;
      break;
    }
    case BodyFraming::kUntilClose:
      first = available;
      done = false;
      break;
  }
  if (ex_.head.method == http::Method::kHead) {  // never a body, whatever the framing says
    first = 0;
    done = true;
    // A body written after a HEAD response would be read as the next request's answer.
    clean = available == 0 && resp.framing != BodyFraming::kUntilClose;
  }
  if (resp.framing == BodyFraming::kContentLength && first == 0 && !done &&
      remaining <= mem_.xfer_cap - got) {
    // The head came alone and a small body is on its way (upstreams that write head and body
    // separately, e.g. nginx with sendfile): wait for the body so that both leave in one write,
    // one segment instead of two. Streamed bodies (chunked, close-delimited, larger than the
    // buffer) never wait here, so their head is never held back.
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    // Read with room to spare: a short read tells the event loop the socket is drained (the
    // pool then reuses it without a check), and bytes past the body show up as not clean.
    auto r = co_await conn.socket.ReadSome({mem_.xfer + got, mem_.xfer_cap - got});
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) ex_.cluster_cell->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    first = static_cast<size_t>(std::min<uint64_t>(r.bytes, remaining));
    clean = first == r.bytes;
    remaining -= first;
    done = remaining == 0;
  }
  // Only now does the client see anything: a failure before this line (the upstream closing
  // while we waited for its small body) can still be answered, or retried, as a whole.
  ex_.response_started = true;
  iovec iov[3] = {{out_.data(), out_.size()},
                  {mem_.xfer + head_size, first},
                  {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
  ex_.response_body_bytes += first;
  taps_.OnResponseBody(resp, dechunk, mem_.xfer + head_size, first);
  Status s = co_await WriteDownstream(iov, !trailers.release().empty() ? 3 : first ? 2 : 1);
  if (!s) co_return s;
  while (!done) {
    SetDeadline(upstream_timeout_ms(), Wait::kUpstreamBody);
    // The whole buffer even for a known length: see the small-body wait above.
    auto r = co_await conn.socket.ReadSome({mem_.xfer, mem_.xfer_cap});
    if (!r.ec && r.bytes == 0 && resp.framing == BodyFraming::kUntilClose) break;
    if (r.ec || r.bytes == 0) {
      if (timed_out_ == Wait::kUpstreamBody) ex_.cluster_cell->timeouts.Add();
      co_return Upstream(ErrorKind::kUpstreamReset, "upstream closed the connection mid-body");
    }
    size_t take = r.bytes;
    if (resp.framing == BodyFraming::kContentLength) {
      take = static_cast<size_t>(std::min<uint64_t>(r.bytes, remaining));
      clean = take == r.bytes;
      remaining -= take;
      done = remaining == 0;
    } else if (resp.framing == BodyFraming::kChunked) {
      decoded = InPlaceDecoder{mem_.xfer};
      const bool tap = taps_.wants_payload();
      auto scanned = dechunk ? scanner.Scan({mem_.xfer, r.bytes}, &InPlaceDecoder::Take, &decoded)
                     : tap   ? scanner.Scan({mem_.xfer, r.bytes}, &Taps::TakePayload, &taps_)
                             : scanner.Scan({mem_.xfer, r.bytes});
      if (!scanned) co_return Unexpected{scanned.error()};
      take = dechunk ? decoded.size : trailers.Pass(scanner, {mem_.xfer, *scanned});
      done = scanner.done();
      clean = *scanned == r.bytes;
    }
    ex_.response_body_bytes += take;
    taps_.OnResponseBody(resp, dechunk, mem_.xfer, take);
    iovec pieces[2] = {{mem_.xfer, take},
                       {const_cast<char*>(trailers.release().data()), trailers.release().size()}};
    s = co_await WriteDownstream(pieces, trailers.release().empty() ? 1 : 2);
    if (!s) co_return s;
  }
  // Reused only when the exchange ended exactly at the message boundary on both sides: the
  // whole request body went up before the upstream said anything, and nothing beyond the
  // response came back.
  ex_.pool_ok = ex_.pool_ok && resp.keep_alive && resp.framing != BodyFraming::kUntilClose &&
                clean && ex_.request_body_done && !closing_;
  ex_.response_complete = true;
  taps_.OnResponseDone(ex_, resp);
  co_return Status{};
}

}  // namespace ficus::proxy
