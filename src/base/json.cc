#include "base/json.h"

#include <cmath>
#include <cstdio>

namespace ficus {
namespace json_internal {
namespace {

// The length of the valid UTF-8 sequence at s[i] (a byte >= 0x80), or 0 when it is not one
// (Unicode's table of well-formed byte sequences: no overlong forms, no surrogates, nothing
// above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto at = [&](size_t k) -> unsigned {
    return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u;
  };
  const unsigned c = at(0);
  const auto in = [](unsigned b, unsigned lo, unsigned hi) { return b >= lo && b <= hi; };
  if (in(c, 0xC2, 0xDF)) return in(at(1), 0x80, 0xBF) ? 2 : 0;
  if (in(c, 0xE0, 0xEF)) {
    const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = c == 0xED ? 0x9F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) ? 3 : 0;
  }
  if (in(c, 0xF0, 0xF4)) {
    const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
    return in(at(1), lo, hi) && in(at(2), 0x80, 0xBF) && in(at(3), 0x80, 0xBF) ? 4 : 0;
  }
  return 0;
}

char* WriteU(char* out, const char (&hex4)[5]) {
  *out++ = '\\';
  *out++ = 'u';
  std::memcpy(out, hex4, 4);
  return out + 4;
}

}  // namespace

char* WriteEscaped(char* out, std::string_view s, size_t i, size_t* consumed) {
  static constexpr char kHex[] = "0123456789abcdef";
  const auto c = static_cast<unsigned char>(s[i]);
  *consumed = 1;
  switch (c) {
    case '"':
    case '\\':
      *out++ = '\\';
      *out++ = static_cast<char>(c);
      return out;
    case '\n':
      *out++ = '\\';
      *out++ = 'n';
      return out;
    case '\r':
      *out++ = '\\';
      *out++ = 'r';
      return out;
    case '\t':
      *out++ = '\\';
      *out++ = 't';
      return out;
    default:
      break;
  }
  if (c < 0x80) {  // another control byte, or DEL
    const char hex4[5] = {'0', '0', kHex[c >> 4], kHex[c & 0xF], 0};
    return WriteU(out, hex4);
  }
  const size_t n = Utf8SequenceLength(s, i);
  if (n == 0) return WriteU(out, "fffd");
  *consumed = n;
  if (n == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80) {
    const auto third = static_cast<unsigned char>(s[i + 2]);
    if (third == 0xA8) return WriteU(out, "2028");
    if (third == 0xA9) return WriteU(out, "2029");
  }
  std::memcpy(out, s.data() + i, n);
  return out + n;
}

}  // namespace json_internal

void AppendJsonNumber(std::string& out, double v, int precision) {
  if (!std::isfinite(v)) {
    out.append("null");  // JSON has no Inf or NaN
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    out.append(std::to_string(static_cast<long long>(v)));
  } else {
    char buf[40];
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    out.append(buf);
  }
}

JsonWriter& JsonWriter::Key(std::string_view k) {
  Separate();
  AppendJsonString(out_, k);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  Separate();
  AppendJsonString(out_, s);
  return *this;
}

JsonWriter& JsonWriter::Number(double v, int precision) {
  Separate();
  AppendJsonNumber(out_, v, precision);
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  Separate();
  out_.append(std::to_string(v));
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t v) {
  Separate();
  AppendJsonUint(out_, v);
  return *this;
}

JsonWriter& JsonWriter::Bool(bool b) {
  Separate();
  out_.append(b ? "true" : "false");
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_.append("null");
  return *this;
}

JsonWriter& JsonWriter::Raw(std::string_view json) {
  Separate();
  out_.append(json);
  return *this;
}

JsonWriter& JsonWriter::Open(char c) {
  Separate();
  out_.push_back(c);
  first_.push_back(true);
  return *this;
}

JsonWriter& JsonWriter::Close(char c) {
  out_.push_back(c);
  first_.pop_back();
  return *this;
}

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!first_.empty()) {
    if (!first_.back()) out_.push_back(',');
    first_.back() = false;
  }
}

}  // namespace ficus
