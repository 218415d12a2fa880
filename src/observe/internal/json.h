// Small JSON writing helpers for the background writers (access log, OTLP export).
#pragma once

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
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

inline void AppendJsonUint(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

}  // namespace ficus::observe::internal
