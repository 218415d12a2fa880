// One exchange on a worker's connection: connect, send, read the response (whole when it
// tends to come in pieces), and count it.
#include <sys/uio.h>

#include <cstring>
#include <span>

#include "load/internal/engine.h"

namespace ficus::load::internal {
namespace {

bool IsSmallWhole(const http::ResponseHead& head, size_t head_size) {
  if (head.status < 200) return false;
  if (head.framing == http::BodyFraming::kNone) return head_size <= kWholeResponseMaxBytes;
  return head.framing == http::BodyFraming::kContentLength &&
         head.content_length <=
             kWholeResponseMaxBytes - std::min(head_size, kWholeResponseMaxBytes);
}

void NoteSplit(Conn& c) { c.split_score = std::min(c.split_score + 2, kSplitScoreMax); }

}  // namespace

Task<bool> Worker::Exchange(Conn& c, int64_t intended, uint64_t n) {
  c.busy = true;
  http::Method method;
  const std::string_view request = RequestFor(c, n, &method);
  bool first = true;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = c.connected;
    if (!c.connected) {
      c.timed_out = false;
      c.deadline_ns = MonotonicNanos() + plan_.timeout_ns;
      net::ErrorCode ec = co_await c.socket.Connect(loop_, exec_.address);
      if (ec) {
        Fail(c, c.timed_out ? ErrorType::kTimeout : ErrorType::kConnect);
        co_return false;
      }
      c.connected = true;
    }
    // Closed model, first attempt on a connected socket: `intended` was read just now.
    int64_t sent_at = plan_.closed && first && reused ? intended : MonotonicNanos();
    if (first) {
      first = false;
      ++stats_.sent;
      progress_sent.store(stats_.sent, std::memory_order_relaxed);
      if (sent_at - intended > kLateNanos) ++stats_.late;
      if (sent_at >= exec_.start_ns) {
        auto second = static_cast<size_t>((sent_at - exec_.start_ns) / 1'000'000'000);
        if (second < kMaxSeconds) {
          if (stats_.sent_per_second.size() <= second) stats_.sent_per_second.resize(second + 1);
          ++stats_.sent_per_second[second];
        }
      }
      last_send_ns_ = std::max(last_send_ns_, sent_at);
    }
    c.timed_out = false;
    c.deadline_ns = sent_at + plan_.timeout_ns;
    iovec iov{const_cast<char*>(request.data()), request.size()};
    net::ErrorCode ec = co_await c.socket.WriteAll(&iov, 1);
    AttemptEnd outcome;
    bool keep = false;
    if (ec) {
      outcome = reused && !c.timed_out && !stopping_ ? AttemptEnd::kRetry : AttemptEnd::kFailed;
      if (outcome == AttemptEnd::kFailed)
        Fail(c, c.timed_out ? ErrorType::kTimeout : ErrorType::kReset);
    } else {
      stats_.bytes_out += request.size();
      outcome = co_await ReadResponse(c, method, intended, sent_at, reused, &keep);
    }
    if (outcome == AttemptEnd::kRetry) {
      // A reused keep-alive connection the server had closed: once more on a new one.
      c.socket.Close();
      c.connected = false;
      continue;
    }
    c.busy = false;
    c.deadline_ns = INT64_MAX;
    if (outcome == AttemptEnd::kFailed || !keep) {
      c.socket.Close();
      c.connected = false;
      co_return false;
    }
    co_return true;
  }
  Fail(c, ErrorType::kReset);
  c.busy = false;
  co_return false;
}

void Worker::Fail(Conn& c, ErrorType type) {
  c.busy = false;
  c.deadline_ns = INT64_MAX;
  if (stopping_) {
    ++stats_.aborted;
  } else {
    ++stats_.errors[static_cast<size_t>(type)];
    progress_errors.fetch_add(1, std::memory_order_relaxed);
    Roll(MonotonicNanos());
    ++window_errors_;
  }
  c.socket.Close();
  c.connected = false;
}

// Waits until the response is whole (peeking at what came), then takes it in one go. Why: a
// server that writes the head and then the body (nginx with sendfile, most frameworks) sends
// two segments, and a reader quick enough to take the head alone returns its memory to the
// kernel, which must charge it again for the body: the socket's slow receive path, run on
// the CPU that delivers the segment. On a single machine that is the server's CPU (loopback
// delivers in the sender's context): against nginx, waiting whole took the fast-path hits
// (TcpExtTCPHPHits) from 1.1 to 2.0 per request and nginx's CPU per request down ~2 %
// (bench/load/run.py's backend, 30 paired rounds). The server sees the same packets. Used only
// while responses do come in pieces (split_score) and this thread has time to spare: waiting
// whole costs one syscall more than plain reads.
Task<Worker::WholeRead> Worker::ReadWhole(Conn& c, http::Method method,
                                          http::ResponseHeadParser& parser,
                                          http::ResponseHead& head) {
  char* buf = c.buffer.get();
  size_t seen = 0;
  size_t head_size = 0;
  size_t whole = 0;
  int peeks = 0;
  for (;;) {
    net::ReadResult r = co_await c.socket.PeekSome(std::span<char>(buf, kBufferBytes), seen);
    if (r.ec || r.bytes == 0) co_return WholeRead{0, 0, true, seen > 0, r};
    ++peeks;
    seen = r.bytes;
    if (head_size == 0) {
      Result<size_t> parsed = parser.Parse(std::string_view(buf, seen), method, head);
      if (parsed && *parsed == 0 && seen < kWholeResponseMaxBytes) continue;
      if (!parsed || *parsed == 0 || !IsSmallWhole(head, *parsed)) {
        // Not a small final response (or not HTTP): taken as read, for the caller to parse.
        c.split_score = 0;
        break;
      }
      head_size = *parsed;
      whole = head_size + (head.framing == http::BodyFraming::kContentLength
                               ? static_cast<size_t>(head.content_length)
                               : 0);
    }
    if (seen >= whole) {
      if (peeks == 1) {
        --c.split_score;  // this look was one syscall more than a read
      } else {
        NoteSplit(c);
      }
      c.socket.Consume(seen);
      co_return WholeRead{seen, head_size, false, true, {}};
    }
  }
  c.socket.Consume(seen);
  co_return WholeRead{seen, 0, false, true, {}};
}

Task<AttemptEnd> Worker::ReadResponse(Conn& c, http::Method method, int64_t intended,
                                      int64_t sent_at, bool reused, bool* keep) {
  char* buf = c.buffer.get();
  size_t len = 0;
  http::ResponseHeadParser parser(http::Limits{}, std::span<http::Header>(c.headers));
  http::ResponseHead head;
  size_t head_size = 0;
  bool any_byte = false;
  auto read_error = [&](const net::ReadResult& r) {
    if (r.bytes == 0 && !r.ec && !any_byte && reused && !stopping_) return AttemptEnd::kRetry;
    Fail(c, c.timed_out ? ErrorType::kTimeout : ErrorType::kReset);
    return AttemptEnd::kFailed;
  };
  // Only while this thread polls, i.e. has CPU to spare: sharing a CPU with the server, the
  // extra syscall would cost the server more than the slow path it saves.
  if (c.split_score > 0 && loop_.busy_poll_window().count() > 0) {
    WholeRead whole = co_await ReadWhole(c, method, parser, head);
    if (whole.failed) {
      any_byte = whole.saw_bytes;
      co_return read_error(whole.failure);
    }
    any_byte = true;
    len = whole.bytes;
    stats_.bytes_in += len;
    if (whole.head_size > 0) {
      head_size = whole.head_size;
      goto head_done;
    }
    parser.Reset();  // not a small response: the loop below parses what came, as if read
  }
  // `unparsed`: ReadWhole's bytes, parsed before anything more is read.
  for (bool unparsed = len > 0;;) {
    if (unparsed) {
      unparsed = false;
    } else {
      if (len == kBufferBytes) {
        Fail(c, ErrorType::kProtocol);
        co_return AttemptEnd::kFailed;
      }
      net::ReadResult r =
          co_await c.socket.ReadSome(std::span<char>(buf + len, kBufferBytes - len));
      if (r.ec || r.bytes == 0) co_return read_error(r);
      any_byte = true;
      len += r.bytes;
      stats_.bytes_in += r.bytes;
    }
    Result<size_t> parsed = parser.Parse(std::string_view(buf, len), method, head);
    if (!parsed) {
      Fail(c, ErrorType::kProtocol);
      co_return AttemptEnd::kFailed;
    }
    if (*parsed == 0) continue;
    head_size = *parsed;
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      std::memmove(buf, buf + head_size, len - head_size);
      len -= head_size;
      parser.Reset();
      // The next head may already be complete in the buffer.
      while (len > 0) {
        Result<size_t> again = parser.Parse(std::string_view(buf, len), method, head);
        if (!again) {
          Fail(c, ErrorType::kProtocol);
          co_return AttemptEnd::kFailed;
        }
        if (*again == 0) break;
        head_size = *again;
        if (head.status >= 200 || head.status == 101) goto head_done;
        std::memmove(buf, buf + head_size, len - head_size);
        len -= head_size;
        parser.Reset();
      }
      continue;
    }
    break;
  }
head_done:
  const uint16_t status = head.status;
  const http::BodyFraming framing = head.framing;
  const uint64_t content_length = head.content_length;
  bool keep_alive = head.keep_alive && status != 101;
  size_t rest = len - head_size;
  if (framing == http::BodyFraming::kContentLength) {
    uint64_t have = std::min<uint64_t>(rest, content_length);
    uint64_t remaining = content_length - have;
    if (remaining > 0 && IsSmallWhole(head, head_size)) NoteSplit(c);
    while (remaining > 0) {
      net::ReadResult r = co_await c.socket.ReadSome(std::span<char>(buf, kBufferBytes));
      if (r.ec || r.bytes == 0) co_return read_error(r);
      stats_.bytes_in += r.bytes;
      remaining -= std::min<uint64_t>(remaining, r.bytes);
    }
  } else if (framing == http::BodyFraming::kChunked) {
    http::ChunkedScanner scanner;
    scanner.set_upstream(true);
    std::string_view data(buf + head_size, rest);
    for (;;) {
      if (!data.empty()) {
        Result<size_t> used = scanner.Scan(data);
        if (!used) {
          Fail(c, ErrorType::kProtocol);
          co_return AttemptEnd::kFailed;
        }
      }
      if (scanner.done()) break;
      net::ReadResult r = co_await c.socket.ReadSome(std::span<char>(buf, kBufferBytes));
      if (r.ec || r.bytes == 0) co_return read_error(r);
      stats_.bytes_in += r.bytes;
      data = std::string_view(buf, r.bytes);
    }
  } else if (framing == http::BodyFraming::kUntilClose) {
    keep_alive = false;
    for (;;) {
      net::ReadResult r = co_await c.socket.ReadSome(std::span<char>(buf, kBufferBytes));
      if (r.ec) co_return read_error(r);
      if (r.bytes == 0) break;
      stats_.bytes_in += r.bytes;
    }
  }
  int64_t now = MonotonicNanos();
  ++stats_.completed;
  progress_completed.store(stats_.completed, std::memory_order_relaxed);
  if (status < stats_.status.size()) ++stats_.status[status];
  stats_.corrected.Record(now - intended);
  stats_.uncorrected.Record(now - sent_at);
  if (status >= 200 && status < 400) stats_.succeeded.Record(now - intended);
  Roll(now);
  window_.Record(now - intended);
  ++window_completed_;
  *keep = keep_alive;
  co_return AttemptEnd::kDone;
}

}  // namespace ficus::load::internal
