#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace ficus::net {
namespace {

ErrorCode LastError() { return ErrorCode(errno, std::generic_category()); }

std::system_error SystemError(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

}  // namespace

// ---- addresses ----------------------------------------------------------------------------

uint16_t Address::port() const {
  if (storage.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
}

std::string Address::ToString() const {
  char ip[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(storage).sin_addr, ip, sizeof ip);
    return std::string(ip).append(":").append(std::to_string(port()));
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(storage).sin6_addr, ip, sizeof ip);
  return std::string("[").append(ip).append("]:").append(std::to_string(port()));
}

bool Address::operator==(const Address& o) const {
  return length == o.length && std::memcmp(&storage, &o.storage, length) == 0;
}

Address MakeAddress(const std::string& ip, uint16_t port) {
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    a.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    a.length = sizeof(sockaddr_in6);
  } else {
    throw std::runtime_error("not an IP address: '" + ip + "'");
  }
  return a;
}

// ---- the loop ------------------------------------------------------------------------------

Loop::Loop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw SystemError("epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw SystemError("eventfd");
  now_ms_ = CoarseMonotonicMillis();
  wake_state_.fd = wake_fd_;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &wake_state_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) throw SystemError("epoll_ctl");
}

Loop::~Loop() {
  close(wake_fd_);
  close(epoll_fd_);
}

void Loop::Stop() {
  stop_.store(true, std::memory_order_release);
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void Loop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
}

void Loop::SetTick(std::chrono::milliseconds every, std::function<void()> tick) {
  tick_every_ = every;
  tick_ = std::move(tick);
  next_tick_ms_ = CoarseMonotonicMillis() + every.count();
}

void Loop::RunPosted() {
  uint64_t n;
  [[maybe_unused]] ssize_t r = read(wake_fd_, &n, sizeof n);
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lock(posted_mu_);
    fns.swap(posted_);
  }
  for (auto& fn : fns) fn();
}

void Loop::RunReady() {
  // Resuming may make more coroutines ready; run until none is.
  // The two vectors trade places, so after warm-up neither allocates.
  while (!ready_.empty()) {
    running_.swap(ready_);
    for (auto h : running_) h.resume();
    running_.clear();
  }
}

void Loop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  // One coarse clock read per wake-up (now_ms_): the batch's work takes microseconds, and
  // deadlines are checked on a 100 ms sweep.
  while (!stop_.load(std::memory_order_acquire)) {
    int timeout = -1;
    if (!ready_.empty()) {
      timeout = 0;
    } else if (tick_ || !sleepers_.empty() || !timers_.empty()) {
      int64_t next = tick_ ? next_tick_ms_ : INT64_MAX;
      for (const auto& s : sleepers_) next = std::min(next, s.wake_at_ms);
      for (const auto& t : timers_) next = std::min(next, t.at_ms);
      timeout = static_cast<int>(std::clamp<int64_t>(next - now_ms_, 0, 1000));
    }
    int n = 0;
    if (timeout != 0 && busy_poll_max_ns_ > 0) n = BusyPoll(events, kMaxEvents);
    if (n == 0) n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout);
    if (n < 0 && errno != EINTR) throw SystemError("epoll_wait");
    now_ms_ = CoarseMonotonicMillis();
    for (int i = 0; i < n; ++i) {
      auto* s = static_cast<internal::IoState*>(events[i].data.ptr);
      if (s == &wake_state_) {
        RunPosted();
        continue;
      }
      if (s->dead) continue;  // closed earlier in this batch
      const uint32_t e = events[i].events;
      std::coroutine_handle<> reader, writer;
      if (e & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        s->readable = true;
        if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) s->hangup = true;
        reader = std::exchange(s->read_waiter, nullptr);
      }
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        s->writable = true;
        writer = std::exchange(s->write_waiter, nullptr);
      }
      // Resume inline (the cheapest path); a resumed coroutine may close `s`, whose state then
      // stays in the graveyard until the batch is over.
      if (reader) reader.resume();
      if (writer) writer.resume();
    }
    RunReady();
    graveyard_.clear();
    const int64_t now = now_ms_;
    if (tick_ && now >= next_tick_ms_) {
      next_tick_ms_ = now + tick_every_.count();
      tick_();
      now_ms_ = CoarseMonotonicMillis();
    }
    if (!sleepers_.empty()) {
      auto due = std::partition(sleepers_.begin(), sleepers_.end(),
                                [&](const Sleeper& s) { return s.wake_at_ms > now; });
      std::vector<Sleeper> wake(due, sleepers_.end());
      sleepers_.erase(due, sleepers_.end());
      for (auto& s : wake) ready_.push_back(s.h);
    }
    if (!timers_.empty()) FireTimers(now);
    RunReady();
    graveyard_.clear();
  }
}

