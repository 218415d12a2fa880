// Small JSON writing helpers for the background writers (access log, OTLP export).
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace ficus::observe::internal {

// `s` as a JSON string (quotes included). Bytes >= 0x80 are taken as Latin-1 (header values
// are octets, not necessarily UTF-8), so the output is always valid JSON and valid UTF-8.
inline void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  // Copy runs of plain characters in one append (an access-log line is mostly such runs; a
  // push per byte was ~2,500 instructions per logged request).
  static constexpr auto kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7F; ++c) t[c] = c != '"' && c != '\\';
    return t;
  }();
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (kPlain[c]) continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(esc, sizeof esc);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

inline void AppendJsonUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace ficus::observe::internal
