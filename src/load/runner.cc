// The load engine: one net::Loop per thread, a timerfd for the open model's schedule, one
// coroutine per request (open) or per connection (closed), and the command's front end.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "base/base.h"
#include "http/http.h"
#include "load/internal/capture.h"
#include "load/internal/scenario.h"
#include "load/load.h"
#include "net/net.h"

namespace ficus::load {
namespace {

using net::Task;

constexpr size_t kBufferBytes = 64 * 1024;
// Closed model: poll up to this long before sleeping (the loop adapts the window, see
// net::Loop::SetBusyPoll). Against nginx on the other CPU (bench/load/run.py, 3 interleaved
// rounds each): 0 -> 0.92x wrk's req/s, 50 us -> 0.98x, 150 us -> 1.03-1.06x. Sharing nginx's
// CPU, a fixed 150 us window cost 7 % (0.97x wrk against 1.04x without); the adaptive one
// closes there.
constexpr int64_t kClosedBusyPollMicros = 150;
// Responses up to this size are waited for whole when they tend to arrive in pieces (see
// ReadWhole); each new piece costs a peek of all that came, so larger ones are read as they come.
constexpr size_t kWholeResponseMaxBytes = 4096;
constexpr int kSplitScoreMax = 4;
constexpr int64_t kLateNanos = 1'000'000;  // sent more than 1 ms after intended: "late"
constexpr size_t kMaxSeconds = 1'000'000;  // per-second counts kept (11.5 days)
// `ficus replay --loop` without --duration runs until a signal; this bounds its arithmetic.
constexpr int64_t kUnboundedNanos = int64_t{kMaxSeconds} * 1'000'000'000;

// SIGINT / SIGTERM during a run: the front end's progress loop polls it and ends the run.
std::atomic<bool> g_stop_signal{false};
extern "C" void OnStopSignal(int) { g_stop_signal.store(true, std::memory_order_relaxed); }

// Installs the handlers for the length of a run (one-shot: a second signal kills as usual).
class StopSignals {
 public:
  explicit StopSignals(bool install) : installed_(install) {
    g_stop_signal.store(false);
    if (!installed_) return;
    struct sigaction sa {};
    sa.sa_handler = OnStopSignal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    if (!installed_) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  bool installed_;
  struct sigaction old_int_ {
  }, old_term_{};
};

// Per-second latency windows: each thread records the responses completing in the current
// second into its own histogram and hands it over here when the second is over (once a
// second, so a mutex costs nothing); the second's p50/p99 are computed once every thread has
// handed in, and only those numbers are kept (memory stays flat however long the run).
class Seconds {
 public:
  explicit Seconds(int threads) : threads_(threads) {}

  void Publish(size_t second, const Histogram& h, uint64_t completed, uint64_t errors) {
    std::lock_guard lock(mu_);
    Pending& p = pending_[second];
    p.h.Merge(h);
    p.completed += completed;
    p.errors += errors;
    if (++p.reports >= threads_) Finalize(second, p);
  }
  // After the threads have stopped: whatever is left.
  void FinalizeAll() {
    std::lock_guard lock(mu_);
    while (!pending_.empty()) Finalize(pending_.begin()->first, pending_.begin()->second);
  }
  struct Done {
    uint64_t completed = 0, errors = 0;
    int64_t p50 = 0, p99 = 0;
    bool valid = false;
  };
  Done Get(size_t second) {
    std::lock_guard lock(mu_);
    return second < done_.size() ? done_[second] : Done{};
  }
  // The newest finished second (for the progress line).
  std::optional<std::pair<size_t, Done>> Latest() {
    std::lock_guard lock(mu_);
    if (latest_ == SIZE_MAX) return std::nullopt;
    return std::make_pair(latest_, done_[latest_]);
  }

