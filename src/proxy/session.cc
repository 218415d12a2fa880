// The downstream connection: its memory block, timeouts and cancellation, and the loop that
// reads one request after another (keep-alive, pipelining) until it closes, lingering after
// an error answer. Each request is an exchange (exchange.cc) run through the phases.
#include "proxy/internal/session.h"

#include <sys/socket.h>

#include <cstring>
#include <new>
#include <type_traits>

namespace ficus::proxy {
namespace {

// A block (Worker::kBlockSize) is laid out as: downstream input | request fields | response
// fields | transfer buffer | the taps' record.
constexpr size_t kInCap = ExchangeMemory::kInCap;
constexpr size_t kBlockFields = ExchangeMemory::kBlockFields;
constexpr size_t kFieldsBytes = 8 * 1024;
static_assert(2 * kBlockFields * sizeof(http::Header) <= kFieldsBytes);
static_assert(std::is_trivially_destructible_v<http::Header>);

}  // namespace

Session::Session(Worker& worker, net::Socket socket)
    : worker_(worker), client_(std::move(socket)), taps_(worker) {
  worker_.SessionStarted(this);
}

Session::~Session() {
  taps_.CommitCapture();
  ReleaseMemory();
  worker_.SessionEnded(this);
}

void Session::OnTimeout() {
  timed_out_ = waiting_;
  client_.Cancel();
  if (upstream_) upstream_->socket.Cancel();
}

void Session::CloseIfIdle() {
  closing_ = true;
  if (waiting_ == Wait::kIdle || waiting_ == Wait::kPark) client_.Cancel();
}

void Session::Abort() {
  closing_ = true;
  aborted_ = true;
  client_.Cancel();
  if (upstream_) upstream_->socket.Cancel();
}

Error Session::TimeoutError() const {
  switch (timed_out_) {
    case Wait::kHead:
      return Error{ErrorKind::kHeadTimeout, Side::kDownstream, false,
                   "request head not received within timeouts.request_head"};
    case Wait::kBody:
      return Error{ErrorKind::kHeadTimeout, Side::kDownstream, false,
                   "request body stalled longer than timeouts.request_head"};
    case Wait::kConnect:
      return Error{ErrorKind::kConnectFailed, Side::kUpstream, true,
                   "connect to upstream timed out"};
    default:
      return Error{ErrorKind::kUpstreamTimeout, Side::kUpstream, false,
                   "upstream did not respond in time"};
  }
}

Error Session::ReadError(const net::ErrorCode& ec, Side side) const {
  if (ec == net::Aborted() && timed_out_ != Wait::kNone) return TimeoutError();
  if (side == Side::kDownstream)
    return Error{ErrorKind::kDownstreamClosed, side, false, "client closed the connection"};
  return Error{ErrorKind::kUpstreamReset, side, false, "upstream closed or reset the connection"};
}

void Session::EnsureMemory() {
  if (mem_.block != nullptr) return;
  mem_.block = worker_.AcquireBlock();
  mem_.in = mem_.block;
  mem_.in_cap = kInCap;
  auto* fields = new (mem_.block + kInCap) http::Header[2 * kBlockFields];
  mem_.resp_fields = {fields + kBlockFields, kBlockFields};
  SizeRequestFields(snapshot_->config->limits.max_header_count);
  mem_.xfer = mem_.block + kInCap + kFieldsBytes;
  mem_.xfer_cap = Worker::kBlockSize - kInCap - kFieldsBytes - Taps::kRecordBytes;
  if (out_.capacity() < 2048) out_.reserve(2048);
}

void Session::SizeRequestFields(uint32_t max_header_count) {
  if (max_header_count <= kBlockFields) {
    mem_.req_fields = {reinterpret_cast<http::Header*>(mem_.block + kInCap), kBlockFields};
  } else {  // a config allowing more fields than the block holds: rare, so the heap
    mem_.big_fields.resize(max_header_count);
    mem_.req_fields = mem_.big_fields;
  }
}

void Session::ReleaseMemory() {
  if (mem_.block == nullptr) return;
  worker_.ReleaseBlock(mem_.block);
  mem_.block = mem_.in = mem_.xfer = nullptr;
  mem_.in_cap = mem_.xfer_cap = mem_.in_begin = mem_.in_end = 0;
  mem_.big_in.reset();
  mem_.req_fields = mem_.resp_fields = {};
  std::vector<http::Header>().swap(mem_.big_fields);
}

void Session::CompactInput() {
  if (mem_.in_begin == 0) return;
  std::memmove(mem_.in, mem_.in + mem_.in_begin, Pending());
  mem_.in_end -= mem_.in_begin;
  mem_.in_begin = 0;
}

net::Task<Status> Session::WriteDownstream(iovec* iov, int count) {
  SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kDownstreamWrite);
  net::ErrorCode ec;
  if (deferred_.empty()) [[likely]] {
    ec = co_await client_.WriteAll(iov, count);
  } else {
    // Earlier answers to pipelined requests go first, in the same writev.
    FICUS_DCHECK(count <= 6);
    iovec all[7] = {{deferred_.data(), deferred_.size()}};
    for (int i = 0; i < count; ++i) all[i + 1] = iov[i];
    ec = co_await client_.WriteAll(all, count + 1);
    deferred_.clear();
  }
  if (!ec) co_return Status{};
  if (!ex_.termination_known) {
    ex_.termination_known = true;
    ex_.termination = aborted_                               ? observe::Termination::kDrain
                      : timed_out_ == Wait::kDownstreamWrite ? observe::Termination::kClientStalled
                                                             : observe::Termination::kClientClosed;
  }
  if (aborted_) co_return ficus::Fail(ErrorKind::kOverloaded, Side::kInternal, kDrainCut);
  if (timed_out_ == Wait::kDownstreamWrite) {
    co_return Downstream(ErrorKind::kDownstreamClosed,
                         "client stopped reading (no write progress within timeouts.idle)");
  }
  co_return Downstream(ErrorKind::kDownstreamClosed,
                       "client closed the connection before the response was complete");
}

