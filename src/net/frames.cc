// Detached tasks, and the per-thread recycling of coroutine frames.
#include <cstdlib>
#include <new>

#include "net/net.h"

namespace ficus::net {

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

}  // namespace ficus::net
