// Shared by the head fuzzers: a check that aborts (so libFuzzer reports the input) in every
// build mode, and the outcome of one parse in a form that can be compared across calls.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/base.h"

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace ficus::fuzz {

// A parser's answer: a size, or an error kind and reason. Two parses of the same bytes must
// give equal outcomes however the bytes arrived.
struct Outcome {
  bool ok;
  size_t value;
  ErrorKind kind;
  std::string_view context;
  static Outcome Of(const Result<size_t>& r) {
    if (r.has_value()) return {true, *r, ErrorKind::kInternal, {}};
    return {false, 0, r.error().kind, r.error().context};
  }
  bool operator==(const Outcome& o) const {
    return ok == o.ok && value == o.value && (ok || (kind == o.kind && context == o.context));
  }
};

}  // namespace ficus::fuzz