net::Task<Status> Session::FlushDeferred() {
  if (deferred_.empty()) co_return Status{};
  Status s = co_await WriteDownstream(nullptr, 0);
  if (!s) ex_.keep_alive = false;
  co_return s;
}

void Session::EndTermination(const Status& s) {
  using observe::Termination;
  if (ex_.termination_known) return;
  ex_.termination_known = true;
  if (ex_.response_complete) {
    ex_.termination = Termination::kComplete;
  } else if (aborted_) {
    ex_.termination = Termination::kDrain;
  } else if (s) {
    ex_.termination = Termination::kComplete;  // nothing failed (a tunnel that ended, a refresh)
  } else if (s.error().kind == ErrorKind::kDownstreamClosed ||
             s.error().side == Side::kDownstream || !ex_.response_started) {
    // A client that went away (or whose answer could not be written: Fail's write says which).
    ex_.termination = Termination::kClientClosed;
  } else if (s.error().kind == ErrorKind::kUpstreamTimeout) {
    ex_.termination = Termination::kUpstreamTimeout;
  } else if (s.error().kind == ErrorKind::kUpstreamProtocol) {
    ex_.termination = Termination::kUpstreamProtocol;
  } else {
    ex_.termination = Termination::kUpstreamClosed;
  }
}

// ---- the connection ------------------------------------------------------------------------

net::Task<void> Session::Run() {
  client_ip_len_ = client_.PeerAddress(client_ip_, sizeof client_ip_);
  bool answered_error = false;
  for (;;) {
    FICUS_DCHECK(upstream_ == nullptr && !ex_.attempt_open && !ex_.retrying);
    ex_.Reset();  // nothing of the last request carries over
    added_.clear();
    response_added_.clear();
    TakeCurrentSnapshot();  // its limits and timeouts apply to reading the head
    auto next = co_await ReadHead();
    if (!next) {
      // A malformed, oversized or too-slow head: answer it and close.
      auto& stats = worker_.server_stats();
      stats.requests.Add();
      if (next.error().kind == ErrorKind::kHeadTimeout)
        stats.head_timeouts.Add();
      else
        stats.parse_errors.Add();
      worker_.NewRequestId(ex_.request_id);
      ex_.request_id_len = 36;
      ex_.start_ns = MonotonicNanos();
      taps_.Begin(ex_, client_ip(), mem_.record_area(), /*parsed=*/false);
      ex_.request_body_done = false;
      ex_.keep_alive = false;
      co_await Fail(next.error());
      taps_.OnEnd(ex_);
      answered_error = true;
      break;
    }
    if (*next == Next::kClose) break;
    ++exchanges_;
    bool keep = co_await RunExchange();
    if (!keep) {
      answered_error = ex_.status >= 400;
      break;
    }
  }
  if (!deferred_.empty()) co_await FlushDeferred();  // answers to the last pipelined requests
  ClearDeadline();
  if (answered_error && !closing_) {
    // Lingering close: if the client is still sending (a body we refused), closing now would
    // reset the connection and could destroy our answer before the client reads it. Stop
    // writing, then discard input for a short while.
    client_.ShutdownWrite();
    EnsureMemory();
    SetDeadline(1000, Wait::kIdle);
    for (int i = 0; i < 64; ++i) {
      auto r = co_await client_.ReadSome({mem_.xfer, mem_.xfer_cap});
      if (r.ec || r.bytes == 0) break;
    }
  }
  ClearDeadline();
  client_.Close();
}

}  // namespace ficus::proxy
