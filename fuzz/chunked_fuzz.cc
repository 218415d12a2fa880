// Fuzzes ChunkedScanner against a reference: a plain recursive-descent reading of the chunked
// grammar (RFC 9112 §7.1) written independently of the scanner's state machine. For every input,
// under default and under small limits:
//  - the one-shot scan agrees with the reference (done and where, payload bytes, error kind);
//  - scanning the input split at random points (byte by byte when short) agrees with one-shot.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

using ficus::ErrorKind;
using ficus::Result;
using ficus::http::ChunkedScanner;

enum class End { kMore, kError, kDone };

struct Scan {
  End end = End::kMore;
  size_t consumed = 0;  // kDone: bytes of the body; kMore: all of the input
  uint64_t payload = 0;
  ErrorKind kind = ErrorKind::kInternal;  // kError
  const char* context = "";
};

// --- The reference -----------------------------------------------------------------------------

int Hex(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool Tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}
bool Ows(unsigned char c) { return c == ' ' || c == '\t'; }
bool Qdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
bool FieldValueChar(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }

enum class Step { kOk, kMore, kError };

// chunk-ext up to (not including) its CR; *pos ends at the CR on kOk.
Step Extensions(std::string_view in, size_t* pos) {
  size_t p = *pos;
  const size_t n = in.size();
  for (;;) {
    if (p == n) return Step::kMore;
    if (in[p] == '\r') {
      *pos = p;
      return Step::kOk;
    }
    while (p < n && Ows(in[p])) ++p;  // BWS
    if (p == n) return Step::kMore;
    if (in[p] != ';') return Step::kError;
    ++p;
    while (p < n && Ows(in[p])) ++p;
    if (p == n) return Step::kMore;
    if (!Tchar(in[p])) return Step::kError;
    while (p < n && Tchar(in[p])) ++p;
    if (p == n) return Step::kMore;
    size_t q = p;
    while (q < n && Ows(in[q])) ++q;
    if (q == n) return Step::kMore;
    if (in[q] != '=') continue;  // whitespace (if any) must now lead to ";"
    p = q + 1;
    while (p < n && Ows(in[p])) ++p;
    if (p == n) return Step::kMore;
    if (in[p] == '"') {
      ++p;
      for (;;) {
        if (p == n) return Step::kMore;
        const unsigned char c = in[p];
        if (c == '"') {
          ++p;
          break;
        }
        if (c == '\\') {
          if (++p == n) return Step::kMore;
          const unsigned char e = in[p];
          if (!(e == '\t' || e == ' ' || (e >= 0x21 && e <= 0x7e) || e >= 0x80)) {
            return Step::kError;
          }
        } else if (!Qdtext(c)) {
          return Step::kError;
        }
        ++p;
      }
    } else if (Tchar(in[p])) {
      while (p < n && Tchar(in[p])) ++p;
    } else {
      return Step::kError;
    }
  }
}

Scan Reference(std::string_view in, const ChunkedScanner::Limits& limits) {
  const size_t n = in.size();
  size_t p = 0;
  Scan s;
  auto more = [&] {
    s.end = End::kMore;
    s.consumed = n;
    return s;
  };
  auto error = [&](ErrorKind kind = ErrorKind::kBadRequest) {
    s.end = End::kError;
    s.kind = kind;
    return s;
  };
  for (;;) {
    // chunk-size
    const size_t start = p;
    uint64_t size = 0;
    while (p < n && Hex(in[p]) >= 0) {
      if (p - start == 16) return error();
      size = size * 16 + static_cast<uint64_t>(Hex(in[p]));
      ++p;
    }
    if (p == n) return more();
    if (p == start) return error();
    if (size > limits.max_body_bytes - s.payload) return error(ErrorKind::kBodyTooLarge);
    // chunk-ext, bounded
    const size_t ext = p;
    size_t cr = p;
    const Step st = Extensions(in, &cr);
    if (st == Step::kError) return error();
    const size_t ext_len = (st == Step::kOk ? cr : n) - ext;
    if (ext_len > limits.max_extension_bytes) return error();
    if (st == Step::kMore) return more();
    p = cr + 1;
    if (p == n) return more();
    if (in[p] != '\n') return error();
    ++p;
    if (size == 0) break;
    // chunk-data CRLF
    if (n - p < size) {
      s.payload += n - p;
      return more();
    }
    s.payload += size;
    p += size;
    if (p == n) return more();
    if (in[p] != '\r') return error();
    if (++p == n) return more();
    if (in[p] != '\n') return error();
    ++p;
  }
  // trailer-section CRLF
  const size_t trailers = p;
  for (;;) {
    if (p == n) break;
    if (in[p] == '\r') {
      if (p + 1 - trailers > limits.max_trailer_bytes) return error();
      if (p + 1 == n) return more();
      if (in[p + 1] != '\n') return error();
      s.end = End::kDone;
      s.consumed = p + 2;
      return s;
    }
    if (!Tchar(in[p])) return error();
    while (p < n && Tchar(in[p])) ++p;
    if (p == n) break;
    if (in[p] != ':') return error();
    ++p;
    while (p < n && FieldValueChar(in[p])) ++p;
    if (p == n) break;
    if (in[p] != '\r') return error();
    if (++p == n) break;
    if (in[p] != '\n') return error();
    ++p;
  }
  if (n - trailers > limits.max_trailer_bytes) return error();
  return more();
}

