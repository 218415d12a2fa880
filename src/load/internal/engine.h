// The load engine's parts, shared by its files: one Worker per thread (its net::Loop, its
// connections, the open model's schedule or the closed model's loops), the per-second windows
// the workers hand in, and the timerfd the schedule waits on.
#pragma once

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "base/base.h"
#include "http/http.h"
#include "load/internal/capture.h"
#include "load/internal/scenario.h"
#include "load/load.h"
#include "net/net.h"

namespace ficus::load::internal {

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

// What every worker of one execution shares: the plan and what Execute resolved from it.
struct Execution {
  const Plan& plan;
  net::Address address;
  http::Method method = http::Method::kGet;
  uint64_t seed = 0;
  Seconds* seconds = nullptr;
  int64_t start_ns = 0;
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

// How one attempt of an exchange ended.
enum class AttemptEnd { kDone, kRetry, kFailed };

class Worker {
 public:
  Worker(const Execution& exec, int index, int max_conns, size_t backlog);

  // Runs the thread's share of the plan until it is over; on the calling thread.
  void Run();
  // Any thread: ends the run at `at_ns` (if earlier than planned) as if the duration were
  // over: nothing new is scheduled, in-flight requests finish or time out.
  void StopAt(int64_t at_ns);

  const Stats& stats() const { return stats_; }
  int64_t last_send_ns() const { return last_send_ns_; }
  std::atomic<uint64_t> progress_sent{0}, progress_completed{0}, progress_errors{0},
      progress_dropped{0};

 private:
  // What ReadWhole took from the socket into the connection's buffer.
  struct WholeRead {
    size_t bytes = 0;      // in the buffer, taken from the socket
    size_t head_size = 0;  // > 0: a whole final response, its head parsed (else: parse `bytes`)
    bool failed = false;   // the peer closed or the connection failed first: `failure` says how
    bool saw_bytes = false;
    net::ReadResult failure;
  };

  uint64_t Global(uint64_t k) const {
    return k * static_cast<uint64_t>(plan_.threads) + static_cast<uint64_t>(index_);
  }
  int64_t Intended(uint64_t k) const;
  // The request to send for global request n, and its method.
  std::string_view RequestFor(Conn& c, uint64_t n, http::Method* method);
  // Moves the per-second window forward to the second holding `now`, handing in the ones
  // that are over.
  void Roll(int64_t now);

  // Open model (worker.cc).
  Task<void> Schedule();
  // Sends queued requests while connections are available; drops those that waited longer
  // than the timeout.
  void Dispatch(int64_t now);
  Conn* TakeConn();
  void RemoveConn(Conn* c);
  Task<void> OpenRequest(Conn* c, int64_t intended, uint64_t n);
  // Closed model.
  Task<void> ClosedLoop();
  void Tick();
  void MaybeFinish();

  // One exchange (exchange.cc). Returns whether the connection may carry another request.
  Task<bool> Exchange(Conn& c, int64_t intended, uint64_t n);
  void Fail(Conn& c, ErrorType type);
  Task<WholeRead> ReadWhole(Conn& c, http::Method method, http::ResponseHeadParser& parser,
                            http::ResponseHead& head);
  // Reads one response (skipping interim 1xx); records it.
  Task<AttemptEnd> ReadResponse(Conn& c, http::Method method, int64_t intended, int64_t sent_at,
                                bool reused, bool* keep);

  const Execution& exec_;
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
  std::optional<RequestBuilder> builder_;
  Histogram window_;  // responses completed in second window_second_
  size_t window_second_ = 0;
  uint64_t window_completed_ = 0, window_errors_ = 0;
};

}  // namespace ficus::load::internal
