// ficus::http internal — character classes (RFC 9110 §5.6) as lookup tables and the two
// vectorised scans the head lexer spends its time in. No locale, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace ficus::http::internal {

struct CharTable {
  bool v[256] = {};
  constexpr bool operator[](unsigned char c) const { return v[c]; }
};

constexpr bool IsAlpha(unsigned c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool IsDigit(unsigned c) { return c >= '0' && c <= '9'; }

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
//         "~" / DIGIT / ALPHA
constexpr CharTable MakeTokenTable() {
  CharTable t;
  for (unsigned c = 0; c < 256; ++c) t.v[c] = IsAlpha(c) || IsDigit(c);
  for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) t.v[c] = true;
  return t;
}
inline constexpr CharTable kTchar = MakeTokenTable();

// Characters of an authority (RFC 3986 reg-name / IP-literal and port), without userinfo:
// unreserved / pct-encoded ('%') / sub-delims / ":" / "[" / "]".
constexpr CharTable MakeAuthorityTable() {
  CharTable t;
  for (unsigned c = 0; c < 256; ++c) t.v[c] = IsAlpha(c) || IsDigit(c);
  for (unsigned char c : std::string_view("-._~%!$&'()*+,;=:[]")) t.v[c] = true;
  return t;
}
inline constexpr CharTable kAuthority = MakeAuthorityTable();

// reg-name characters other than pct-encoded: unreserved / sub-delims.
constexpr CharTable MakeRegNameTable() {
  CharTable t;
  for (unsigned c = 0; c < 256; ++c) t.v[c] = IsAlpha(c) || IsDigit(c);
  for (unsigned char c : std::string_view("-._~!$&'()*+,;=")) t.v[c] = true;
  return t;
}
inline constexpr CharTable kRegName = MakeRegNameTable();

// Hex digit value, or -1.
constexpr int HexValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr unsigned char ToLower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
}

// Equality of `s` with `lower`, an all-lowercase literal, ignoring ASCII case in `s`.
inline bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (ToLower(static_cast<unsigned char>(s[i])) != static_cast<unsigned char>(lower[i]))
      return false;
  }
  return true;
}

// A byte allowed nowhere in a field line except as its CRLF: a CTL other than HTAB, or DEL.
constexpr bool IsFieldCtl(unsigned char c) { return (c < 0x20 && c != '\t') || c == 0x7f; }

// First byte in [p, end) that IsFieldCtl, or end. Field values, reason phrases and the
// request line's tail are scanned with this; it usually stops at the line's CR.
inline const char* FindFieldCtl(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i k1f = _mm_set1_epi8(0x1f);
  const __m128i kDel = _mm_set1_epi8(0x7f);
  const __m128i kTab = _mm_set1_epi8('\t');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, k1f), v);  // v <= 0x1f
    __m128i bad =
        _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, kTab), low), _mm_cmpeq_epi8(v, kDel));
    int mask = _mm_movemask_epi8(bad);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end && !IsFieldCtl(static_cast<unsigned char>(*p))) ++p;
  return p;
}

// First byte in [p, end) outside VCHAR (0x21-0x7E), or end. Used for the request-target.
inline const char* FindNonVchar(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i k7f = _mm_set1_epi8(0x7f);
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, k20), v);   // v <= 0x20
    __m128i high = _mm_cmpeq_epi8(_mm_max_epu8(v, k7f), v);  // v >= 0x7f
    int mask = _mm_movemask_epi8(_mm_or_si128(low, high));
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c <= 0x20 || c >= 0x7f) break;
    ++p;
  }
  return p;
}

// First byte in [p, end) that is ':' or outside VCHAR, or end: where a field name stops.
inline const char* FindNameEnd(const char* p, const char* end) {
#if defined(__SSE2__)
  const __m128i k20 = _mm_set1_epi8(0x20);
  const __m128i k7f = _mm_set1_epi8(0x7f);
  const __m128i kColon = _mm_set1_epi8(':');
  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    __m128i low = _mm_cmpeq_epi8(_mm_min_epu8(v, k20), v);   // v <= 0x20
    __m128i high = _mm_cmpeq_epi8(_mm_max_epu8(v, k7f), v);  // v >= 0x7f
    __m128i stop = _mm_or_si128(_mm_or_si128(low, high), _mm_cmpeq_epi8(v, kColon));
    int mask = _mm_movemask_epi8(stop);
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));
    p += 16;
  }
#endif
  while (p < end) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c <= 0x20 || c >= 0x7f || c == ':') break;
    ++p;
  }
  return p;
}

// Whether every byte of [p, end) is a tchar; no branch per byte (names are short and of
// varying length: an early exit would be mispredicted once per field).
inline bool AllTchar(const char* p, const char* end) {
  unsigned ok = 1;
  for (; p < end; ++p) ok &= kTchar[static_cast<unsigned char>(*p)];
  return ok != 0;
}

// Field-name bytes: bit 0 = tchar, bit 1 = '_' (a tchar that some servers read as '-', so
// that "Transfer_Encoding" becomes a framing field behind the proxy's back).
struct NameCharTable {
  uint8_t v[256] = {};
};
constexpr NameCharTable MakeNameCharTable() {
  NameCharTable t;
  for (unsigned c = 0; c < 256; ++c) t.v[c] = kTchar[static_cast<unsigned char>(c)] ? 1 : 0;
  t.v[static_cast<unsigned char>('_')] = 3;
  return t;
}
inline constexpr NameCharTable kNameChar = MakeNameCharTable();
inline constexpr unsigned kNameAllTchar = 1;
inline constexpr unsigned kNameUnderscore = 2;
// A field name's classes in one pass: kNameAllTchar when every byte is a tchar, plus
// kNameUnderscore when one of them is '_'.
inline unsigned NameChars(const char* p, const char* end) {
  unsigned all = 1, any = 0;
  for (; p < end; ++p) {
    const unsigned c = kNameChar.v[static_cast<unsigned char>(*p)];
    all &= c;
    any |= c;
  }
  return all | (any & kNameUnderscore);
}

// First byte in [p, end) that is not a tchar, or end.
inline const char* SkipToken(const char* p, const char* end) {
  while (p < end && kTchar[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

inline bool IsToken(std::string_view s) {
  return !s.empty() && SkipToken(s.data(), s.data() + s.size()) == s.data() + s.size();
}

inline bool IsOws(char c) { return c == ' ' || c == '\t'; }

inline std::string_view TrimOws(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsOws(s[b])) ++b;
  while (e > b && IsOws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

}  // namespace ficus::http::internal
