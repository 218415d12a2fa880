// JSON writing: the one escaper and writer every JSON body, document and line ficus emits goes
// through (error bodies, the admin API, reports, the access log, OTLP export, webhooks, capture
// files).
//
// Strings: valid UTF-8 passes through; `"` and `\` are backslash-escaped; \n, \r and \t use their
// short escapes; other control bytes (below 0x20, and DEL) become \u00XX; U+2028 and U+2029
// become \u2028 and \u2029 (legal in JSON, but line breaks to JavaScript and to some log
// readers); every byte that is not part of a valid UTF-8 sequence (a stray continuation byte, a
// truncated or overlong sequence, an encoded surrogate, a code point above U+10FFFF) becomes
// \ufffd. So the output is always valid JSON and valid UTF-8, whatever the input.
//
// The Write* forms put bytes at a cursor into memory the caller has sized with the Max*Bytes
// bounds and return the new cursor: a line of many fields is then written without a capacity
// check and a size update per piece (the access log sizes a line once). The Append* forms wrap
// them for one value at the end of a std::string; JsonWriter builds a whole document.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ficus {

// The most bytes WriteJsonString writes for an `n`-byte string: the quotes, and a 6-byte escape
// for every byte (no escape is longer than 6 bytes, and none stands for fewer input bytes than a
// sixth of its length).
constexpr size_t MaxJsonStringBytes(size_t n) { return 2 + 6 * n; }
// The most bytes WriteJsonUint writes (UINT64_MAX has 20 digits).
constexpr size_t kMaxJsonUintBytes = 20;

namespace json_internal {
// Bytes copied as they are: printable ASCII other than `"` and `\`.
inline constexpr auto kPlain = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7F; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();
// Writes the escape for the byte or sequence at s[i] (not plain) and returns how many input
// bytes it consumed. Out of line: the access log's strings are nearly always plain.
char* WriteEscaped(char* out, std::string_view s, size_t i, size_t* consumed);
}  // namespace json_internal

namespace json_internal {
// The index of the first byte at or after `i` that is not plain, or s.size(). Sixteen bytes at a
// time where SSE2 is there: the access log escapes every field of every line, nearly all plain.
inline size_t SkipPlain(std::string_view s, size_t i) {
#if defined(__SSE2__)
  const __m128i space = _mm_set1_epi8(0x20);
  const __m128i del = _mm_set1_epi8(0x7F);
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  for (; i + 16 <= s.size(); i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    // Signed: bytes from 0x80 compare below 0x20 too, and go to the UTF-8 check as they must.
    const __m128i odd =
        _mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, space), _mm_cmpeq_epi8(v, del)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
    if (const int mask = _mm_movemask_epi8(odd); mask != 0) return i + __builtin_ctz(mask);
  }
#endif
  while (i < s.size() && kPlain[static_cast<unsigned char>(s[i])]) ++i;
  return i;
}
}  // namespace json_internal

// `s` as a JSON string literal, quotes included (see the rules at the top).
inline char* WriteJsonString(char* out, std::string_view s) {
  *out++ = '"';
  // Copy runs of plain characters at once (an access-log line is mostly such runs; a push per
  // byte was ~2,500 instructions per logged request).
  size_t run = 0;
  for (size_t i = 0; i < s.size();) {
    i = json_internal::SkipPlain(s, i);
    if (i == s.size()) break;
    std::memcpy(out, s.data() + run, i - run);
    out += i - run;
    size_t consumed = 1;
    out = json_internal::WriteEscaped(out, s, i, &consumed);
    i += consumed;
    run = i;
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

inline std::string JsonString(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

inline void AppendJsonUint(std::string& out, uint64_t v) {
  char buf[kMaxJsonUintBytes];
  out.append(buf, WriteJsonUint(buf, v));
}

// A number as JSON: integers print as such when whole (below 1e15), other values with
// `precision` significant digits; NaN and infinities (which JSON lacks) as null.
void AppendJsonNumber(std::string& out, double v, int precision = 6);

// A streaming JSON document writer. Commas and colons are inserted automatically:
//
//   JsonWriter w;
//   w.BeginObject().Key("error").String(kind).Key("retries").Uint(2).EndObject();
//   std::string body = w.Take();
//
// Raw() inserts text that is already JSON (a nested document written elsewhere) as one value.
class JsonWriter {
 public:
  JsonWriter() = default;
  // Appends to what `out` holds already (the writer takes it over; Take gives it back).
  explicit JsonWriter(std::string out) : out_(std::move(out)) {}

  JsonWriter& BeginObject() { return Open('{'); }
  JsonWriter& EndObject() { return Close('}'); }
  JsonWriter& BeginArray() { return Open('['); }
  JsonWriter& EndArray() { return Close(']'); }
  JsonWriter& Key(std::string_view k);
  JsonWriter& String(std::string_view s);
  JsonWriter& Number(double v, int precision = 6);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Bool(bool b);
  JsonWriter& Null();
  JsonWriter& Raw(std::string_view json);

  const std::string& str() const { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  JsonWriter& Open(char c);
  JsonWriter& Close(char c);
  void Separate();

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace ficus