 private:
  struct Pending {
    Histogram h;
    uint64_t completed = 0, errors = 0;
    int reports = 0;
  };
  void Finalize(size_t second, Pending& p) {
    if (done_.size() <= second) done_.resize(second + 1);
    done_[second] = {p.completed, p.errors, p.h.Percentile(0.5), p.h.Percentile(0.99), true};
    if (latest_ == SIZE_MAX || second > latest_) latest_ = second;
    pending_.erase(second);
  }
  std::mutex mu_;
  const int threads_;
  std::map<size_t, Pending> pending_;
  std::vector<Done> done_;
  size_t latest_ = SIZE_MAX;
};

struct Plan {
  net::Address address;
  std::string request;  // the serialized request, sent as is (no scenario, no capture)
  http::Method method = http::Method::kGet;
  const internal::Scenario* scenario = nullptr;  // requests built from templates
  const internal::Capture* capture = nullptr;    // replayed requests on the capture's timeline
  std::string host_header;
  uint64_t seed = 0;
  Seconds* seconds = nullptr;
  bool closed = false;
  Profile profile;  // open model
  int threads = 1;
  int64_t start_ns = 0;
  int64_t duration_ns = 0;
  int64_t timeout_ns = 0;
};

// A timerfd on the worker's loop: precise (the loop's own tick is 100 ms). Registered through
// Loop::Register like a socket; waits use the descriptor's read readiness directly because a
// timerfd is read with read(), not recv().
class Timer {
 public:
  explicit Timer(net::Loop& loop) : loop_(loop) {
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "timerfd_create");
    state_ = loop.Register(fd);
  }
  ~Timer() { loop_.Unregister(state_); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Expires at `at_ns` on CLOCK_MONOTONIC (base::MonotonicNanos' clock); now if already past.
  void ArmAt(int64_t at_ns) {
    at_ns = std::max<int64_t>(at_ns, 1);
    itimerspec spec{};
    spec.it_value.tv_sec = at_ns / 1'000'000'000;
    spec.it_value.tv_nsec = at_ns % 1'000'000'000;
    timerfd_settime(state_->fd, TFD_TIMER_ABSTIME, &spec, nullptr);
  }

  Task<void> Wait() {
    struct Awaiter {
      net::internal::IoState* s;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) noexcept { s->read_waiter = h; }
      void await_resume() noexcept {}
    };
    for (;;) {
      if (state_->readable) {
        uint64_t expirations;
        if (::read(state_->fd, &expirations, sizeof expirations) == sizeof expirations) co_return;
        state_->readable = false;  // EAGAIN: not expired yet (or re-armed)
      }
      co_await Awaiter{state_};
    }
  }

 private:
  net::Loop& loop_;
  net::internal::IoState* state_ = nullptr;
};

// Suspends the coroutine until the loop has handled the rest of the current batch of events
// (it resumes from the loop's ready queue, after the batch). The closed model waits here
// between a response and the connection's next request, so a batch is handled as wrk does:
// first every ready response is read, parsed and timestamped, then the next requests are
// written. Writing inline instead put a writev (several µs in the kernel) before each later
// response's timestamp, inflating the p50 by the batch's position, and woke the server once
// per request rather than once per burst.
struct YieldToBatchEnd {
  net::Loop& loop;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) const noexcept { loop.Ready(h); }
  void await_resume() const noexcept {}
};

struct Conn {
  net::Socket socket;
  bool connected = false;
  bool busy = false;
  bool timed_out = false;
  int64_t deadline_ns = INT64_MAX;
  size_t index = 0;  // in Worker::conns_
  std::unique_ptr<char[]> buffer{new char[kBufferBytes]};
  std::string request;  // built per request (scenario), capacity kept
  // How strongly recent small responses came in pieces (head before body): above 0, the next
  // response is peeked at until it is whole, then taken at once (see ReadWhole).
  int split_score = 0;
  http::Header headers[100];
};

enum class Outcome { kDone, kRetry, kFailed };

class Worker {
 public:
  Worker(const Plan& plan, int index, int max_conns, size_t backlog)
      : plan_(plan), index_(index), max_conns_(max_conns), backlog_(backlog), timer_(loop_) {
    if (plan.scenario)
      builder_.emplace(*plan.scenario, plan.host_header,
                       plan.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index));
  }

  void Run() {
    loop_.SetTick(std::chrono::milliseconds(20), [this] { Tick(); });
    end_ns_ = plan_.start_ns + plan_.duration_ns;
    hard_stop_ns_ = end_ns_ + plan_.timeout_ns + 2'000'000'000;
    if (plan_.closed) {
      // Maximum throughput: poll a little before sleeping, so a response arriving just after
      // a batch does not cost the target a wake-up of this thread (see bench/load/run.py).
      loop_.SetBusyPoll(std::chrono::microseconds(kClosedBusyPollMicros));
      for (int i = 0; i < max_conns_; ++i) net::Spawn(ClosedLoop());
    } else {
      net::Spawn(Schedule());
    }
    loop_.Run();
    // Everything has finished: close the idle connections while the loop still exists.
    conns_.clear();
    // Hand in every second up to the end of the run (empty ones too), then the partial last.
    int64_t last = std::max(MonotonicNanos(), end_ns_ - 1);
    Roll(last);
    plan_.seconds->Publish(window_second_, window_, window_completed_, window_errors_);
  }

  // Any thread: ends the run at `at_ns` (if earlier than planned) as if the duration were
  // over: nothing new is scheduled, in-flight requests finish or time out.
  void StopAt(int64_t at_ns) {
    loop_.Post([this, at_ns] {
      if (at_ns >= end_ns_) return;
      end_ns_ = at_ns;
      hard_stop_ns_ = end_ns_ + plan_.timeout_ns + 2'000'000'000;
      timer_.ArmAt(at_ns);  // wakes the schedule, which then sees the new end
    });
  }

