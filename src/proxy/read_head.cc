// Phase: read head. Bytes into the exchange memory, the strict parser over them; a new
// connection's first request within timeouts.request_head, later ones after up to timeouts.idle
// (an idle connection parks: it gives its block back and waits with none).
#include <algorithm>
#include <cstring>

#include "proxy/internal/session.h"

namespace ficus::proxy {

namespace {
constexpr int64_t kParkAfterMs = 200;  // an idle keep-alive connection gives its memory back
}  // namespace

net::Task<Result<Session::Next>> Session::ReadHead() {
  const config::Config& cfg = *snapshot_->config;
  if (Pending() == 0) {
    mem_.in_begin = mem_.in_end = 0;
    if (!deferred_.empty()) [[unlikely]] {
      if (!co_await FlushDeferred()) co_return Next::kClose;
    }
    if (closing_ || worker_.draining()) co_return Next::kClose;
    // A new connection's first request must start within request_head (as nginx's
    // client_header_timeout); later ones may idle for timeouts.idle.
    const int64_t idle_ms =
        (exchanges_ == 0 ? cfg.timeouts.request_head : cfg.timeouts.idle).count();
    bool parked = mem_.block == nullptr;
    int64_t idle_left_ms = idle_ms;
    if (!parked) {
      // Back-to-back requests: read straight into the exchange memory we hold.
      SetDeadline(std::min(idle_ms, kParkAfterMs),
                  idle_ms > kParkAfterMs ? Wait::kPark : Wait::kIdle);
      auto r = co_await client_.ReadSome({mem_.in, mem_.in_cap});
      if (!r.ec && r.bytes == 0) co_return Next::kClose;
      if (r.ec) {
        if (timed_out_ != Wait::kPark || closing_) co_return Next::kClose;
        ReleaseMemory();
        parked = true;
        idle_left_ms = idle_ms - kParkAfterMs;
      } else {
        mem_.in_end = r.bytes;
      }
    }
    if (parked) {
      // Idle for a while: wait for readability holding no buffer, then take one.
      SetDeadline(idle_left_ms, Wait::kIdle);
      net::ErrorCode ec = co_await client_.WaitReadable();
      if (ec || closing_) co_return Next::kClose;
      EnsureMemory();
      auto r = co_await client_.ReadSome({mem_.in, mem_.in_cap});
      if (r.ec || r.bytes == 0) co_return Next::kClose;
      mem_.in_end = r.bytes;
    }
  }
  EnsureMemory();
  SetDeadline(cfg.timeouts.request_head.count(), Wait::kHead);
  http::Limits limits{cfg.limits.max_head_bytes, cfg.limits.max_header_count};
  if (mem_.req_fields.size() !=
      std::max<size_t>(limits.max_header_count, ExchangeMemory::kBlockFields)) {
    SizeRequestFields(limits.max_header_count);  // a reload changed the limit
  }
  http::RequestHeadParser parser(limits, mem_.req_fields);
  for (;;) {
    auto parsed = parser.Parse({mem_.in + mem_.in_begin, Pending()}, ex_.head);
    if (!parsed) co_return Unexpected{parsed.error()};
    if (*parsed > 0) co_return Next::kRequest;
    if (mem_.in_end == mem_.in_cap) {
      if (mem_.in_begin > 0) {
        CompactInput();
        parser.Reset();
      } else {
        // The head outgrew the block's input area: move to a buffer one byte larger than the
        // limit, so the parser itself reports 431 when it is exceeded.
        size_t cap = size_t{cfg.limits.max_head_bytes} + 1;
        if (cap <= mem_.in_cap)
          co_return Downstream(ErrorKind::kHeadTooLarge, "request head too large");
        auto bigger = std::make_unique<char[]>(cap);
        std::memcpy(bigger.get(), mem_.in, mem_.in_end);
        mem_.big_in = std::move(bigger);
        mem_.in = mem_.big_in.get();
        mem_.in_cap = cap;
      }
    }
    if (!deferred_.empty()) [[unlikely]] {
      // A pipelined head that is not whole yet: the answers before it go out first.
      if (!co_await FlushDeferred()) co_return Next::kClose;
      SetDeadline(cfg.timeouts.request_head.count(), Wait::kHead);
    }
    auto r = co_await client_.ReadSome({mem_.in + mem_.in_end, mem_.in_cap - mem_.in_end});
    if (r.ec) {
      if (timed_out_ == Wait::kHead) co_return Unexpected{TimeoutError()};
      co_return Next::kClose;
    }
    if (r.bytes == 0) co_return Next::kClose;  // gave up mid-head: nobody to answer
    mem_.in_end += r.bytes;
  }
}

}  // namespace ficus::proxy
