// The worker event loop: epoll (edge-triggered), posted work, ticks, timers, busy polling.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "net/internal/errors.h"
#include "net/net.h"

namespace ficus::net {

using internal::LastError;
using internal::SystemError;

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
  bool wake;
  {
    std::lock_guard lock(posted_mu_);
    // Only the post that makes the list non-empty writes the eventfd: a later one finds that
    // write still ahead of RunPosted's swap (RunPosted reads the eventfd before it swaps), so
    // the swap takes it too. A writer thread that completes a batch of a hundred waiters on
    // one worker then costs that worker one wake-up, not a hundred syscalls and wake-ups.
    wake = posted_.empty();
    posted_.push_back(std::move(fn));
  }
  if (wake) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof one);
  }
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

}  // namespace ficus::net