// --- The scanner ------------------------------------------------------------------------------

Scan ScanPieces(std::string_view in, const ChunkedScanner::Limits& limits, uint64_t seed,
                bool bytewise) {
  ChunkedScanner scanner(limits);
  Scan s;
  size_t pos = 0;
  bool first = true;
  while (first || pos < in.size()) {
    first = false;
    size_t len = in.size() - pos;
    if (bytewise) {
      len = len > 0 ? 1 : 0;
    } else if (seed != 0) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      len = std::min<size_t>(len, (seed >> 33) % (in.size() / 4 + 2));
    }
    const std::string_view piece = in.substr(pos, len);
    Result<size_t> r = scanner.Scan(piece);
    s.payload = scanner.payload_bytes();
    if (!r.has_value()) {
      FUZZ_CHECK(!scanner.done());
      s.end = End::kError;
      s.kind = r.error().kind;
      s.context = r.error().context;
      FUZZ_CHECK(s.kind == ErrorKind::kBadRequest || s.kind == ErrorKind::kBodyTooLarge);
      Result<size_t> again = scanner.Scan(piece);  // errors stick
      FUZZ_CHECK(!again.has_value() && again.error().kind == s.kind);
      return s;
    }
    FUZZ_CHECK(*r <= piece.size());
    pos += *r;
    if (scanner.done()) {
      s.end = End::kDone;
      s.consumed = pos;
      Result<size_t> after = scanner.Scan(in.substr(pos));
      FUZZ_CHECK(after.has_value() && *after == 0);
      return s;
    }
    FUZZ_CHECK(*r == piece.size());
  }
  s.end = End::kMore;
  s.consumed = pos;
  return s;
}

void CheckSame(const Scan& a, const Scan& b, bool same_context) {
  FUZZ_CHECK(a.end == b.end);
  FUZZ_CHECK(a.payload == b.payload);
  if (a.end != End::kError) FUZZ_CHECK(a.consumed == b.consumed);
  if (a.end == End::kError) {
    FUZZ_CHECK(a.kind == b.kind);
    if (same_context) FUZZ_CHECK(std::strcmp(a.context, b.context) == 0);
  }
}

void Check(std::string_view in, const ChunkedScanner::Limits& limits, uint64_t seed) {
  const Scan whole = ScanPieces(in, limits, 0, false);
  const Scan ref = Reference(in, limits);
  CheckSame(whole, ref, /*same_context=*/false);
  if (whole.end != End::kError) FUZZ_CHECK(whole.payload <= whole.consumed);
  CheckSame(ScanPieces(in, limits, seed, false), whole, true);
  if (in.size() <= 1024) CheckSame(ScanPieces(in, limits, 0, true), whole, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : in) seed = (seed ^ c) * 0x100000001b3ull;
  seed |= 1;
  Check(in, ChunkedScanner::Limits{}, seed);
  ChunkedScanner::Limits small;
  small.max_body_bytes = 64;
  small.max_extension_bytes = 16;
  small.max_trailer_bytes = 32;
  Check(in, small, seed);
  return 0;
}
