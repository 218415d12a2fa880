#include "net/task.h"

#include <gtest/gtest.h>

#include <coroutine>
#include <stdexcept>

namespace ficus::net {
namespace {

Task<int> Immediate(int v) { co_return v; }

Task<long> SumOfImmediates(int n) {
  long sum = 0;
  for (int i = 0; i < n; ++i) sum += co_await Immediate(i);
  co_return sum;
}

// A million awaits that each finish without suspending must not grow the stack (the ASan
// build once overflowed here when completion relied on tail calls).
TEST(TaskTest, SynchronousCompletionsDoNotGrowTheStack) {
  long result = -1;
  Spawn([](long& out) -> Task<void> { out = co_await SumOfImmediates(1'000'000); }(result));
  EXPECT_EQ(result, 499'999'500'000L);
}

// A task that suspends is resumed later, and its parent continues after it.
struct Gate {
  std::coroutine_handle<> waiter;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  void await_resume() noexcept {}
};

Task<int> WaitsAtGate(Gate& gate) {
  co_await gate;
  co_return 7;
}

TEST(TaskTest, SuspendedChildResumesItsParent) {
  Gate gate;
  int seen = 0;
  Spawn([](Gate& g, int& out) -> Task<void> { out = co_await WaitsAtGate(g) + 1; }(gate, seen));
  EXPECT_EQ(seen, 0);
  ASSERT_TRUE(gate.waiter);
  gate.waiter.resume();
  EXPECT_EQ(seen, 8);
}

TEST(TaskTest, ExceptionsReachTheAwaiterAndTheSpawnHandler) {
  static bool handled = false;
  Spawn(
      []() -> Task<void> {
        co_await []() -> Task<void> {
          throw std::runtime_error("boom");
          co_return;
        }();
      }(),
      [](std::exception_ptr) { handled = true; });
  EXPECT_TRUE(handled);
}

}  // namespace
}  // namespace ficus::net
