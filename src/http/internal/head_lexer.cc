#include "http/internal/head_lexer.h"

#include <algorithm>
#include <cstring>

#include "http/internal/chars.h"

namespace ficus::http::internal {
namespace {

// What lexing one line did.
enum class Line : uint8_t {
  kNext,        // a line was consumed; `p` is at the next one
  kEnd,         // the empty line ending the head was consumed
  kIncomplete,  // the line runs past the bytes available
  kError,       // malformed; reported once the line's LF is in the buffer
  kEarlyError,  // malformed method or status-line prefix: reported at once
};

// Checks the method at the start of a request line (the one check made before the line's LF
// arrives). Returns an error context, or nullptr with *sp at the SP after the method, or
// nullptr with *sp == nullptr when the method may still grow.
const char* CheckMethod(const char* q, const char* end, const char** sp) {
  *sp = nullptr;
  const bool capped = static_cast<size_t>(end - q) > kMaxMethodLength;
  const char* lim = capped ? q + kMaxMethodLength + 1 : end;
  const char* m = SkipToken(q, lim);
  if (m == lim) return capped ? "method too long" : nullptr;
  if (*m != ' ') return "invalid character in method";
  if (m == q) return "empty method";
  *sp = m;
  return nullptr;
}

// Checks the fixed-position prefix of a status line, "HTTP/1." DIGIT SP 3DIGIT (SP / CR), as
// far as it has arrived. Returns an error context or nullptr.
const char* CheckStatusPrefix(const char* q, const char* end) {
  static constexpr char kHttp1[] = "HTTP/1.";
  const size_t n = std::min<size_t>(static_cast<size_t>(end - q), 13);
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(q[i]);
    if (i < 7) {
      if (c != static_cast<unsigned char>(kHttp1[i])) return "not an HTTP/1.x status line";
    } else if (i == 7) {
      if (!IsDigit(c)) return "malformed HTTP version in status line";
    } else if (i == 8 || i == 12) {
      if (c != ' ' && !(i == 12 && c == '\r')) return "malformed status line";
    } else if (i == 9) {
      if (c < '1' || c > '9') return "malformed status code";
    } else if (!IsDigit(c)) {
      return "malformed status code";
    }
  }
  return nullptr;
}

struct Lexer {
  HeadKind kind = HeadKind::kRequest;
  const char* base = nullptr;
  const char* end = nullptr;  // window end: at most max_head_bytes past base
  Header* storage = nullptr;
  uint32_t max_fields = 0;
  uint32_t fields = 0;
  uint8_t phase = 0;
  uint8_t empty_lines = 0;
  bool underscore_names = false;  // a field name with '_' (see NameChars)
  const char* context = "";
  LexStatus error_status = LexStatus::kMalformed;
  StartLine* start = nullptr;  // the caller's, written when the start line is complete

  Line Error(const char* ctx, LexStatus status = LexStatus::kMalformed) {
    context = ctx;
    error_status = status;
    return Line::kError;
  }

  // Runs the checks that are made before a start line is complete; false on error.
  bool EarlyCheck(const char* line) {
    if (phase != 0 || line >= end) return true;
    const char* ctx = nullptr;
    if (kind == HeadKind::kRequest) {
      if (*line == '\r') return true;  // may be a leading empty line
      const char* sp;
      ctx = CheckMethod(line, end, &sp);
    } else {
      ctx = CheckStatusPrefix(line, end);
    }
    if (ctx == nullptr) return true;
    context = ctx;
    error_status = LexStatus::kMalformed;
    return false;
  }