void Loop::RemoveTimer(Wakeup* w) {
  for (size_t i = 0; i < timers_.size(); ++i) {
    if (timers_[i].w == w) {
      timers_[i] = timers_.back();
      timers_.pop_back();
      return;
    }
  }
}

void Loop::FireTimers(int64_t now) {
  for (size_t i = 0; i < timers_.size();) {
    if (timers_[i].at_ms > now) {
      ++i;
      continue;
    }
    Wakeup* w = timers_[i].w;
    timers_[i] = timers_.back();
    timers_.pop_back();
    w->Expire();
  }
}

void Loop::SetBusyPoll(std::chrono::microseconds budget) {
  busy_poll_max_ns_ = std::max<int64_t>(0, budget.count() * 1000);
  busy_poll_ns_ = busy_poll_max_ns_;
  waits_since_probe_ = 0;
}

int Loop::BusyPoll(epoll_event* events, int max_events) {
  if (busy_poll_ns_ == 0) {
    if (++waits_since_probe_ < kBusyPollProbeEvery) return 0;
    waits_since_probe_ = 0;
    busy_poll_ns_ = std::min(kBusyPollMinNanos, busy_poll_max_ns_);
  }
  int n = 0;
  const int64_t until = MonotonicNanos() + busy_poll_ns_;
  do {
    n = epoll_wait(epoll_fd_, events, max_events, 0);
  } while (n == 0 && MonotonicNanos() < until && !stop_.load(std::memory_order_relaxed));
  if (n > 0) {
    busy_poll_ns_ = std::min(busy_poll_ns_ * 2, busy_poll_max_ns_);
  } else {
    busy_poll_ns_ /= 2;
    if (busy_poll_ns_ < kBusyPollMinNanos) busy_poll_ns_ = 0;
  }
  return n;
}

Task<void> Loop::Sleep(std::chrono::milliseconds d) {
  struct Awaiter {
    Loop* loop;
    int64_t at;
    bool await_ready() { return false; }
    void await_suspend(std::coroutine_handle<> h) { loop->sleepers_.push_back({at, h}); }
    void await_resume() {}
  };
  co_await Awaiter{this, CoarseMonotonicMillis() + d.count()};
}

internal::IoState* Loop::Register(int fd) {
  auto s = std::make_unique<internal::IoState>();
  s->fd = fd;
  s->loop = this;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = s.get();
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    auto err = SystemError("epoll_ctl");
    close(fd);
    throw err;
  }
  return s.release();
}

void Loop::Unregister(internal::IoState* s) {
  s->dead = true;
  close(s->fd);  // also removes it from the epoll set
  s->fd = -1;
  graveyard_.emplace_back(s);
}

int Loop::Forget(internal::IoState* s) {
  const int fd = s->fd;
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  s->dead = true;
  s->fd = -1;
  graveyard_.emplace_back(s);
  return fd;
}

// ---- sockets --------------------------------------------------------------------------------

