// ficus::base — the vocabulary every module shares: Error, Result<T>, check macros, clock.
// Hot-path errors are values (Result), never exceptions. See docs/architecture.md, "The request
// path".
#pragma once

#include <cstdint>
#include <cstdlib>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace ficus {

// What went wrong, independent of who notices it. The proxy's Fail phase is the one place
// that maps a kind to an HTTP status (StatusFor in proxy/internal/heads.h).
enum class ErrorKind : uint8_t {
  kBadRequest,        // malformed downstream request (400)
  kHeadTooLarge,      // request head over the byte or field-count limit (431)
  kBodyTooLarge,      // request body over the limit (413)
  kHeadTimeout,       // request head not complete in time (408)
  kNotImplemented,    // unsupported transfer coding (501)
  kBadVersion,        // not HTTP/1.x (505)
  kNoRoute,           // no route matched (404)
  kConnectFailed,     // could not connect to any endpoint (502)
  kUpstreamTimeout,   // upstream did not answer in time (504)
  kUpstreamReset,     // upstream closed or reset before a full response (502)
  kUpstreamProtocol,  // upstream sent a malformed response (502)
  // The upstream answered a status its cluster's retry policy retries, and a retry is reserved:
  // the try failed, the next one answers (502 if it ever reached the fail phase).
  kUpstreamRetryStatus,
  kDownstreamClosed,  // the client went away; nothing to answer
  kOverloaded,        // a limit refused the request (503)
  kInternal,          // a bug or resource failure (500)
  kConfig,            // configuration is invalid (startup / reload only)
};

// Which peer the error is attributed to, for metrics and logs.
enum class Side : uint8_t { kDownstream, kUpstream, kInternal };

// A small, copyable error. `context` must point to static storage (a string literal), so that
// creating an Error never allocates on the hot path.
struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  Side side = Side::kInternal;
  bool retryable = false;
  const char* context = "";
};

std::string_view ErrorKindName(ErrorKind kind);

// Wraps an error for returning through Result<T> (mirrors std::unexpected).
struct Unexpected {
  Error error;
};
inline Unexpected Fail(ErrorKind kind, Side side, const char* context, bool retryable = false) {
  return Unexpected{Error{kind, side, retryable, context}};
}

// Result<T>: a value or an Error. The subset of std::expected's interface that ficus uses;
// written out because clang 14 (our libFuzzer compiler) cannot compile libstdc++'s <expected>.
template <class T>
class [[nodiscard]] Result {
 public:
  using value_type = T;
  Result(const T& v) : ok_(true) { new (&value_) T(v); }
  Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Unexpected> && !std::is_same_v<std::decay_t<U>, Result>)
      Result(U&& v)
      : ok_(true) {
    new (&value_) T(std::forward<U>(v));
  }
  Result(Unexpected u) : ok_(false) { new (&error_) Error(u.error); }
  Result(const Result& o) : ok_(o.ok_) {
    if (ok_)
      new (&value_) T(o.value_);
    else
      new (&error_) Error(o.error_);
  }
  Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
    if (ok_)
      new (&value_) T(std::move(o.value_));
    else
      new (&error_) Error(o.error_);
  }
  Result& operator=(Result o) {
    this->~Result();
    new (this) Result(std::move(o));
    return *this;
  }
  ~Result() {
    if (ok_) value_.~T();
  }

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  T& value() & { return value_; }
  const T& value() const& { return value_; }
  T&& value() && { return std::move(value_); }
  T& operator*() & { return value_; }
  const T& operator*() const& { return value_; }
  T&& operator*() && { return std::move(value_); }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }
  const Error& error() const { return error_; }

 private:
  bool ok_;
  union {
    T value_;
    Error error_;
  };
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : ok_(false), error_(u.error) {}
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  bool ok_ = true;
  Error error_{};
};

using Status = Result<void>;

// Check levels (Envoy-style): FICUS_DCHECK is debug-only; FICUS_CHECK aborts always;
// FICUS_BUG counts and logs in release builds and aborts in debug builds.
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr);
void BugHit(const char* file, int line, const char* expr);
uint64_t BugCount();

#define FICUS_CHECK(cond) ((cond) ? (void)0 : ::ficus::CheckFailed(__FILE__, __LINE__, #cond))
#ifdef NDEBUG
#define FICUS_DCHECK(cond) ((void)0)
#define FICUS_BUG(cond) ((cond) ? (void)0 : ::ficus::BugHit(__FILE__, __LINE__, #cond))
#else
#define FICUS_DCHECK(cond) FICUS_CHECK(cond)
#define FICUS_BUG(cond) FICUS_CHECK(cond)
#endif

// Monotonic time in nanoseconds. CLOCK_MONOTONIC through the vDSO: no syscall.
int64_t MonotonicNanos();
// Coarse monotonic time in milliseconds (CLOCK_MONOTONIC_COARSE, ~1-4 ms resolution):
// cheap enough to stamp every connection with a deadline.
int64_t CoarseMonotonicMillis();
// Wall-clock time in microseconds since the Unix epoch.
int64_t WallMicros();
// Unix time minus monotonic time, in nanoseconds: a MonotonicNanos() stamp plus this offset is
// the Unix time of that stamp. Two clock reads: take it once per batch of records, not per record.
int64_t UnixMinusMonotonicNanos();

}  // namespace ficus