  Line RequestLine(const char*& p) {
    const char* q = p;
    if (q == end) return Line::kIncomplete;
    if (*q == '\r') {  // an empty line before the request line (RFC 9112 §2.2)
      if (q + 1 == end) return Line::kIncomplete;
      if (q[1] != '\n') return Error("bare CR");
      if (++empty_lines > kMaxLeadingEmptyLines) return Error("too many empty lines before head");
      p = q + 2;
      return Line::kNext;
    }
    const char* sp;
    if (const char* ctx = CheckMethod(q, end, &sp)) {
      context = ctx;
      error_status = LexStatus::kMalformed;
      return Line::kEarlyError;
    }
    if (sp == nullptr) return Line::kIncomplete;
    const char* t = sp + 1;
    const char* r = FindNonVchar(t, end);
    if (r == end) return Line::kIncomplete;
    if (r == t) return Error("empty request-target");
    if (*r != ' ') {
      return Error(*r == '\r' || *r == '\n' ? "missing HTTP version"
                                            : "invalid character in request-target");
    }
    const char* v = r + 1;
    const char* w = FindNonVchar(v, end);
    if (w == end) return Line::kIncomplete;
    if (*w != '\r') {
      return Error(*w == ' '    ? "extra space in request line"
                   : *w == '\n' ? "bare LF"
                                : "invalid character in HTTP version");
    }
    if (w + 1 == end) return Line::kIncomplete;
    if (w[1] != '\n') return Error("bare CR");
    const size_t vlen = static_cast<size_t>(w - v);
    if (vlen == 8 && std::memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '1' || v[7] == '0')) {
      start->version_minor = static_cast<uint8_t>(v[7] - '0');
    } else if (vlen == 8 && std::memcmp(v, "HTTP/", 5) == 0 && IsDigit(v[5]) && v[6] == '.' &&
               IsDigit(v[7])) {
      return Error("unsupported HTTP version", LexStatus::kBadVersion);
    } else {
      return Error("malformed HTTP version");
    }
    start->method = std::string_view(q, static_cast<size_t>(sp - q));
    start->target = std::string_view(t, static_cast<size_t>(r - t));
    phase = 1;
    p = w + 2;
    return Line::kNext;
  }

  Line StatusLine(const char*& p) {
    const char* q = p;
    if (const char* ctx = CheckStatusPrefix(q, end)) {
      context = ctx;
      error_status = LexStatus::kMalformed;
      return Line::kEarlyError;
    }
    if (end - q < 13) return Line::kIncomplete;
    const char* reason = q + 13;
    const char* cr = q + 12;
    if (*cr == ' ') {
      cr = FindFieldCtl(reason, end);
      if (cr == end) return Line::kIncomplete;
      if (*cr != '\r') return Error(*cr == '\n' ? "bare LF" : "control character in reason phrase");
    } else {
      reason = cr;  // "HTTP/1.1 200\r\n": a missing SP before an empty reason is tolerated
    }
    if (cr + 1 == end) return Line::kIncomplete;
    if (cr[1] != '\n') return Error("bare CR");
    start->version_minor = static_cast<uint8_t>(q[7] == '0' ? 0 : 1);  // 1.x, x > 1: as 1.1
    start->status = static_cast<uint16_t>((q[9] - '0') * 100 + (q[10] - '0') * 10 + (q[11] - '0'));
    start->reason = std::string_view(reason, static_cast<size_t>(cr - reason));
    phase = 1;
    p = cr + 2;
    return Line::kNext;
  }

  Line FieldLine(const char*& p) {
    const char* q = p;
    if (q == end) return Line::kIncomplete;
    const char c0 = *q;
    if (c0 == '\r') {
      if (q + 1 == end) return Line::kIncomplete;
      if (q[1] != '\n') return Error("bare CR");
      p = q + 2;
      return Line::kEnd;
    }
    if (IsOws(c0)) return Error("obs-fold in header section");
    const char* n = FindNameEnd(q, end);
    if (n == end) return Line::kIncomplete;
    if (*n != ':') {
      return Error(IsOws(*n) && n != q ? "whitespace before colon in header field"
                   : *n == '\n'        ? "bare LF"
                                       : "invalid character in header field name");
    }
    if (n == q) return Error("empty header field name");
    const unsigned name_chars = NameChars(q, n);
    if (!(name_chars & kNameAllTchar)) return Error("invalid character in header field name");
    underscore_names |= (name_chars & kNameUnderscore) != 0;
    const char* v = n + 1;
    while (v < end && IsOws(*v)) ++v;
    if (v == end) return Line::kIncomplete;
    const char* cr = FindFieldCtl(v, end);
    if (cr == end) return Line::kIncomplete;
    if (*cr != '\r') return Error(*cr == '\n' ? "bare LF" : "control character in header field");
    if (cr + 1 == end) return Line::kIncomplete;
    if (cr[1] != '\n') return Error("bare CR");
    if (fields == max_fields) return Error("too many header fields", LexStatus::kTooLarge);
    const char* ve = cr;
    while (ve > v && IsOws(ve[-1])) --ve;
    storage[fields++] =
        Header{std::string_view(q, static_cast<size_t>(n - q)),
               std::string_view(v, static_cast<size_t>(ve - v)), HeaderRole::kOther};
    p = cr + 2;
    return Line::kNext;
  }
};

