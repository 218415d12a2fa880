// ficus::http internal — the line lexer shared by the request and response head parsers. It
// checks the syntax of the start line and of every field line, stores the fields in the
// caller's span, and resumes where it stopped when the head is not complete yet.
//
// Errors are reported at the same point whatever the read sizes: for every prefix of the
// input the result is the same whether the prefix arrived at once or byte by byte (the
// fuzzers check this). A malformed line is reported once its LF is in the buffer; only a
// malformed method (requests) or status-line prefix (responses) is reported before that, so
// that a TLS handshake or binary garbage is refused at once.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "http/http.h"

namespace ficus::http::internal {

enum class HeadKind : uint8_t { kRequest, kResponse };

enum class LexStatus : uint8_t {
  kIncomplete,  // need more bytes; progress saved
  kComplete,    // fields stored, start line filled in
  kMalformed,   // 400 / upstream protocol error
  kTooLarge,    // head over max_head_bytes or more than max_header_count fields
  kBadVersion,  // request line with an HTTP version other than 1.0/1.1
};

struct StartLine {
  std::string_view method;  // requests
  std::string_view target;  // requests
  std::string_view reason;  // responses
  uint16_t status = 0;      // responses
  uint8_t version_minor = 1;
};

struct LexResult {
  const char* context = "";       // for the error statuses
  uint32_t head_size = 0;         // kComplete: bytes through the empty line
  uint32_t field_count = 0;       // kComplete: fields stored in the span
  bool underscore_names = false;  // kComplete: a field name contains '_'
  StartLine start;                // kComplete
};

// Longest method accepted (the longest registered one, UPDATEREDIRECTREF, has 17 characters).
inline constexpr size_t kMaxMethodLength = 32;
// RFC 9112 §2.2: a server SHOULD ignore at least one empty line before a request line.
inline constexpr uint8_t kMaxLeadingEmptyLines = 4;

// Lexes `buf` (a growing buffer that starts at the head) from where `progress` stopped.
// On any status other than kIncomplete, `progress` is reset for the next head. `out` is
// written in place (returning it by value cost a third of a parse in store-forwarding stalls).
LexStatus LexHead(HeadKind kind, std::string_view buf, const Limits& limits,
                  std::span<Header> storage, HeadProgress& progress, LexResult& out);

}  // namespace ficus::http::internal
