// ficus::Outcome — the control plane's result: applying or reloading a config, an admin call, a
// tool's validation of its options. The hot path's Error (base.h) carries a static context so
// that failing never allocates; here a failure must say exactly what failed (the field, the
// address and its errno text, the option and its value), so the message is owned.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace ficus {

// A failure's message, for returning through Outcome<T> (as Unexpected is for Result<T>).
struct Failure {
  std::string message;
};
inline Failure Failed(std::string message) { return Failure{std::move(message)}; }

// A value, or the message of why there is none.
template <class T = void>
class [[nodiscard]] Outcome {
 public:
  template <class U = T>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Failure> &&
           !std::is_same_v<std::decay_t<U>, Outcome>) Outcome(U&& value)
      : value_(std::forward<U>(value)) {}
  Outcome(Failure failure) : message_(std::move(failure.message)) {}

  bool ok() const { return value_.has_value(); }
  explicit operator bool() const { return ok(); }
  // REQUIRES: ok().
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  // Why it failed; empty when ok().
  const std::string& message() const { return message_; }

 private:
  std::optional<T> value_;
  std::string message_;
};

template <>
class [[nodiscard]] Outcome<void> {
 public:
  Outcome() = default;
  Outcome(Failure failure) : ok_(false), message_(std::move(failure.message)) {}

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return message_; }

 private:
  bool ok_ = true;
  std::string message_;
};

}  // namespace ficus
