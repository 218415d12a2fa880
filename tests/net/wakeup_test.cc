// net::Wakeup: a coroutine on one loop resumed by a signal from another thread, and a signal
// that comes before the await.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "net/net.h"

namespace ficus::net {
namespace {

TEST(WakeupTest, ASignalFromAnotherThreadResumesTheWaiterOnItsLoop) {
  Loop loop;
  std::thread::id resumed_on;
  std::atomic<bool> waiting{false};
  auto wakeup = std::make_unique<Wakeup>(loop);
  Spawn([](Loop& loop, std::unique_ptr<Wakeup>& w, std::atomic<bool>& waiting,
           std::thread::id& resumed_on) -> Task<void> {
    waiting = true;
    co_await *w;
    resumed_on = std::this_thread::get_id();
    w.reset();  // the waiter may destroy the Wakeup as soon as it wakes
    loop.Stop();
  }(loop, wakeup, waiting, resumed_on));
  std::thread other([&] {
    while (!waiting) std::this_thread::yield();
    wakeup->Signal();
  });
  loop.Run();
  other.join();
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
  EXPECT_EQ(wakeup, nullptr);
}

TEST(WakeupTest, ASignalBeforeTheAwaitDoesNotSuspend) {
  Loop loop;
  Wakeup w(loop);
  w.Signal();
  EXPECT_TRUE(w.signaled());
  bool passed = false;
  Spawn([](Wakeup& w, bool& passed) -> Task<void> {
    co_await w;
    passed = true;
  }(w, passed));
  EXPECT_TRUE(passed);  // ran to the end inside Spawn, without the loop
}

TEST(WakeupTest, ManyWaitersManySignallersEachResumeOnce) {
  Loop loop;
  constexpr int kWaiters = 200;
  std::vector<std::unique_ptr<Wakeup>> ws;
  for (int i = 0; i < kWaiters; ++i) ws.push_back(std::make_unique<Wakeup>(loop));
  int resumed = 0;
  for (int i = 0; i < kWaiters; ++i) {
    Spawn([](Wakeup& w, int& resumed, Loop& loop) -> Task<void> {
      co_await w;
      if (++resumed == kWaiters) loop.Stop();
    }(*ws[i], resumed, loop));
  }
  std::thread a([&] {
    for (int i = 0; i < kWaiters; i += 2) ws[i]->Signal();
  });
  std::thread b([&] {
    for (int i = 1; i < kWaiters; i += 2) ws[i]->Signal();
  });
  loop.Run();
  a.join();
  b.join();
  EXPECT_EQ(resumed, kWaiters);
}

TEST(WakeupTest, SignalAtResumesTheWaiterAtTheDeadline) {
  Loop loop;
  bool timed_out = false;
  int64_t waited_ms = -1;
  Spawn([](Loop& loop, bool& timed_out, int64_t& waited_ms) -> Task<void> {
    Wakeup w(loop);
    const int64_t start = CoarseMonotonicMillis();
    w.SignalAt(loop.NowMs() + 50);
    co_await w;
    waited_ms = CoarseMonotonicMillis() - start;
    timed_out = w.timed_out();
    loop.Stop();
  }(loop, timed_out, waited_ms));
  loop.Run();
  EXPECT_TRUE(timed_out);
  EXPECT_GE(waited_ms, 40);  // the coarse clock's resolution
}

TEST(WakeupTest, ASignalBeforeTheDeadlineDisarmsIt) {
  Loop loop;
  bool timed_out = true;
  std::atomic<bool> waiting{false};
  auto w = std::make_unique<Wakeup>(loop);
  Spawn([](Loop& loop, std::unique_ptr<Wakeup>& w, std::atomic<bool>& waiting,
           bool& timed_out) -> Task<void> {
    w->SignalAt(loop.NowMs() + 60'000);
    waiting = true;
    co_await *w;
    timed_out = w->timed_out();
    w.reset();  // disarms the timer: the loop must not touch it again
    co_await loop.Sleep(std::chrono::milliseconds(20));
    loop.Stop();
  }(loop, w, waiting, timed_out));
  std::thread other([&] {
    while (!waiting) std::this_thread::yield();
    w->Signal();
  });
  loop.Run();
  other.join();
  EXPECT_FALSE(timed_out);
}

}  // namespace
}  // namespace ficus::net