// Suspends until the socket's read (or write) readiness changes or it is cancelled.
struct Socket::Waiter {
  internal::IoState* s;
  bool write;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    (write ? s->write_waiter : s->read_waiter) = h;
  }
  // True when the wait was cancelled.
  bool await_resume() noexcept {
    bool& cancelled = write ? s->write_cancelled : s->read_cancelled;
    return std::exchange(cancelled, false);
  }
};

Socket::Socket(Loop& loop, int fd) : state_(loop.Register(fd)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    Close();
    state_ = std::exchange(o.state_, nullptr);
  }
  return *this;
}

void Socket::Cancel() {
  if (!state_) return;
  if (state_->read_waiter) {
    state_->read_cancelled = true;
    state_->loop->Ready(std::exchange(state_->read_waiter, nullptr));
  }
  if (state_->write_waiter) {
    state_->write_cancelled = true;
    state_->loop->Ready(std::exchange(state_->write_waiter, nullptr));
  }
}

void Socket::Close() {
  if (!state_) return;
  // REQUIRES (by design): no coroutine is suspended on this socket — the owner closes it
  // after its own waits returned; Cancel() first otherwise.
  FICUS_DCHECK(!state_->read_waiter && !state_->write_waiter);
  state_->loop->Unregister(state_);
  state_ = nullptr;
}

int Socket::Release() {
  if (!state_) return -1;
  FICUS_DCHECK(!state_->read_waiter && !state_->write_waiter);
  const int fd = state_->loop->Forget(state_);
  state_ = nullptr;
  return fd;
}

void Socket::ShutdownWrite() {
  if (state_) ::shutdown(state_->fd, SHUT_WR);
}

Task<ReadResult> Socket::ReadSome(std::span<char> into) {
  internal::IoState* s = state_;
  if (!s) co_return ReadResult{0, Aborted()};
  for (;;) {
    if (s->readable) {
      ssize_t n = ::recv(s->fd, into.data(), into.size(), 0);
      if (n > 0) {
        // A short read drained the socket: the next read waits for an event instead of
        // trying (and failing) first. Data arriving after this recv raises a new edge; an
        // end of stream that came with the data does not, hence the hangup exception.
        if (static_cast<size_t>(n) < into.size() && !s->hangup) s->readable = false;
        co_return ReadResult{static_cast<size_t>(n), {}};
      }
      if (n == 0) co_return ReadResult{0, {}};
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return ReadResult{0, LastError()};
      s->readable = false;
    }
    if (co_await Waiter{s, false}) co_return ReadResult{0, Aborted()};
  }
}

Task<ReadResult> Socket::PeekSome(std::span<char> into, size_t seen) {
  internal::IoState* s = state_;
  if (!s) co_return ReadResult{0, Aborted()};
  for (;;) {
    if (s->readable) {
      ssize_t n = ::recv(s->fd, into.data(), into.size(), MSG_PEEK);
      if (n > 0 && (static_cast<size_t>(n) > seen || seen >= into.size())) {
        // A peek that came up short saw all that was queued: as after a short read, what
        // arrives later raises a new edge, so the next peek waits for it (the peeked bytes are
        // still queued; Consume() sets the flag again if it leaves some of them there).
        const bool saw_all = static_cast<size_t>(n) < into.size() && !s->hangup;
        s->short_peek_bytes = saw_all ? static_cast<size_t>(n) : 0;
        if (saw_all) s->readable = false;
        co_return ReadResult{static_cast<size_t>(n), {}};
      }
      if (n > 0) {
        // Nothing beyond what the caller has seen (an edge for bytes an earlier peek showed).
        if (s->hangup) co_return ReadResult{0, {}};
        s->readable = false;
      } else if (n == 0) {
        co_return ReadResult{0, {}};
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN) {
        co_return ReadResult{0, LastError()};
      } else {
        s->readable = false;
      }
    }
    if (co_await Waiter{s, false}) co_return ReadResult{0, Aborted()};
  }
}

