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

}  // namespace
}  // namespace ficus::net
