// ficus::net — a worker's event loop and its sockets: one epoll instance per worker thread,
// edge-triggered, driven by C++20 coroutines (net/task.h).
//
// Why not Boost.Asio here (it still runs the admin listener and signal handling): measured on
// this machine, Asio 1.81 issues a speculative recv() before every wait that fails with EAGAIN
// (it marks a socket "maybe more" after any successful read), or, with async_wait, an
// epoll_ctl(MOD) per wait; either is a syscall per wait, ~1-2.7 µs here. This loop keeps each
// socket's edge-triggered readiness itself: a read is tried only when the socket is known
// readable (an event arrived and no short read followed), writes go out inline with writev(),
// and a wait is just a stored coroutine handle. docs/architecture.md has the figures.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "base/base.h"
#include "net/task.h"

struct epoll_event;  // <sys/epoll.h>

namespace ficus::net {

using ErrorCode = std::error_code;
// The error a wait completes with when its socket is cancelled (timeout, drain, abort).
inline ErrorCode Aborted() { return std::make_error_code(std::errc::operation_canceled); }

// An IPv4 or IPv6 socket address.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  uint16_t port() const;
  std::string ToString() const;  // "1.2.3.4:80" / "[::1]:80"
  bool operator==(const Address& o) const;
};
// Parses an IP literal and port. Throws std::runtime_error on anything else (startup only).
Address MakeAddress(const std::string& ip, uint16_t port);

class Loop;

namespace internal {
// Per-descriptor state, owned by its Socket and freed by the loop only after the epoll batch
// that might still name it (an event can arrive for a socket closed earlier in the batch).
struct IoState {
  int fd = -1;
  Loop* loop = nullptr;
  bool readable = false;  // an input event arrived and no read came up short since
  bool hangup = false;    // the peer closed (or the socket failed): reads never block again
  bool writable = true;   // no write has hit EAGAIN since the last output event
  bool dead = false;      // closed: stale events are ignored
  bool read_cancelled = false;
  bool write_cancelled = false;
  // Bytes the last PeekSome saw and left queued when they were all there was; that peek cleared
  // `readable`, so Consume() knows whether dropping fewer must set it again.
  size_t short_peek_bytes = 0;
  std::coroutine_handle<> read_waiter;
  std::coroutine_handle<> write_waiter;
};
}  // namespace internal

class Wakeup;

// One event loop: owned by one thread, which calls Run(). Only Post() and Stop() may be
// called from other threads.
class Loop {
 public:
  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Runs until Stop(). `tick` (if set) runs every `tick_every` on this thread.
  void Run();
  void Stop();
  void Post(std::function<void()> fn);
  void SetTick(std::chrono::milliseconds every, std::function<void()> tick);
  // The coarse monotonic clock (ms, CoarseMonotonicMillis) as of this loop's last wake-up: what
  // per-request deadlines compare against, without a clock read each (this thread only).
  int64_t NowMs() const { return now_ms_; }
  // Before blocking in epoll_wait, poll for up to `budget` (0, the default, blocks at once). A
  // thread that sleeps after every short burst makes its peers pay a wake-up each time; a load
  // generator trades this thread's idle time for not doing that. Not for the proxy's workers,
  // whose CPU is the product.
  //
  // The window adapts, as the kernel's haltpoll governor does: a poll that finds events doubles
  // it (up to `budget`), one that runs out halves it, down to none. A thread sharing its CPU
  // with the peer it waits for (a generator on the server's machine) only delays that peer by
  // polling, never finds anything, and so soon stops; a probe every kBusyPollProbeEvery waits
  // notices when polling pays again.
  void SetBusyPoll(std::chrono::microseconds budget);
  // The current polling window (for tests and diagnostics).
  std::chrono::nanoseconds busy_poll_window() const {
    return std::chrono::nanoseconds(busy_poll_ns_);
  }
  static constexpr int64_t kBusyPollMinNanos = 10'000;
  static constexpr int kBusyPollProbeEvery = 64;
  // Suspends the calling coroutine for about `d` (resolution: the tick, at most 100 ms).
  Task<void> Sleep(std::chrono::milliseconds d);
  // Wakeup::SignalAt's timers (this thread only).
  void AddTimer(Wakeup* w, int64_t at_ms) { timers_.push_back({at_ms, w}); }
  void RemoveTimer(Wakeup* w);

  // --- for sockets (this thread only) ---
  internal::IoState* Register(int fd);    // takes ownership of fd; throws std::system_error
  void Unregister(internal::IoState* s);  // closes fd, frees the state after this batch
  int Forget(internal::IoState* s);       // as Unregister, but returns fd open (not closed)
  void Ready(std::coroutine_handle<> h) { ready_.push_back(h); }