size_t Socket::Consume(size_t n) {
  internal::IoState* s = state_;
  if (!s || n == 0) return 0;
  ssize_t got;
  do {
    got = ::recv(s->fd, nullptr, n, MSG_TRUNC | MSG_DONTWAIT);  // TCP: drops, copies nothing
  } while (got < 0 && errno == EINTR);
  const size_t dropped = got > 0 ? static_cast<size_t>(got) : 0;
  // Bytes the short peek saw are still queued (or the drop failed): let the next read find out.
  if (dropped < s->short_peek_bytes) s->readable = true;
  s->short_peek_bytes = 0;
  return dropped;
}

Task<ErrorCode> Socket::WaitReadable() {
  internal::IoState* s = state_;
  if (!s) co_return Aborted();
  if (s->readable) co_return ErrorCode{};
  if (co_await Waiter{s, false}) co_return Aborted();
  co_return ErrorCode{};
}

bool Socket::IsQuiet() {
  internal::IoState* s = state_;
  if (!s || s->hangup) return false;
  if (!s->readable) return true;
  char c;
  ssize_t n;
  do {
    n = ::recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    s->readable = false;  // the event was for bytes a read already took
    return true;
  }
  return false;  // bytes, EOF or an error
}

Task<ErrorCode> Socket::WriteAll(iovec* iov, int count) {
  internal::IoState* s = state_;
  if (!s) co_return Aborted();
  while (count > 0) {
    if (!s->writable) {
      if (co_await Waiter{s, true}) co_return Aborted();
      continue;
    }
    ssize_t n = ::writev(s->fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return LastError();
      s->writable = false;
      continue;
    }
    size_t written = static_cast<size_t>(n);
    while (count > 0 && written >= iov->iov_len) {
      written -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + written;
      iov->iov_len -= written;
    }
  }
  co_return ErrorCode{};
}

Task<ErrorCode> Socket::WriteAll(std::string_view bytes) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  co_return co_await WriteAll(&iov, 1);
}

Task<ErrorCode> Socket::Connect(Loop& loop, const Address& to) {
  Close();
  int fd = ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return LastError();
  SetNoDelay(fd);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length);
  if (rc != 0 && errno != EINPROGRESS) {
    ErrorCode ec = LastError();
    ::close(fd);
    co_return ec;
  }
  state_ = loop.Register(fd);
  if (rc != 0) {
    state_->writable = false;
    while (!state_->writable) {
      if (co_await Waiter{state_, true}) co_return Aborted();
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) co_return ErrorCode(err, std::generic_category());
  }
  co_return ErrorCode{};
}

Task<Result<int>> Socket::Accept() {
  internal::IoState* s = state_;
  for (;;) {
    if (!s) co_return Fail(ErrorKind::kInternal, Side::kInternal, "listener closed");
    int fd = ::accept4(s->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) co_return fd;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) {
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the caller backs off.
      co_return Fail(ErrorKind::kOverloaded, Side::kInternal, "accept failed");
    }
    s->readable = false;
    if (co_await Waiter{s, false})
      co_return Fail(ErrorKind::kInternal, Side::kInternal, "cancelled");
    s = state_;
  }
}

size_t Socket::PeerAddress(char* out, size_t size) const {
  if (!state_) return 0;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getpeername(state_->fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  const char* p = nullptr;
  if (ss.ss_family == AF_INET) {
    p = ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, out, size);
  } else if (ss.ss_family == AF_INET6) {
    p = ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, out, size);
  }
  return p ? std::strlen(out) : 0;
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Socket Listen(Loop& loop, const Address& at, int backlog) {
  const std::string where = std::string("listen ").append(at.ToString());
  int fd = ::socket(at.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SystemError(where);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&at.storage), at.length) != 0 ||
      ::listen(fd, backlog) != 0) {
    auto err = SystemError(where);
    ::close(fd);
    throw err;
  }
  return Socket(loop, fd);
}

// ---- detached tasks and frame memory --------------------------------------------------------

