// A request body read whole for a policy that answers the request itself (offload stores it):
// policy::BodyReader. The head stays where the parser left it (its views stay valid), the body
// goes into body_, and the input area is left at the next request.
#include <algorithm>
#include <cstring>

#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

namespace {
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

struct AppendTo {
  std::string* body;
  static void Take(void* self, std::string_view piece) {
    static_cast<AppendTo*>(self)->body->append(piece);
  }
};
}  // namespace

net::Task<Result<std::string_view>> Session::ReadBody(uint64_t limit) {
  FICUS_DCHECK(!ex_.request_body_done || ex_.head.framing == BodyFraming::kNone);
  body_.clear();
  const config::Config& cfg = *snapshot_->config;
  const uint64_t max =
      std::min(limit, cfg.limits.max_body_bytes ? cfg.limits.max_body_bytes : UINT64_MAX);
  // The body begins after the head, which stays in place for the policies that still read it.
  size_t at = mem_.in_begin + ex_.head.head_size;
  size_t pending = mem_.in_end - at;
  if (ex_.head.framing == BodyFraming::kNone) co_return std::string_view();
  if (ex_.head.framing == BodyFraming::kUntilClose)  // requests have no such framing; defensive
    co_return Downstream(ErrorKind::kBadRequest, "request body without a length");
  if (ex_.head.framing == BodyFraming::kContentLength && ex_.head.content_length > max)
    co_return Downstream(ErrorKind::kBodyTooLarge, "request body larger than the policy allows");
  http::ChunkedScanner scanner(http::ChunkedScanner::Limits{max});
  AppendTo sink{&body_};
  uint64_t remaining = ex_.head.content_length;
  bool done = false;
  // What is buffered already.
  if (ex_.head.framing == BodyFraming::kContentLength) {
    const size_t take = static_cast<size_t>(std::min<uint64_t>(pending, remaining));
    body_.append(mem_.in + at, take);
    at += take;
    remaining -= take;
    done = remaining == 0;
  } else {
    auto scanned = scanner.Scan({mem_.in + at, pending}, &AppendTo::Take, &sink);
    if (!scanned) co_return Unexpected{scanned.error()};
    at += *scanned;
    done = scanner.done();
  }
  const size_t leftover_start = at;  // the next request's bytes, if any, start here
  if (!done && ex_.head.expect_continue && body_.empty()) {
    iovec cont{const_cast<char*>(kContinue.data()), kContinue.size()};
    Status s = co_await WriteDownstream(&cont, 1);
    if (!s) co_return Unexpected{s.error()};
  }
  bool kept_in_sync = true;
  while (!done) {
    SetDeadline(cfg.timeouts.request_head.count(), Wait::kBody);
    const size_t want = ex_.head.framing == BodyFraming::kContentLength
                            ? static_cast<size_t>(std::min<uint64_t>(mem_.xfer_cap, remaining))
                            : mem_.xfer_cap;
    auto r = co_await client_.ReadSome({mem_.xfer, want});
    if (r.ec || r.bytes == 0) {
      ex_.keep_alive = false;
      co_return Unexpected{ReadError(r.ec, Side::kDownstream)};
    }
    if (ex_.head.framing == BodyFraming::kContentLength) {
      body_.append(mem_.xfer, r.bytes);
      remaining -= r.bytes;
      done = remaining == 0;
      continue;
    }
    auto scanned = scanner.Scan({mem_.xfer, r.bytes}, &AppendTo::Take, &sink);
    if (!scanned) {
      ex_.keep_alive = false;
      co_return Unexpected{scanned.error()};
    }
    done = scanner.done();
    const size_t extra = r.bytes - *scanned;
    if (extra > 0) {
      // The start of a pipelined next request: back into the input area behind the head, or,
      // without room there, the connection closes after this answer.
      if (mem_.in_end + extra <= mem_.in_cap) {
        std::memcpy(mem_.in + mem_.in_end, mem_.xfer + *scanned, extra);
        mem_.in_end += extra;
      } else {
        kept_in_sync = false;
      }
    }
  }
  ClearDeadline();
  // The input area now holds head | consumed body | next request: the answer's consumption of
  // the head (in_begin += head_size) must land on the next request, so the body part is cut.
  const size_t body_in_area = leftover_start - (mem_.in_begin + ex_.head.head_size);
  std::memmove(mem_.in + mem_.in_begin + ex_.head.head_size, mem_.in + leftover_start,
               mem_.in_end - leftover_start);
  mem_.in_end -= body_in_area;
  ex_.request_body_bytes = body_.size();
  ex_.request_body_done = true;
  if (!kept_in_sync) ex_.keep_alive = false;
  co_return std::string_view(body_);
}

}  // namespace ficus::proxy