 private:
  void RunPosted();
  void RunReady();
  int BusyPoll(::epoll_event* events, int max_events);  // events found while polling, or 0
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int64_t now_ms_ = 0;
  int64_t busy_poll_max_ns_ = 0;  // SetBusyPoll's budget; 0: never poll
  int64_t busy_poll_ns_ = 0;      // the adapted window
  int waits_since_probe_ = 0;
  // eventfd: Post() and Stop() from other threads
  internal::IoState wake_state_;
  std::atomic<bool> stop_{false};
  std::mutex posted_mu_;  // guards posted_
  std::vector<std::function<void()>> posted_;
  std::vector<std::coroutine_handle<>> ready_;
  std::vector<std::coroutine_handle<>> running_;  // RunReady's batch; kept to reuse its capacity
  std::vector<std::unique_ptr<internal::IoState>> graveyard_;
  struct Sleeper {
    int64_t wake_at_ms;
    std::coroutine_handle<> h;
  };
  std::vector<Sleeper> sleepers_;
  struct Timer {
    int64_t at_ms;
    Wakeup* w;
  };
  std::vector<Timer> timers_;
  void FireTimers(int64_t now);
  std::chrono::milliseconds tick_every_{100};
  std::function<void()> tick_;
  int64_t next_tick_ms_ = 0;
};

struct ReadResult {
  size_t bytes = 0;  // 0 with no error: orderly EOF
  ErrorCode ec;      // Aborted() when cancelled
};

// A non-blocking TCP socket registered with a Loop. Movable; closing (or destroying) it wakes
// any coroutine waiting on it with Aborted().
class Socket {
 public:
  Socket() = default;
  Socket(Loop& loop, int fd);  // adopts a non-blocking fd
  Socket(Socket&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Socket& operator=(Socket&& o) noexcept;
  ~Socket() { Close(); }

  bool is_open() const { return state_ != nullptr; }
  int fd() const { return state_ ? state_->fd : -1; }

  // Reads what is available (at least one byte), waiting if nothing is.
  Task<ReadResult> ReadSome(std::span<char> into);
  // Copies what is queued into `into` without taking it (MSG_PEEK), once more than `seen` bytes
  // are, waiting otherwise: a reader that wants a whole message in one go looks at the part that
  // came and waits for the rest, instead of taking the bytes piecemeal. 0 bytes: the peer closed
  // with no more than `seen` queued. The bytes stay until Consume().
  Task<ReadResult> PeekSome(std::span<char> into, size_t seen = 0);
  // Drops the first `n` queued bytes, without copying or waiting (after PeekSome showed them).
  // Returns how many were dropped: fewer only if the connection failed.
  size_t Consume(size_t n);
  // Writes all of iov (modified in place), inline while the kernel takes it.
  // REQUIRES: count <= IOV_MAX.
  Task<ErrorCode> WriteAll(iovec* iov, int count);
  Task<ErrorCode> WriteAll(std::string_view bytes);
  // Waits until the socket is readable without reading (an idle connection holding no buffer).
  Task<ErrorCode> WaitReadable();
  // True when nothing is queued to read and the peer has not closed: a pooled connection that
  // may carry the next request. Free when the loop knows the socket is quiet (no input event
  // since the last read came up short); otherwise one non-blocking peek decides.
  bool IsQuiet();
  // An input event (bytes or EOF) arrived since the last read came up short. No syscall.
  bool InputPending() const { return state_ != nullptr && (state_->readable || state_->hangup); }
  // Connects a new socket to `to` (this Socket must be closed).
  Task<ErrorCode> Connect(Loop& loop, const Address& to);
  // Accepts a connection (this Socket must be a listener): the new fd, non-blocking.
  Task<Result<int>> Accept();

  // Wakes the coroutines waiting on this socket with Aborted(). Waits started later are not
  // affected (as Asio's cancel()).
  void Cancel();
  void ShutdownWrite();
  void Close();
  // Takes the descriptor out of this loop, open, for another loop to adopt (Socket(loop, fd)):
  // a pooled connection moving to the worker whose client waits for it. -1 when closed.
  // REQUIRES: no coroutine waits on it.
  int Release();
  // The peer's IP (no port) into out; returns its length (0 on failure).
  size_t PeerAddress(char* out, size_t size) const;

 private:
  struct Waiter;
  internal::IoState* state_ = nullptr;
};

// Opens a listening socket with SO_REUSEADDR and SO_REUSEPORT (one per worker; the kernel
// spreads connections over them). Throws std::system_error "listen ADDR: reason".
Socket Listen(Loop& loop, const Address& at, int backlog = 4096);
// Sets TCP_NODELAY on an accepted or connected socket.
void SetNoDelay(int fd);

// Coarse per-worker timeouts. Each connection is an Entry with a deadline in coarse
// milliseconds; the worker's tick (every ~100 ms) fires the expired ones. Setting a deadline
// is a store, not a timer operation: no syscall and no heap work per request.
// Single-threaded: owned by one worker, used only on its thread.
class TimeoutList {
 public:
  class Entry {
   public:
    virtual ~Entry() = default;
    // Called once when the deadline passes; the deadline is reset to "none" first.
    virtual void OnTimeout() = 0;
    void SetDeadline(int64_t at_ms) { deadline_ms_ = at_ms; }
    void ClearDeadline() { deadline_ms_ = kNone; }
    int64_t deadline_ms() const { return deadline_ms_; }