namespace {

struct Detached {
  struct promise_type : internal::FrameAllocated {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

Detached RunDetached(Task<void> task, void (*on_exception)(std::exception_ptr)) {
  try {
    co_await task;
  } catch (...) {
    if (on_exception) on_exception(std::current_exception());
  }
}

// Coroutine frames recycled per thread by size class (64-byte steps up to 4 KiB): a request's
// frames are allocated from these lists in steady state, never from malloc. The lists are
// intrusive (a free frame holds the next pointer) and trivially destructible, so the hot path
// reaches them without a thread_local guard; a separate object frees them at thread exit.
constexpr size_t kFrameStep = 64;
constexpr size_t kFrameClasses = 64;
constexpr size_t kMaxCachedPerClass = 256;

struct FreeFrameNode {
  FreeFrameNode* next;
};
struct FrameLists {
  FreeFrameNode* head[kFrameClasses];
  uint32_t count[kFrameClasses];
};
thread_local constinit FrameLists t_frames{};

struct FrameListsReleaser {
  bool armed = false;
  ~FrameListsReleaser() {
    for (size_t c = 0; c < kFrameClasses; ++c) {
      while (FreeFrameNode* f = t_frames.head[c]) {
        t_frames.head[c] = f->next;
        ::operator delete(f);
      }
      t_frames.count[c] = 0;
    }
  }
};
thread_local FrameListsReleaser t_frames_releaser;
thread_local constinit bool t_frames_armed = false;  // t_frames_releaser constructed

// The first frame a thread allocates or caches constructs its releaser, so its lists are freed
// when it exits: a worker may only ever free frames that another thread allocated.
[[gnu::noinline]] void ArmFrameListsReleaser() {
  t_frames_armed = true;
  t_frames_releaser.armed = true;
}

}  // namespace

void Spawn(Task<void> task, void (*on_exception)(std::exception_ptr)) {
  RunDetached(std::move(task), on_exception);
}

namespace internal {

void* AllocateFrame(size_t size) {
  const size_t cls = (size + kFrameStep - 1) / kFrameStep;
  if (cls < kFrameClasses) {
    if (FreeFrameNode* f = t_frames.head[cls]) {
      t_frames.head[cls] = f->next;
      --t_frames.count[cls];
      return f;
    }
    if (!t_frames_armed) [[unlikely]]
      ArmFrameListsReleaser();
    return ::operator new(cls* kFrameStep);
  }
  return ::operator new(size);
}

void FreeFrame(void* p, size_t size) noexcept {
  const size_t cls = (size + kFrameStep - 1) / kFrameStep;
  if (cls < kFrameClasses && t_frames.count[cls] < kMaxCachedPerClass) {
    if (!t_frames_armed) [[unlikely]]
      ArmFrameListsReleaser();
    auto* f = static_cast<FreeFrameNode*>(p);
    f->next = t_frames.head[cls];
    t_frames.head[cls] = f;
    ++t_frames.count[cls];
    return;
  }
  ::operator delete(p);
}

}  // namespace internal

// ---- timeouts -------------------------------------------------------------------------------

void TimeoutList::Add(Entry* e) {
  e->prev_ = nullptr;
  e->next_ = head_;
  if (head_) head_->prev_ = e;
  head_ = e;
  ++size_;
}

void TimeoutList::Remove(Entry* e) {
  if (e->prev_)
    e->prev_->next_ = e->next_;
  else
    head_ = e->next_;
  if (e->next_) e->next_->prev_ = e->prev_;
  e->prev_ = e->next_ = nullptr;
  --size_;
}

void TimeoutList::Sweep(int64_t now_ms) {
  for (Entry* e = head_; e != nullptr;) {
    Entry* next = e->next_;  // OnTimeout only cancels waits; it never unlinks synchronously
    if (e->deadline_ms_ <= now_ms) {
      e->deadline_ms_ = Entry::kNone;
      e->OnTimeout();
    }
    e = next;
  }
}

}  // namespace ficus::net
