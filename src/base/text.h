// Text for the formats ficus writes: printf-style formatting and HTML text (the self-contained
// reports) and lower-case hex (ids, on the request path) here, JSON strings in base/json.h
// (included for the writers that use both). One place each, so every writer does it the same way.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/json.h"

namespace ficus {

// `s` as HTML text or attribute value: `<`, `>`, `&`, `"` and `'` become entities; control
// bytes other than tab, line feed and carriage return are dropped (they are not allowed in
// HTML text).
std::string HtmlEscape(std::string_view s);

namespace text_internal {
// "000102...ff": the two lower-case hex digits of every byte value.
inline constexpr auto kHexPairs = [] {
  std::array<char, 512> t{};
  constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 256; ++i) {
    t[2 * i] = kHex[i >> 4];
    t[2 * i + 1] = kHex[i & 15];
  }
  return t;
}();
}  // namespace text_internal

// `n` bytes as 2n lower-case hex digits at `out` (trace and span ids, request ids): one table
// load per byte, on paths that run for every request.
inline void WriteHexLower(const uint8_t* bytes, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i)
    std::memcpy(out + 2 * i, &text_internal::kHexPairs[2 * bytes[i]], 2);
}

// printf into a string of whatever length it takes (the compiler checks the arguments against
// the format). For reports, messages and findings; the request path writes its own bytes.
std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace ficus
