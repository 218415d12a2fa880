// Coroutines for the worker event loop: Task<T> (lazy; awaiting it runs it at once) and Spawn()
// for detached tasks.
//
// The stack never grows with the number of awaits, whatever the compiler does with tail calls
// (g++ 12 does not turn symmetric transfer into a tail call at -O1 with ASan, which overflowed
// the stack on a long run of reads that complete without waiting): the awaiting coroutine runs
// the child inline, and if the child finishes without suspending, the parent simply continues
// (await_suspend returns false). Only a child that suspended and is later resumed by the event
// loop hands control back to its parent, from the loop's shallow stack.
// Frames come from a per-thread recycling allocator: a request's coroutine frames cost no
// malloc in steady state. Part of net/'s interface, included by net/net.h.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <utility>

namespace ficus::net {

namespace internal {
void* AllocateFrame(size_t size);
void FreeFrame(void* p, size_t size) noexcept;

struct FrameAllocated {
  static void* operator new(size_t size) { return AllocateFrame(size); }
  static void operator delete(void* p, size_t size) noexcept { FreeFrame(p, size); }
};

struct PromiseBase : FrameAllocated {
  std::coroutine_handle<> continuation = std::noop_coroutine();
  std::exception_ptr exception;
  bool running_inline = false;  // inside the parent's await_suspend: the parent is not suspended

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      auto& p = h.promise();
      if (p.running_inline) return std::noop_coroutine();  // the parent carries on by itself
      return p.continuation;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { exception = std::current_exception(); }
};
// Runs `child` until it finishes or suspends. Returns whether the caller must stay suspended
// (true: the child will resume it when it finishes).
template <class P>
[[gnu::always_inline]] inline bool RunChild(std::coroutine_handle<P> child,
                                            std::coroutine_handle<> caller) noexcept {
  auto& p = child.promise();
  p.continuation = caller;
  p.running_inline = true;
  child.resume();
  p.running_inline = false;
  return !child.done();
}
}  // namespace internal

template <class T = void>
class [[nodiscard]] Task {
 public:
  struct promise_type : internal::PromiseBase {
    std::optional<T> value;
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    template <class U>
    void return_value(U&& v) {
      value.emplace(std::forward<U>(v));
    }
  };

  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  [[gnu::always_inline]] bool await_suspend(std::coroutine_handle<> caller) noexcept {
    return internal::RunChild(h_, caller);
  }
  T await_resume() {
    if (h_.promise().exception) std::rethrow_exception(h_.promise().exception);
    return std::move(*h_.promise().value);
  }

 private:
  template <class>
  friend class Task;
  friend void Spawn(Task<void> task, void (*on_exception)(std::exception_ptr));
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

template <>
class [[nodiscard]] Task<void> {
 public:
  struct promise_type : internal::PromiseBase {
    Task get_return_object() {
      return Task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    void return_void() {}
  };

  Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  Task(const Task&) = delete;
  ~Task() {
    if (h_) h_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  [[gnu::always_inline]] bool await_suspend(std::coroutine_handle<> caller) noexcept {
    return internal::RunChild(h_, caller);
  }
  void await_resume() {
    if (h_.promise().exception) std::rethrow_exception(h_.promise().exception);
  }

 private:
  friend void Spawn(Task<void> task, void (*on_exception)(std::exception_ptr));
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> h_;
};

// Starts `task` now, detached: it runs until its first suspension and finishes on its own; its
// frame is freed when it completes. An exception escaping it is passed to on_exception.
void Spawn(Task<void> task, void (*on_exception)(std::exception_ptr) = nullptr);

}  // namespace ficus::net