LexStatus Failed(HeadProgress& progress, LexStatus status, const char* context, LexResult& out) {
  progress = {};
  out.context = context;
  return status;
}

}  // namespace

LexStatus LexHead(HeadKind kind, std::string_view buf, const Limits& limits,
                  std::span<Header> storage, HeadProgress& progress, LexResult& out) {
  const size_t window = std::min<size_t>(buf.size(), limits.max_head_bytes);
  if (progress.scanned > window || progress.line_start > progress.scanned) {
    progress = {};  // REQUIRES violated (the buffer shrank): start over rather than misread
  }
  Lexer lx;
  lx.kind = kind;
  lx.base = buf.data();
  lx.end = buf.data() + window;
  lx.storage = storage.data();
  lx.max_fields = static_cast<uint32_t>(
      std::min<size_t>({limits.max_header_count, storage.size(), UINT16_MAX}));
  lx.fields = progress.fields;
  lx.phase = progress.phase;
  lx.empty_lines = progress.empty_lines;
  lx.start = &out.start;
  const char* line = lx.base + progress.line_start;
  const bool resumed = progress.line_start > 0;

  auto incomplete = [&]() -> LexStatus {
    if (!lx.EarlyCheck(line)) return Failed(progress, lx.error_status, lx.context, out);
    if (buf.size() >= limits.max_head_bytes) {
      return Failed(progress, LexStatus::kTooLarge, "head larger than max_head_bytes", out);
    }
    progress.line_start = static_cast<uint32_t>(line - lx.base);
    progress.scanned = static_cast<uint32_t>(window);
    progress.fields = static_cast<uint16_t>(lx.fields);
    progress.phase = lx.phase;
    progress.empty_lines = lx.empty_lines;
    return LexStatus::kIncomplete;
  };

  // The line at `line` was incomplete last time: lex again only once its LF has arrived.
  if (progress.scanned > progress.line_start &&
      std::memchr(lx.base + progress.scanned, '\n', window - progress.scanned) == nullptr) {
    return incomplete();
  }

  for (;;) {
    const char* p = line;
    Line r = lx.phase != 0                ? lx.FieldLine(p)
             : kind == HeadKind::kRequest ? lx.RequestLine(p)
                                          : lx.StatusLine(p);
    switch (r) {
      case Line::kNext:
        line = p;
        continue;
      case Line::kEnd:
        break;
      case Line::kIncomplete:
        return incomplete();
      case Line::kEarlyError:
        return Failed(progress, lx.error_status, lx.context, out);
      case Line::kError:
        if (std::memchr(line, '\n', static_cast<size_t>(lx.end - line)) == nullptr) {
          return incomplete();
        }
        return Failed(progress, lx.error_status, lx.context, out);
    }
    // The head is complete at p.
    progress = {};
    if (resumed) {
      // Lines lexed by earlier calls may point into a buffer that has since moved, and the
      // start line was not kept: lex the whole (now complete) head once more.
      [[maybe_unused]] const LexStatus again = LexHead(kind, buf, limits, storage, progress, out);
      FICUS_DCHECK(again == LexStatus::kComplete);
      return LexStatus::kComplete;
    }
    out.head_size = static_cast<uint32_t>(p - lx.base);
    out.field_count = lx.fields;
    out.underscore_names = lx.underscore_names;
    return LexStatus::kComplete;
  }
}

}  // namespace ficus::http::internal