  const Stats& stats() const { return stats_; }
  int64_t last_send_ns() const { return last_send_ns_; }
  std::atomic<uint64_t> progress_sent{0}, progress_completed{0}, progress_errors{0},
      progress_dropped{0};

 private:
  uint64_t Global(uint64_t k) const {
    return k * static_cast<uint64_t>(plan_.threads) + static_cast<uint64_t>(index_);
  }
  int64_t Intended(uint64_t k) const {
    if (plan_.capture) {
      int64_t t = plan_.capture->TimeOf(Global(k));
      return t == INT64_MAX ? INT64_MAX : plan_.start_ns + t;
    }
    return IntendedTime(plan_.start_ns, plan_.profile, plan_.threads, index_, k);
  }

  // The request to send for global request n, and its method.
  std::string_view RequestFor(Conn& c, uint64_t n, http::Method* method) {
    if (plan_.capture) {
      const internal::Capture::Request& r = plan_.capture->At(n);
      *method = r.method;
      return r.bytes;
    }
    if (builder_) {
      *method = builder_->Build(c.request).parsed_method;
      return c.request;
    }
    *method = plan_.method;
    return plan_.request;
  }

  // Moves the per-second window forward to the second holding `now`, handing in the ones
  // that are over.
  void Roll(int64_t now) {
    if (now < plan_.start_ns) return;
    size_t second =
        std::min(static_cast<size_t>((now - plan_.start_ns) / 1'000'000'000), kMaxSeconds);
    while (window_second_ < second) {
      plan_.seconds->Publish(window_second_, window_, window_completed_, window_errors_);
      window_.Reset();
      window_completed_ = window_errors_ = 0;
      ++window_second_;
    }
  }

  // ---- open model ----
  Task<void> Schedule() {
    ++tasks_;
    while (Intended(next_k_) < end_ns_) {
      timer_.ArmAt(Intended(next_k_));
      co_await timer_.Wait();
      int64_t now = MonotonicNanos();
      while (Intended(next_k_) <= now && Intended(next_k_) < end_ns_) {
        ++stats_.scheduled;
        queue_.push_back(next_k_++);
      }
      Dispatch(now);
      while (queue_.size() > backlog_) {  // refuse the newest arrivals beyond the backlog
        queue_.pop_back();
        ++stats_.dropped;
      }
      progress_dropped.store(stats_.dropped, std::memory_order_relaxed);
    }
    schedule_done_ = true;
    --tasks_;
    MaybeFinish();
  }

  // Sends queued requests while connections are available; drops those that waited longer
  // than the timeout.
  void Dispatch(int64_t now) {
    while (!queue_.empty() && !stopping_) {
      uint64_t k = queue_.front();
      if (now - Intended(k) > plan_.timeout_ns) {
        queue_.pop_front();
        ++stats_.dropped;
        continue;
      }
      Conn* c = TakeConn();
      if (!c) break;
      queue_.pop_front();
      net::Spawn(OpenRequest(c, Intended(k), Global(k)));
    }
  }

  Conn* TakeConn() {
    if (!idle_.empty()) {
      Conn* c = idle_.back();
      idle_.pop_back();
      return c;
    }
    if (static_cast<int>(conns_.size()) >= max_conns_ || stopping_) return nullptr;
    auto c = std::make_unique<Conn>();
    c->index = conns_.size();
    conns_.push_back(std::move(c));
    return conns_.back().get();
  }

  void RemoveConn(Conn* c) {
    size_t i = c->index;
    if (i + 1 != conns_.size()) {
      std::swap(conns_[i], conns_.back());
      conns_[i]->index = i;
    }
    conns_.pop_back();
  }

  Task<void> OpenRequest(Conn* c, int64_t intended, uint64_t n) {
    ++tasks_;
    bool keep = co_await Exchange(*c, intended, n);
    if (keep && !stopping_) {
      idle_.push_back(c);
    } else {
      RemoveConn(c);
    }
    Dispatch(MonotonicNanos());
    --tasks_;
    MaybeFinish();
  }

  // ---- closed model ----
  Task<void> ClosedLoop() {
    ++tasks_;
    Conn* c = TakeConn();
    for (;;) {
      // Read once: the end check, and the send time of the request (Exchange uses it as is).
      const int64_t now = MonotonicNanos();
      if (!c || stopping_ || now >= end_ns_) break;
      ++stats_.scheduled;
      uint64_t completed_before = stats_.completed;
      bool keep = co_await Exchange(*c, now, stats_.scheduled - 1);
      if (!keep && stats_.completed == completed_before) {
        // A failure (not a response with Connection: close): do not spin on a dead target.
        co_await loop_.Sleep(std::chrono::milliseconds(10));
      } else {
        co_await YieldToBatchEnd{loop_};
      }
    }
    --tasks_;
    MaybeFinish();
  }

  // ---- one exchange ----
  // Returns whether the connection may carry another request.
  Task<bool> Exchange(Conn& c, int64_t intended, uint64_t n) {
    c.busy = true;
    http::Method method;
    const std::string_view request = RequestFor(c, n, &method);
    bool first = true;
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool reused = c.connected;
      if (!c.connected) {
        c.timed_out = false;
        c.deadline_ns = MonotonicNanos() + plan_.timeout_ns;
        net::ErrorCode ec = co_await c.socket.Connect(loop_, plan_.address);
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
        if (sent_at >= plan_.start_ns) {
          auto second = static_cast<size_t>((sent_at - plan_.start_ns) / 1'000'000'000);
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
      Outcome outcome;
      bool keep = false;
      if (ec) {
        outcome = reused && !c.timed_out && !stopping_ ? Outcome::kRetry : Outcome::kFailed;
        if (outcome == Outcome::kFailed)
          Fail(c, c.timed_out ? ErrorType::kTimeout : ErrorType::kReset);
      } else {
        stats_.bytes_out += request.size();
        outcome = co_await ReadResponse(c, method, intended, sent_at, reused, &keep);
      }
      if (outcome == Outcome::kRetry) {
        // A reused keep-alive connection the server had closed: once more on a new one.
        c.socket.Close();
        c.connected = false;
        continue;
      }
      c.busy = false;
      c.deadline_ns = INT64_MAX;
      if (outcome == Outcome::kFailed || !keep) {
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

  void Fail(Conn& c, ErrorType type) {
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

  // What ReadWhole took from the socket into the connection's buffer.
  struct WholeRead {
    size_t bytes = 0;      // in the buffer, taken from the socket
    size_t head_size = 0;  // > 0: a whole final response, its head parsed (else: parse `bytes`)
    bool failed = false;   // the peer closed or the connection failed first: `failure` says how
    bool saw_bytes = false;
    net::ReadResult failure;
  };

  static bool IsSmallWhole(const http::ResponseHead& head, size_t head_size) {
    if (head.status < 200) return false;
    if (head.framing == http::BodyFraming::kNone) return head_size <= kWholeResponseMaxBytes;
    return head.framing == http::BodyFraming::kContentLength &&
           head.content_length <=
               kWholeResponseMaxBytes - std::min(head_size, kWholeResponseMaxBytes);
  }

  static void NoteSplit(Conn& c) { c.split_score = std::min(c.split_score + 2, kSplitScoreMax); }

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
  Task<WholeRead> ReadWhole(Conn& c, http::Method method, http::ResponseHeadParser& parser,
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

  // Reads one response (skipping interim 1xx); records it.
  Task<Outcome> ReadResponse(Conn& c, http::Method method, int64_t intended, int64_t sent_at,
                             bool reused, bool* keep) {
    char* buf = c.buffer.get();
    size_t len = 0;
    http::ResponseHeadParser parser(http::Limits{}, std::span<http::Header>(c.headers));
    http::ResponseHead head;
    size_t head_size = 0;
    bool any_byte = false;
    auto read_error = [&](const net::ReadResult& r) {
      if (r.bytes == 0 && !r.ec && !any_byte && reused && !stopping_) return Outcome::kRetry;
      Fail(c, c.timed_out ? ErrorType::kTimeout : ErrorType::kReset);
      return Outcome::kFailed;
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
          co_return Outcome::kFailed;
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
        co_return Outcome::kFailed;
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
            co_return Outcome::kFailed;
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
            co_return Outcome::kFailed;
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
    Roll(now);
    window_.Record(now - intended);
    ++window_completed_;
    *keep = keep_alive;
    co_return Outcome::kDone;
  }

  // ---- time ----
  void Tick() {
    int64_t now = MonotonicNanos();
    Roll(now);
    for (auto& c : conns_) {
      if (c->busy && c->deadline_ns <= now) {
        c->timed_out = true;
        c->deadline_ns = INT64_MAX;
        c->socket.Cancel();
      }
    }
    if (!stopping_ && now >= hard_stop_ns_) {
      stopping_ = true;
      for (auto& c : conns_)
        if (c->busy) c->socket.Cancel();
    }
    if (!plan_.closed) {
      Dispatch(now);  // drops requests queued too long even if no connection frees up
    }
    MaybeFinish();
  }

  void MaybeFinish() {
    if (finished_ || tasks_ > 0) return;
    if (!plan_.closed && (!schedule_done_ || (!queue_.empty() && !stopping_))) return;
    finished_ = true;
    stats_.dropped += queue_.size();
    queue_.clear();
    loop_.Stop();
  }

  const Plan& plan_;
  const int index_;
  const int max_conns_;
  const size_t backlog_;
  net::Loop loop_;  // declared before everything registered with it
  Timer timer_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<Conn*> idle_;
  std::deque<uint64_t> queue_;  // due requests waiting for a connection (their k)
  uint64_t next_k_ = 0;
  int tasks_ = 0;
  bool schedule_done_ = false;
  bool stopping_ = false;
  bool finished_ = false;
  int64_t end_ns_ = 0;
  int64_t hard_stop_ns_ = 0;
  int64_t last_send_ns_ = 0;
  Stats stats_;
  std::optional<internal::RequestBuilder> builder_;
  Histogram window_;  // responses completed in second window_second_
  size_t window_second_ = 0;
  uint64_t window_completed_ = 0, window_errors_ = 0;
};

// ---- validation ------------------------------------------------------------------------------

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == 0) return false;
  }
  return true;
}

// One blocking connect with a bounded wait: is anyone listening?
std::string TryConnect(const net::Address& to, int64_t timeout_ns) {
  int fd = ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  std::string error;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length) != 0) {
    if (errno != EINPROGRESS) {
      error = std::strerror(errno);
    } else {
      pollfd p{fd, POLLOUT, 0};
      int ms = static_cast<int>(std::clamp<int64_t>(timeout_ns / 1'000'000, 1, 3000));
      int n = ::poll(&p, 1, ms);
      if (n == 0) {
        error = "connect timed out";
      } else {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) error = std::strerror(err);
      }
    }
  }
  ::close(fd);
  return error;
}

std::string Format(const char* fmt, auto... args) {
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, fmt, args...);
  return std::string(buf, static_cast<size_t>(std::clamp(n, 0, static_cast<int>(sizeof buf) - 1)));
}

// A scenario file rather than a URL: no scheme, and a YAML name or an existing file.
bool IsScenarioPath(const std::string& s) {
  if (s.find("://") != std::string::npos) return false;
  auto ends = [&s](std::string_view x) {
    return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  struct stat st;
  return ends(".yaml") || ends(".yml") || (::stat(s.c_str(), &st) == 0 && S_ISREG(st.st_mode));
}

std::string HumanNs(int64_t ns) {
  char buf[32];
  if (ns < 1'000'000)
    std::snprintf(buf, sizeof buf, "%.0fus", static_cast<double>(ns) / 1e3);
  else if (ns < 1'000'000'000)
    std::snprintf(buf, sizeof buf, "%.1fms", static_cast<double>(ns) / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ns) / 1e9);
  return buf;
}

}  // namespace

int Run(const Options& given_options) { return Run(given_options, nullptr); }

int Run(const Options& given_options, Summary* summary_out) {
  Options o = given_options;
  const char* const who = o.replay.empty() ? "ficus load" : "ficus replay";
  auto usage = [who](const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", who, message.c_str());
    return 2;
  };
  // Everything is validated before any traffic.
  std::string error;
  std::optional<internal::Scenario> scenario;
  std::optional<internal::Capture> capture;
  std::string url_text = o.url;
  std::vector<std::string> threshold_texts;
  if (!o.replay.empty()) {
    if (o.target.empty()) return usage("--target http://HOST:PORT is required");
    url_text = o.target;
    if (o.rate != 0 || !o.profile.empty() || !o.stages.empty() || o.closed)
      return usage("a replay keeps the capture's timing: no --rate, --profile, --stage, --closed");
  } else if (IsScenarioPath(o.url)) {
    std::vector<std::string> errors;
    scenario = internal::LoadScenario(o.url, &errors);
    if (!scenario) {
      for (const auto& e : errors) std::fprintf(stderr, "%s: %s\n", who, e.c_str());
      return 2;
    }
    if (o.method != "GET" || !o.headers.empty() || o.body)
      return usage("--method, --header and --body are for a URL; a scenario sets them per request");
    url_text = !o.target.empty() ? o.target : scenario->target;
    if (url_text.empty())
      return usage(o.url +
                   ": the scenario has no target: add target: http://HOST:PORT or give "
                   "--target");
    // The command line wins over the file.
    const bool cli_load = o.rate != 0 || !o.profile.empty() || !o.stages.empty() || o.closed;
    if (!cli_load) {
      o.rate = scenario->rate;
      o.profile = scenario->profile;
      o.stages = scenario->stages;
      o.closed = scenario->closed;
    }
    // The file's duration, unless stages (theirs or the command line's) set the length.
    if (o.duration.empty() && o.stages.empty()) o.duration = scenario->duration;
    if (o.connections < 0 && scenario->connections > 0) o.connections = scenario->connections;
    if (o.threads < 0 && scenario->threads > 0) o.threads = scenario->threads;
    if (o.timeout.empty()) o.timeout = scenario->timeout;
    threshold_texts = scenario->thresholds;
  } else if (!o.target.empty()) {
    return usage("--target is for a scenario file or a replay");
  }
  threshold_texts.insert(threshold_texts.end(), o.thresholds.begin(), o.thresholds.end());
  if (o.connections < 0) o.connections = 64;
  if (o.threads < 0) o.threads = 1;
  if (o.timeout.empty()) o.timeout = "10s";

  auto url = ParseUrl(url_text, &error);
  if (!url) return usage(error);
  std::optional<int64_t> duration = int64_t{10'000'000'000};
  if (!o.duration.empty()) {
    duration = ParseDuration(o.duration, &error);
    if (!duration) return usage("--duration: " + error);
    if (*duration <= 0) return usage("--duration must be positive, got '" + o.duration + "'");
  }
  auto timeout = ParseDuration(o.timeout, &error);
  if (!timeout) return usage("--timeout: " + error);
  if (*timeout <= 0) return usage("--timeout must be positive, got '" + o.timeout + "'");
  Profile profile;
  std::string profile_text;
  if (!o.replay.empty()) {
    internal::CaptureOptions co;
    std::string speed = o.speed;
    if (!speed.empty() && (speed.back() == 'x' || speed.back() == 'X')) speed.pop_back();
    char* end = nullptr;
    co.speed = std::strtod(speed.c_str(), &end);
    if (speed.empty() || end != speed.c_str() + speed.size() || !(co.speed > 0) ||
        !std::isfinite(co.speed) || co.speed > 1e6)
      return usage("--speed must be a positive factor such as 2x or 0.5x, got '" + o.speed + "'");
    if (!o.max_wait.empty()) {
      auto w = ParseDuration(o.max_wait, &error);
      if (!w) return usage("--max-wait: " + error);
      co.max_wait_ns = *w;
    }
    for (const auto& f : o.filters) {
      size_t eq = f.find('=');
      std::string key = f.substr(0, eq);
      if (eq == std::string::npos || (key != "method" && key != "path" && key != "route"))
        return usage("--filter '" + f + "': expected method=M, path=PREFIX or route=NAME");
      co.filters.emplace_back(key, f.substr(eq + 1));
    }
    co.loop = o.loop;
    co.host_header = url->host_header;
    if (!o.host.empty()) {
      for (char ch : o.host) {
        if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
          return usage("--host '" + o.host + "': expected a host name such as example.com:8080");
      }
      co.host_override = o.host;
    }
    capture = internal::LoadCapture(o.replay, co, &error);
    if (!capture) return usage(error);
    if (!o.loop) {
      if (!o.duration.empty()) return usage("--duration is for --loop (one pass ends by itself)");
      duration = capture->requests.back().at_ns + 1;
    } else if (o.duration.empty()) {
      duration = kUnboundedNanos;  // until SIGINT/SIGTERM
    }
    profile_text = o.replay + " at " + o.speed;
  } else {
    int given = (o.rate != 0 ? 1 : 0) + (!o.profile.empty() ? 1 : 0) + (!o.stages.empty() ? 1 : 0);
    if (given > 1) return usage("give one of --rate, --profile and --stage");
    if (o.closed && given > 0)
      return usage(
          "--closed sends as fast as responses come back: no --rate, --profile or --stage");
    if (!o.closed) {
      if (!o.stages.empty()) {
        auto p = ParseStages(o.stages, &error);
        if (!p) return usage(error);
        if (!o.duration.empty() && *duration != p->duration_ns())
          return usage(std::string("--duration ")
                           .append(o.duration)
                           .append(" does not match the sum of the stages (")
                           .append(std::to_string(p->duration_ns() / 1'000'000))
                           .append("ms); leave it out"));
        profile = std::move(*p);
        for (const auto& stage : o.stages)
          profile_text.append(profile_text.empty() ? "" : " ").append(stage);
      } else if (!o.profile.empty()) {
        auto p = ParseProfile(o.profile, *duration, &error);
        if (!p) return usage(error);
        profile = std::move(*p);
        profile_text = o.profile;
      } else {
        if (!(o.rate > 0 && std::isfinite(o.rate)))
          return usage(
              "--rate must be > 0 (requests per second), or give --profile or --stage; use "
              "--closed for max throughput");
        profile = Profile::Constant(o.rate, *duration);
      }
      if (!(profile.total() >= 1))
        return usage("the load profile sends no requests (its rates are all 0 or too low)");
      duration = profile.duration_ns();
    }
  }
  if (o.connections < 1) return usage("--connections must be >= 1");
  if (o.threads < 1) return usage("--threads must be >= 1");
  if (o.backlog < 0) return usage("--backlog must be >= 0");
  if (!IsToken(o.method))
    return usage(std::string("--method '").append(o.method).append("' is not an HTTP token"));
  std::vector<Threshold> thresholds;
  for (const auto& text : threshold_texts) {
    auto t = ParseThreshold(text, &error);
    if (!t) return usage(error);
    thresholds.push_back(*t);
  }
  Plan plan;
  try {
    plan.address = net::MakeAddress(url->ip, url->port);
  } catch (const std::exception& e) {
    return usage(e.what());
  }
  plan.method = http::ParseMethod(o.method);
  plan.closed = o.closed;
  plan.profile = profile;
  plan.threads = std::min(o.threads, o.connections);
  plan.duration_ns = *duration;
  plan.timeout_ns = *timeout;
  plan.scenario = scenario ? &*scenario : nullptr;
  plan.capture = capture ? &*capture : nullptr;
  plan.host_header = url->host_header;
  plan.seed = scenario && scenario->seed ? *scenario->seed : std::random_device{}();
  if (!o.closed && !capture && profile.peak_rate() / plan.threads > 1e7)
    return usage(o.rate != 0 ? "--rate is too high" : "the profile's peak rate is too high");
  // Expected requests in [0, t] of the run (open model).
  auto count_at = [&](int64_t t) { return capture ? capture->CountAt(t) : profile.CountAt(t); };

  if (!scenario && !capture) {
    std::string req = std::string(o.method).append(" ").append(url->target).append(" HTTP/1.1\r\n");
    bool has_host = false, has_agent = false, has_length = false;
    std::string extra;
    for (const auto& h : o.headers) {
      size_t colon = h.find(':');
      std::string_view name = std::string_view(h).substr(0, colon);
      if (colon == std::string::npos || !IsToken(name) ||
          h.find_first_of("\r\n") != std::string::npos)
        return usage(std::string("-H '").append(h).append("': expected 'Name: value'"));
      std::string_view value = std::string_view(h).substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      if (http::EqualsIgnoreCase(name, "host")) has_host = true;
      if (http::EqualsIgnoreCase(name, "user-agent")) has_agent = true;
      if (http::EqualsIgnoreCase(name, "content-length") ||
          http::EqualsIgnoreCase(name, "transfer-encoding"))
        has_length = true;
      extra.append(name).append(": ").append(value).append("\r\n");
    }
    if (!has_host) req.append("Host: ").append(url->host_header).append("\r\n");
    if (!has_agent) req.append("User-Agent: ficus-load\r\n");
    req.append(extra);
    if (o.body && !has_length)
      req.append("Content-Length: ").append(std::to_string(o.body->size())).append("\r\n");
    req.append("\r\n");
    if (o.body) req.append(*o.body);
    plan.request = std::move(req);
  }

  if (std::string e = TryConnect(plan.address, plan.timeout_ns); !e.empty())
    return usage(
        std::string("cannot connect to ").append(plan.address.ToString()).append(": ").append(e));

  // Split connections and the backlog over the threads.
  Seconds seconds(plan.threads);
  plan.seconds = &seconds;
  std::vector<std::unique_ptr<Worker>> workers;
  plan.start_ns = MonotonicNanos() + 20'000'000;  // let the threads start first
  for (int i = 0; i < plan.threads; ++i) {
    int conns = o.connections / plan.threads + (i < o.connections % plan.threads ? 1 : 0);
    size_t backlog =
        static_cast<size_t>(o.backlog / plan.threads + (i < o.backlog % plan.threads ? 1 : 0));
    workers.push_back(std::make_unique<Worker>(plan, i, conns, backlog));
  }
  StopSignals signals(!o.quiet);
  int64_t run_ns = plan.duration_ns;  // shorter when a signal ends the run early
  std::atomic<int> running{plan.threads};
  std::vector<std::thread> threads;
  for (auto& w : workers) {
    threads.emplace_back([&running, w = w.get()] {
      w->Run();
      running.fetch_sub(1);
    });
  }
  // The live progress line, on a terminal only: elapsed/total, target and achieved rate over
  // the last second, p50/p99 of the last finished second, errors and drops so far.
  const bool tty = !o.quiet && isatty(STDERR_FILENO) == 1;
  int64_t next_progress = plan.start_ns + 1'000'000'000;
  uint64_t last_sent = 0;
  while (running.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int64_t now = MonotonicNanos();
    if (g_stop_signal.load(std::memory_order_relaxed) && now - plan.start_ns < run_ns) {
      run_ns = std::max<int64_t>(now - plan.start_ns, 1);
      for (auto& w : workers) w->StopAt(plan.start_ns + run_ns);
    }
    if (tty && now >= next_progress) {
      uint64_t sent = 0, errors = 0, dropped = 0;
      for (auto& w : workers) {
        sent += w->progress_sent.load(std::memory_order_relaxed);
        errors += w->progress_errors.load(std::memory_order_relaxed);
        dropped += w->progress_dropped.load(std::memory_order_relaxed);
      }
      double t = static_cast<double>(now - plan.start_ns) / 1e9;
      double achieved = static_cast<double>(sent - last_sent);
      last_sent = sent;
      std::string line = run_ns == kUnboundedNanos
                             ? Format("\r[%5.1fs, until Ctrl-C] ", t)
                             : Format("\r[%5.1fs/%.1fs] ", t, static_cast<double>(run_ns) / 1e9);
      if (!o.closed) {
        int64_t from = next_progress - plan.start_ns - 1'000'000'000;
        line += Format("target %.0f/s  ", count_at(from + 1'000'000'000) - count_at(from));
      }
      line += Format("achieved %.0f/s", achieved);
      if (auto latest = seconds.Latest()) {
        line += Format("  p50 %s  p99 %s", HumanNs(latest->second.p50).c_str(),
                       HumanNs(latest->second.p99).c_str());
      }
      line += Format("  errors %llu", static_cast<unsigned long long>(errors));
      if (!o.closed) line += Format("  dropped %llu", static_cast<unsigned long long>(dropped));
      line += "\033[K";
      std::fputs(line.c_str(), stderr);
      std::fflush(stderr);
      next_progress += 1'000'000'000;
    }
  }
  for (auto& t : threads) t.join();
  seconds.FinalizeAll();
  if (tty) std::fprintf(stderr, "\r\033[K");

  Summary s;
  s.closed = o.closed;
  s.target_rate = o.closed ? 0 : count_at(run_ns) / (static_cast<double>(run_ns) / 1e9);
  s.profile = profile_text;
  int64_t last_send = 0;
  for (auto& w : workers) {
    s.stats.Merge(w->stats());
    last_send = std::max(last_send, w->last_send_ns());
  }
  int64_t elapsed = run_ns;
  if (!o.closed && last_send > plan.start_ns + run_ns) elapsed = last_send - plan.start_ns;
  s.elapsed_s = static_cast<double>(elapsed) / 1e9;
  s.achieved_rate = static_cast<double>(s.stats.sent) / s.elapsed_s;
  {
    size_t n = static_cast<size_t>((run_ns + 999'999'999) / 1'000'000'000);
    n = std::min(std::max(n, s.stats.sent_per_second.size()), kMaxSeconds);
    for (size_t i = 0; i < n; ++i) {
      Summary::Second sec;
      if (i < s.stats.sent_per_second.size()) sec.achieved = s.stats.sent_per_second[i];
      if (!o.closed) {
        int64_t from = static_cast<int64_t>(i) * 1'000'000'000;
        int64_t to = std::min(from + 1'000'000'000, run_ns);
        if (from < run_ns) sec.target = count_at(to) - count_at(from);
      }
      Seconds::Done d = seconds.Get(i);
      sec.completed = d.completed;
      sec.errors = d.errors;
      sec.p50_ns = d.p50;
      sec.p99_ns = d.p99;
      s.per_second.push_back(sec);
    }
  }
  if (!o.quiet) {
    std::string out = o.json ? FormatJson(s, thresholds) : FormatText(s, thresholds);
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  if (!o.html.empty()) {
    std::string page = FormatHtml(s, thresholds);
    FILE* f = std::fopen(o.html.c_str(), "wb");
    if (!f || std::fwrite(page.data(), 1, page.size(), f) != page.size() || std::fclose(f) != 0) {
      std::fprintf(stderr, "%s: cannot write %s: %s\n", who, o.html.c_str(), std::strerror(errno));
      return 2;
    }
  }
  if (capture && capture->truncated_bodies)
    std::fprintf(stderr, "%s: %llu captured bodies were cut at record.max_body_bytes\n", who,
                 static_cast<unsigned long long>(capture->truncated_bodies));
  bool failed = false;
  if (summary_out != nullptr) *summary_out = s;
  for (const auto& t : thresholds) {
    if (!Evaluate(t, s).second) {
      failed = true;
      std::fprintf(stderr, "%s: threshold failed: %s\n", who, t.text.c_str());
    }
  }
  return failed ? 3 : 0;
}

}  // namespace ficus::load