   private:
    friend class TimeoutList;
    static constexpr int64_t kNone = INT64_MAX;
    int64_t deadline_ms_ = kNone;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
  };

  void Add(Entry* e);
  void Remove(Entry* e);
  void Sweep(int64_t now_ms);
  size_t size() const { return size_; }
  // Calls f(Entry*) for each entry; f must not add or remove entries.
  template <class F>
  void ForEach(F&& f) {
    for (Entry* e = head_; e != nullptr;) {
      Entry* next = e->next_;
      f(e);
      e = next;
    }
  }

 private:
  Entry* head_ = nullptr;
  size_t size_ = 0;
};

// A one-shot wake-up another thread may give: a coroutine on `loop` awaits it, and Signal (from
// any thread, once) resumes it on that loop. For waits whose end comes from elsewhere: a durable
// write a writer thread completes, a slot another worker frees, a fetch another worker makes.
// A Signal before the await makes the await return at once. The Wakeup must outlive the await;
// Signal does not touch it after posting the resume, so the waiter may destroy it when it wakes.
class Wakeup {
 public:
  explicit Wakeup(Loop& loop) : loop_(&loop) {}
  ~Wakeup() {
    if (timer_armed_) loop_->RemoveTimer(this);
  }
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;

  // co_await wakeup: suspends until Signal (at once if it came already). An awaiter object of
  // its own, so that awaiting never copies the Wakeup.
  struct Awaiter {
    Wakeup* w;
    bool await_ready() const noexcept { return w->signaled(); }
    bool await_suspend(std::coroutine_handle<> h) noexcept {
      w->waiter_ = h;
      int expected = kIdle;
      // False: the signal came in between, resume at once.
      return w->state_.compare_exchange_strong(expected, kWaiting, std::memory_order_acq_rel);
    }
    void await_resume() const noexcept {}
  };
  Awaiter operator co_await() noexcept { return Awaiter{this}; }

  // Any thread, at most once per Wakeup.
  void Signal() {
    Loop* loop = loop_;  // `this` may be gone once the exchange lets an early waiter go on
    std::coroutine_handle<> h;
    if (state_.exchange(kSignaled, std::memory_order_acq_rel) == kWaiting) {
      h = waiter_;  // suspended, and stays so until the posted resume: safe to read
      loop->Post([loop, h] { loop->Ready(h); });
    }
  }
  bool signaled() const { return state_.load(std::memory_order_acquire) == kSignaled; }

  // A timed wait: the loop signals this Wakeup itself at `at_ms` (its NowMs clock, checked on
  // each wake-up, at least every second) unless Signal came first; timed_out() then says the
  // deadline did. Only on the loop's thread, before the await; the Wakeup must then be destroyed
  // on that thread (it disarms the timer). A Signal racing the deadline from another thread is
  // safe: whichever comes first resumes the waiter, the other does nothing.
  void SignalAt(int64_t at_ms) {
    timer_armed_ = true;
    loop_->AddTimer(this, at_ms);
  }
  bool timed_out() const { return timed_out_; }

 private:
  friend class Loop;
  // The deadline came (the loop's thread, the timer already removed).
  void Expire() {
    timer_armed_ = false;
    const int prev = state_.exchange(kSignaled, std::memory_order_acq_rel);
    if (prev == kSignaled) return;
    timed_out_ = true;
    if (prev == kWaiting) loop_->Ready(waiter_);
  }
  static constexpr int kIdle = 0, kWaiting = 1, kSignaled = 2;
  Loop* loop_;
  std::coroutine_handle<> waiter_;
  std::atomic<int> state_{kIdle};
  bool timer_armed_ = false;  // loop thread only
  bool timed_out_ = false;
};

}  // namespace ficus::net
