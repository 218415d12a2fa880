// The access log's writer thread: drains every worker's ring, formats JSON Lines, writes.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include "base/base.h"
#include "base/json.h"
#include "base/redact.h"
#include "base/text.h"
#include "observe/observe.h"

namespace ficus::observe {
namespace {

constexpr std::string_view kFieldNames[kLogFieldCount] = {
    "time",      "request_id",  "trace_id",   "client",        "method",  "host",
    "path",      "route",       "cluster",    "endpoint",      "status",  "bytes_in",
    "bytes_out", "duration_us", "connect_us", "first_byte_us", "retries", "user_agent",
    "error",     "consumer",    "termination"};

constexpr size_t kDrainBatch = 256;     // records per ring per pass
constexpr size_t kWriteAt = 64 * 1024;  // buffered bytes that trigger a write
// Lines wait at most this long for more to join them in one write (fewer syscalls).
constexpr int64_t kWriteEveryNs = 10'000'000;

// RFC 3339 UTC with microseconds, quoted: "2026-11-21T09:50:36.123456Z" (kTimeBytes). The
// date and time of day are formatted once per second (gmtime and snprintf cost more than the
// rest of a line).
constexpr size_t kTimeBytes = 29;
char* WriteTime(char* out, int64_t unix_ns) {
  thread_local int64_t cached_sec = -1;
  thread_local char prefix[80];  // "\"2026-11-21T09:50:36." (room for any int the format gets)
  const int64_t sec = unix_ns / 1'000'000'000;
  if (sec != cached_sec) {
    const time_t t = static_cast<time_t>(sec);
    tm parts;
    gmtime_r(&t, &parts);
    std::snprintf(prefix, sizeof prefix, "\"%04d-%02d-%02dT%02d:%02d:%02d.", parts.tm_year + 1900,
                  parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
    cached_sec = sec;
  }
  std::memcpy(out, prefix, 21);
  out += 21;
  uint32_t micros = static_cast<uint32_t>((unix_ns % 1'000'000'000) / 1000);
  for (int i = 5; i >= 0; --i) {
    out[i] = static_cast<char>('0' + micros % 10);
    micros /= 10;
  }
  out[6] = 'Z';
  out[7] = '"';
  return out + 8;
}

char* WriteLiteral(char* out, std::string_view s) {
  std::memcpy(out, s.data(), s.size());
  return out + s.size();
}

char* WriteMicrosBetween(char* out, int64_t from_ns, int64_t to_ns) {
  if (from_ns == 0 || to_ns == 0 || to_ns < from_ns) return WriteLiteral(out, "null");
  return WriteJsonUint(out, static_cast<uint64_t>(to_ns - from_ns) / 1000);
}

// What a text field holds: a string, or null (no route, cluster or endpoint; no error).
struct Text {
  bool null = false;
  std::string_view value;
};

// A text-valued field's content, or nullopt for the others (numbers, time, trace id). The
// writer and the line bound both read fields through this, so they agree on every one.
// Inlined: it runs twice per field of every line (out of line: ~640 instructions a line).
[[gnu::always_inline]] inline std::optional<Text> TextField(const ExchangeRecord& r, LogField f) {
  auto name = [](const std::string* s) { return s ? Text{false, *s} : Text{true, {}}; };
  switch (f) {
    case LogField::kRequestId:
      return Text{false, r.RequestId()};
    case LogField::kClient:
      return Text{false, r.Client()};
    case LogField::kMethod:
      return Text{false, r.Method()};
    case LogField::kHost:
      return Text{false, r.Host()};
    case LogField::kPath:
      return Text{false, r.Path()};
    case LogField::kUserAgent:
      return Text{false, r.UserAgent()};
    case LogField::kRoute:
      return name(r.route);
    case LogField::kCluster:
      return name(r.cluster);
    case LogField::kEndpoint:
      return name(r.endpoint);
    case LogField::kError:
      return r.error && *r.error ? Text{false, r.error} : Text{true, {}};
    case LogField::kConsumer:
      return r.consumer_len ? Text{false, r.Consumer()} : Text{true, {}};
    case LogField::kTermination:
      return Text{false, TerminationName(r.termination)};
    default:
      return std::nullopt;
  }
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

std::string_view TerminationName(Termination t) {
  switch (t) {
    case Termination::kComplete:
      return "complete";
    case Termination::kClientClosed:
      return "client_closed";
    case Termination::kClientStalled:
      return "client_stalled";
    case Termination::kUpstreamClosed:
      return "upstream_closed";
    case Termination::kUpstreamTimeout:
      return "upstream_timeout";
    case Termination::kUpstreamProtocol:
      return "upstream_protocol";
    case Termination::kDrain:
      return "drain";
  }
  return "complete";
}

std::string_view LogFieldName(LogField f) { return kFieldNames[static_cast<int>(f)]; }

bool LogFieldByName(std::string_view name, LogField* out) {
  for (int i = 0; i < kLogFieldCount; ++i) {
    if (kFieldNames[i] == name) {
      *out = static_cast<LogField>(i);
      return true;
    }
  }
  return false;
}

// Every string field escaped at its worst, every other value at its longest (a quoted trace id,
// 34 bytes, is the longest of those).
size_t AccessLog::MaxLineBytes(const ExchangeRecord& r, const std::vector<LogField>& fields) {
  constexpr size_t kMaxOtherValueBytes = 34;
  static_assert(kMaxOtherValueBytes >= kTimeBytes && kMaxOtherValueBytes >= kMaxJsonUintBytes);
  size_t n = 3;  // { } \n
  for (LogField f : fields) {
    n += LogFieldName(f).size() + 4;  // , " " :
    const std::optional<Text> text = TextField(r, f);
    n += !text ? kMaxOtherValueBytes : text->null ? 4 : MaxJsonStringBytes(text->value.size());
  }
  return n;
}

void AccessLog::FormatLine(const ExchangeRecord& r, const std::vector<LogField>& fields,
                           int64_t unix_offset_ns, std::string& out) {
  // A token in the path (a magic link, a reset URL) never reaches the file (base/redact.h).
  if (HasJwt(r.Path())) [[unlikely]] {
    ExchangeRecord copy;
    std::memcpy(static_cast<void*>(&copy), &r, sizeof r);
    const std::string path = RedactJwts(r.Path());
    copy.path_len = static_cast<uint16_t>(std::min(path.size(), sizeof copy.path));
    std::memcpy(copy.path, path.data(), copy.path_len);
    FormatLine(copy, fields, unix_offset_ns, out);
    return;
  }
  // Sized once for the worst case, written through a cursor, then cut to what was written.
  const size_t at = out.size();
  out.resize_and_overwrite(at + MaxLineBytes(r, fields), [&](char* begin, size_t) {
    char* p = begin + at;
    *p++ = '{';
    bool first = true;
    for (LogField f : fields) {
      if (!first) *p++ = ',';
      first = false;
      *p++ = '"';
      p = WriteLiteral(p, LogFieldName(f));
      *p++ = '"';
      *p++ = ':';
      if (const std::optional<Text> text = TextField(r, f)) {
        p = text->null ? WriteLiteral(p, "null") : WriteJsonString(p, text->value);
        continue;
      }
      switch (f) {
        case LogField::kTime:
          p = WriteTime(p, r.start_ns + unix_offset_ns);
          break;
        case LogField::kTraceId: {
          static constexpr std::array<uint8_t, 16> kZero{};
          if (r.trace.trace_id == kZero) {
            p = WriteLiteral(p, "null");
          } else {
            *p++ = '"';
            WriteHexLower(r.trace.trace_id.data(), 16, p);
            p += 32;
            *p++ = '"';
          }
          break;
        }
        case LogField::kStatus:
          p = WriteJsonUint(p, r.status);
          break;
        case LogField::kBytesIn:
          p = WriteJsonUint(p, r.bytes_in);
          break;
        case LogField::kBytesOut:
          p = WriteJsonUint(p, r.bytes_out);
          break;
        case LogField::kDurationUs:
          p = WriteMicrosBetween(p, r.start_ns, r.end_ns);
          break;
        case LogField::kConnectUs:
          p = WriteMicrosBetween(p, r.connect_start_ns, r.connected_ns);
          break;
        case LogField::kFirstByteUs:
          p = WriteMicrosBetween(p, r.sent_ns, r.first_byte_ns);
          break;
        case LogField::kRetries:
          p = WriteJsonUint(p, r.retries);
          break;
        case LogField::kRequestId:  // the text fields, written above
        case LogField::kClient:
        case LogField::kMethod:
        case LogField::kHost:
        case LogField::kPath:
        case LogField::kRoute:
        case LogField::kCluster:
        case LogField::kEndpoint:
        case LogField::kUserAgent:
        case LogField::kError:
        case LogField::kConsumer:
        case LogField::kTermination:
          break;
      }
    }
    *p++ = '}';
    *p++ = '\n';
    return static_cast<size_t>(p - begin);
  });
}

std::unique_ptr<AccessLog> AccessLog::Open(const AccessLogOptions& options, int workers,
                                           std::string* error) {
  std::unique_ptr<AccessLog> log(new AccessLog(options, workers, -1));
  if (!log->OpenFile(error)) return nullptr;
  log->thread_ = std::thread([l = log.get()] { l->Run(); });
  return log;
}

AccessLog::AccessLog(const AccessLogOptions& options, int workers, int fd)
    : options_(options),
      rings_(workers, options.ring_capacity),
      rng_(new PaddedRandom[workers]),
      fd_(fd) {
  if (options_.fields.empty()) {
    for (int i = 0; i < kLogFieldCount; ++i) options_.fields.push_back(static_cast<LogField>(i));
  }
  const uint64_t seed = static_cast<uint64_t>(MonotonicNanos());
  for (int w = 0; w < workers; ++w) rng_[w].value = FastRandom(seed ^ (uint64_t(w) << 56));
}

AccessLog::~AccessLog() {
  stop_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  if (own_fd_ && fd_ >= 0) ::close(fd_);
}

bool AccessLog::OpenFile(std::string* error) {
  if (options_.path == "stdout") {
    fd_ = STDOUT_FILENO;
    own_fd_ = false;
    return true;
  }
  int fd = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (error) *error = std::string("cannot open ") + options_.path + ": " + std::strerror(errno);
    return false;
  }
  if (own_fd_ && fd_ >= 0) ::close(fd_);
  fd_ = fd;
  own_fd_ = true;
  return true;
}

void AccessLog::Run() {
  std::string buf;
  buf.reserve(kWriteAt + 4096);
  uint64_t pending = 0;       // records in buf
  int64_t pending_since = 0;  // when the oldest of them was formatted
  auto write_out = [&] {
    if (!buf.empty()) {
      if (!WriteAll(fd_, buf)) write_errors_.fetch_add(1, std::memory_order_relaxed);
      buf.clear();
    }
    written_.fetch_add(pending, std::memory_order_relaxed);
    consumed_.fetch_add(pending, std::memory_order_release);
    pending = 0;
  };
  for (;;) {
    const bool stopping = stop_.load(std::memory_order_acquire);
    if (reopen_.exchange(false, std::memory_order_acq_rel)) {
      write_out();  // what was queued before the signal goes to the old file
      std::string error;
      if (OpenFile(&error)) {
        reopens_.fetch_add(1, std::memory_order_relaxed);
      } else {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    const int64_t offset = UnixMinusMonotonicNanos();
    size_t n = 0;
    for (int w = 0; w < rings_.workers(); ++w) {
      n += rings_.Drain(w, kDrainBatch, [&](const ExchangeRecord& r) {
        if (pending == 0) pending_since = MonotonicNanos();
        FormatLine(r, options_.fields, offset, buf);
        ++pending;
        if (buf.size() >= kWriteAt) write_out();
      });
    }
    if (pending > 0 && (stopping || flush_.load(std::memory_order_acquire) ||
                        MonotonicNanos() - pending_since >= kWriteEveryNs)) {
      write_out();
    }
    if (n == 0) {
      if (stopping) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  write_out();
}

void AccessLog::Flush() {
  flush_.fetch_add(1, std::memory_order_acq_rel);
  const uint64_t target = rings_.pushed();
  const int64_t deadline = MonotonicNanos() + 5'000'000'000;
  while (consumed_.load(std::memory_order_acquire) < target && MonotonicNanos() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  flush_.fetch_sub(1, std::memory_order_acq_rel);
}

void AccessLog::Collect(MetricWriter& w) const {
  w.Family("ficus_access_log_records_total", "counter", "Access log lines written.");
  w.Sample("ficus_access_log_records_total", {}, written());
  w.Family("ficus_access_log_dropped_total", "counter",
           "Access log records dropped because a worker's queue was full.");
  w.Sample("ficus_access_log_dropped_total", {}, dropped());
  w.Family("ficus_access_log_write_errors_total", "counter",
           "Failed writes or reopens of the access log file.");
  w.Sample("ficus_access_log_write_errors_total", {}, write_errors());
  w.Family("ficus_access_log_reopens_total", "counter",
           "Times the access log file was reopened (SIGUSR1).");
  w.Sample("ficus_access_log_reopens_total", {}, reopens());
}

}  // namespace ficus::observe
