// Helpers shared by the ficus::http unit tests: one-shot and trickled parsing, and printing of
// results so that a failing expectation names the parser's reason.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "http/http.h"

namespace ficus::http::testing {

// The outcome of a parse, comparable and printable: kind 0 with value 0 = need more bytes.
struct Outcome {
  bool ok = false;
  size_t value = 0;
  ErrorKind kind = ErrorKind::kInternal;
  Side side = Side::kInternal;
  std::string context;

  static Outcome Of(const Result<size_t>& r) {
    Outcome o;
    o.ok = r.has_value();
    if (o.ok) {
      o.value = *r;
    } else {
      o.kind = r.error().kind;
      o.side = r.error().side;
      o.context = r.error().context;
    }
    return o;
  }
  bool operator==(const Outcome& o) const {
    return ok == o.ok && value == o.value &&
           (ok || (kind == o.kind && side == o.side && context == o.context));
  }
};

inline std::ostream& operator<<(std::ostream& os, const Outcome& o) {
  if (o.ok) return os << "ok(" << o.value << ")";
  return os << "error(" << ErrorKindName(o.kind) << ", " << o.context << ")";
}

// Concatenation without operator+ (g++ 12 -O3 reports a bogus -Wrestrict in it, PR 105329).
template <class... Parts>
std::string Cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

inline std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace ficus::http::testing
