// A worker's thread: its schedule (open model) or its connections' loops (closed model), the
// per-second windows it hands in, and the end of its run.
#include <chrono>

#include "load/internal/engine.h"

namespace ficus::load::internal {

Worker::Worker(const Execution& exec, int index, int max_conns, size_t backlog)
    : exec_(exec),
      plan_(exec.plan),
      index_(index),
      max_conns_(max_conns),
      backlog_(backlog),
      timer_(loop_) {
  if (plan_.scenario)
    builder_.emplace(*plan_.scenario, plan_.url.host_header,
                     exec.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(index),
                     plan_.extra_headers);
}

void Worker::Run() {
  loop_.SetTick(std::chrono::milliseconds(20), [this] { Tick(); });
  end_ns_ = exec_.start_ns + plan_.duration_ns;
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
  exec_.seconds->Publish(window_second_, window_, window_completed_, window_errors_);
}

void Worker::StopAt(int64_t at_ns) {
  loop_.Post([this, at_ns] {
    if (at_ns >= end_ns_) return;
    end_ns_ = at_ns;
    hard_stop_ns_ = end_ns_ + plan_.timeout_ns + 2'000'000'000;
    timer_.ArmAt(at_ns);  // wakes the schedule, which then sees the new end
  });
}

int64_t Worker::Intended(uint64_t k) const {
  if (plan_.capture) {
    int64_t t = plan_.capture->TimeOf(Global(k));
    return t == INT64_MAX ? INT64_MAX : exec_.start_ns + t;
  }
  return IntendedTime(exec_.start_ns, plan_.profile, plan_.threads, index_, k);
}

std::string_view Worker::RequestFor(Conn& c, uint64_t n, http::Method* method) {
  if (plan_.capture) {
    const internal::Capture::Request& r = plan_.capture->At(n);
    *method = r.method;
    return r.bytes;
  }
  if (builder_) {
    *method = builder_->Build(c.request).parsed_method;
    return c.request;
  }
  *method = exec_.method;
  return plan_.request;
}

void Worker::Roll(int64_t now) {
  if (now < exec_.start_ns) return;
  size_t second =
      std::min(static_cast<size_t>((now - exec_.start_ns) / 1'000'000'000), kMaxSeconds);
  while (window_second_ < second) {
    exec_.seconds->Publish(window_second_, window_, window_completed_, window_errors_);
    window_.Reset();
    window_completed_ = window_errors_ = 0;
    ++window_second_;
  }
}

// ---- open model ----
Task<void> Worker::Schedule() {
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

void Worker::Dispatch(int64_t now) {
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

Conn* Worker::TakeConn() {
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

void Worker::RemoveConn(Conn* c) {
  size_t i = c->index;
  if (i + 1 != conns_.size()) {
    std::swap(conns_[i], conns_.back());
    conns_[i]->index = i;
  }
  conns_.pop_back();
}

Task<void> Worker::OpenRequest(Conn* c, int64_t intended, uint64_t n) {
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
Task<void> Worker::ClosedLoop() {
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

// ---- time ----
void Worker::Tick() {
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

void Worker::MaybeFinish() {
  if (finished_ || tasks_ > 0) return;
  if (!plan_.closed && (!schedule_done_ || (!queue_.empty() && !stopping_))) return;
  finished_ = true;
  stats_.dropped += queue_.size();
  queue_.clear();
  loop_.Stop();
}

}  // namespace ficus::load::internal
