// Small JSON writing helpers for the background writers (access log, OTLP export).
//
// The Write* forms put bytes at a cursor into memory the caller has sized with the Max*Bytes
// bounds and return the new cursor: a line of many fields is then written without a capacity
// check and a size update per piece (the access log sizes a line once, see FormatLine). The
// Append* forms wrap them for one value at the end of a std::string.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ficus::observe::internal {

// The most bytes WriteJsonString writes for an `n`-byte string: the quotes, and a 6-byte
// \u00XX escape for every byte.
constexpr size_t MaxJsonStringBytes(size_t n) { return 2 + 6 * n; }
// The most bytes WriteJsonUint writes (UINT64_MAX has 20 digits).
constexpr size_t kMaxJsonUintBytes = 20;

// `s` as a JSON string (quotes included). Bytes >= 0x80 are taken as Latin-1 (header values
// are octets, not necessarily UTF-8), so the output is always valid JSON and valid UTF-8.
inline char* WriteJsonString(char* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out++ = '"';
  // Copy runs of plain characters at once (an access-log line is mostly such runs; a push per
  // byte was ~2,500 instructions per logged request).
  static constexpr auto kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7F; ++c) t[c] = c != '"' && c != '\\';
    return t;
  }();
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlain[c]) continue;
    std::memcpy(out, s.data() + run, i - run);
    out += i - run;
    run = i + 1;
    *out++ = '\\';
    if (c == '"' || c == '\\') {
      *out++ = static_cast<char>(c);
    } else {
      const char esc[5] = {'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      std::memcpy(out, esc, sizeof esc);
      out += sizeof esc;
    }
  }
  std::memcpy(out, s.data() + run, s.size() - run);
  out += s.size() - run;
  *out++ = '"';
  return out;
}

inline char* WriteJsonUint(char* out, uint64_t v) {
  return std::to_chars(out, out + kMaxJsonUintBytes, v).ptr;
}

inline void AppendJsonString(std::string& out, std::string_view s) {
  const size_t at = out.size();
  out.resize_and_overwrite(at + MaxJsonStringBytes(s.size()), [&](char* p, size_t) {
    return static_cast<size_t>(WriteJsonString(p + at, s) - p);
  });
}

inline void AppendJsonUint(std::string& out, uint64_t v) {
  char buf[kMaxJsonUintBytes];
  out.append(buf, WriteJsonUint(buf, v));
}

}  // namespace ficus::observe::internal
