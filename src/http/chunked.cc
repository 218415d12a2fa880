// ficus::http — ChunkedScanner: a byte-at-a-time state machine over the chunked coding's
// framing (RFC 9112 §7.1), skipping chunk data in O(1) per call. Every byte either advances
// the grammar or is an error; nothing is buffered, so any split of the input gives the same
// result.
#include <algorithm>

#include "http/http.h"
#include "http/internal/chars.h"

namespace ficus::http {
namespace {

using internal::IsOws;
using internal::kTchar;

// Sub-states of the chunk-ext grammar (RFC 9112 §7.1.1), kept in ext_state_:
//   chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
enum Ext : uint8_t {
  kExtPreSemi,     // whitespace seen; only more whitespace or ";" may follow
  kExtNameBws,     // after ";"
  kExtName,        // in chunk-ext-name
  kExtPostName,    // whitespace after the name: "=" or ";" must follow
  kExtValBws,      // after "="
  kExtValToken,    // in a token value
  kExtQuoted,      // in a quoted-string value
  kExtQuotedEsc,   // after a backslash in a quoted-string
  kExtAfterValue,  // after the closing quote
};

// Sub-states of a trailer field line, kept in ext_state_.
enum Trailer : uint8_t { kTrailerName, kTrailerValue };

constexpr bool IsQdtext(unsigned char c) {
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}
constexpr bool IsQuotedPairChar(unsigned char c) {
  return c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
}

}  // namespace

Result<size_t> ChunkedScanner::Reject(const char* context, ErrorKind kind) {
  state_ = State::kFailed;
  failed_kind_ = kind;
  failed_context_ = context;
  if (kind == ErrorKind::kBadRequest && upstream_) kind = ErrorKind::kUpstreamProtocol;
  return Fail(kind, upstream_ ? Side::kUpstream : Side::kDownstream, context);
}

Result<size_t> ChunkedScanner::Scan(std::string_view data, PayloadFn on_payload, void* ctx) {
  const char* const begin = data.data();
  const char* const end = begin + data.size();
  const char* p = begin;
  trailer_offset_ = 0;
  while (p < end) {
    if (state_ == State::kData) {
      const uint64_t n = std::min<uint64_t>(chunk_remaining_, static_cast<uint64_t>(end - p));
      if (on_payload != nullptr && n > 0) on_payload(ctx, std::string_view(p, n));
      p += n;
      chunk_remaining_ -= n;
      payload_bytes_ += n;
      if (chunk_remaining_ == 0) state_ = State::kDataCr;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(*p++);
    switch (state_) {
      case State::kSize: {
        const int h = internal::HexValue(c);
        if (h >= 0) {
          if (size_digits_ == 16) return Reject("chunk size longer than 16 hex digits");
          ++size_digits_;
          chunk_remaining_ = (chunk_remaining_ << 4) | static_cast<uint64_t>(h);
          break;
        }
        if (size_digits_ == 0) return Reject("missing chunk size");
        if (chunk_remaining_ > limits_.max_body_bytes - payload_bytes_) {
          return Reject("chunked body larger than the limit", ErrorKind::kBodyTooLarge);
        }
        line_bytes_ = 1;
        if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (limits_.max_extension_bytes == 0 && (c == ';' || IsOws(static_cast<char>(c)))) {
          return Reject("chunk extension too long");
        } else if (c == ';') {
          state_ = State::kExtension;
          ext_state_ = kExtNameBws;
        } else if (IsOws(static_cast<char>(c))) {
          state_ = State::kExtension;
          ext_state_ = kExtPreSemi;
        } else {
          return Reject("invalid chunk size");
        }
        break;
      }
      case State::kExtension: {
        if (c == '\r') {
          if (ext_state_ == kExtName || ext_state_ == kExtValToken ||
              ext_state_ == kExtAfterValue) {
            state_ = State::kSizeLf;
            break;
          }
          return Reject("malformed chunk extension");
        }
        if (++line_bytes_ > limits_.max_extension_bytes) return Reject("chunk extension too long");
        const bool ows = c == ' ' || c == '\t';
        switch (ext_state_) {
          case kExtPreSemi:
            if (c == ';')
              ext_state_ = kExtNameBws;
            else if (!ows)
              return Reject("malformed chunk extension");
            break;
          case kExtNameBws:
            if (kTchar[c])
              ext_state_ = kExtName;
            else if (!ows)
              return Reject("malformed chunk extension");
            break;
          case kExtName:
            if (kTchar[c]) break;
            if (c == '=')
              ext_state_ = kExtValBws;
            else if (c == ';')
              ext_state_ = kExtNameBws;
            else if (ows)
              ext_state_ = kExtPostName;
            else
              return Reject("malformed chunk extension");
            break;
          case kExtPostName:
            if (c == '=')
              ext_state_ = kExtValBws;
            else if (c == ';')
              ext_state_ = kExtNameBws;
            else if (!ows)
              return Reject("malformed chunk extension");
            break;
          case kExtValBws:
            if (c == '"')
              ext_state_ = kExtQuoted;
            else if (kTchar[c])
              ext_state_ = kExtValToken;
            else if (!ows)
              return Reject("malformed chunk extension");
            break;
          case kExtValToken:
            if (kTchar[c]) break;
            if (c == ';')
              ext_state_ = kExtNameBws;
            else if (ows)
              ext_state_ = kExtPreSemi;
            else
              return Reject("malformed chunk extension");
            break;
          case kExtQuoted:
            if (c == '"')
              ext_state_ = kExtAfterValue;
            else if (c == '\\')
              ext_state_ = kExtQuotedEsc;
            else if (!IsQdtext(c))
              return Reject("malformed chunk extension");
            break;
          case kExtQuotedEsc:
            if (!IsQuotedPairChar(c)) return Reject("malformed chunk extension");
            ext_state_ = kExtQuoted;
            break;
          case kExtAfterValue:
            if (c == ';')
              ext_state_ = kExtNameBws;
            else if (ows)
              ext_state_ = kExtPreSemi;
            else
              return Reject("malformed chunk extension");
            break;
          default:
            return Reject("malformed chunk extension");
        }
        break;
      }
      case State::kSizeLf:
        if (c != '\n') return Reject("bare CR in chunk size line");
        if (chunk_remaining_ == 0) {
          state_ = State::kTrailerLineStart;
          trailer_bytes_ = 0;
          trailer_offset_ = static_cast<size_t>(p - begin);
        } else {
          state_ = State::kData;
        }
        break;
      case State::kDataCr:
        if (c != '\r') return Reject("chunk data not followed by CRLF");
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return Reject("chunk data not followed by CRLF");
        state_ = State::kSize;
        size_digits_ = 0;
        break;
      case State::kTrailerLineStart:
        if (++trailer_bytes_ > limits_.max_trailer_bytes)
          return Reject("trailer section too large");
        if (c == '\r') {
          state_ = State::kFinalLf;
        } else if (kTchar[c]) {
          state_ = State::kTrailerLine;
          ext_state_ = kTrailerName;
        } else if (IsOws(static_cast<char>(c))) {
          return Reject("obs-fold in trailer section");
        } else {
          return Reject("invalid character in trailer field name");
        }
        break;
      case State::kTrailerLine:
        if (++trailer_bytes_ > limits_.max_trailer_bytes)
          return Reject("trailer section too large");
        if (ext_state_ == kTrailerName) {
          if (kTchar[c]) break;
          if (c == ':')
            ext_state_ = kTrailerValue;
          else if (IsOws(static_cast<char>(c)))
            return Reject("whitespace before colon in trailer");
          else
            return Reject("invalid character in trailer field name");
        } else if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (internal::IsFieldCtl(c)) {
          return Reject(c == '\n' ? "bare LF in trailer section" : "control character in trailer");
        }
        break;
      case State::kTrailerLf:
        if (++trailer_bytes_ > limits_.max_trailer_bytes)
          return Reject("trailer section too large");
        if (c != '\n') return Reject("bare CR in trailer section");
        state_ = State::kTrailerLineStart;
        break;
      case State::kFinalLf:
        if (c != '\n') return Reject("bare CR after trailer section");
        state_ = State::kDone;
        return static_cast<size_t>(p - begin);
      case State::kDone:
        return static_cast<size_t>(p - 1 - begin);
      case State::kFailed:
        return Reject(failed_context_, failed_kind_);
      case State::kData:
        break;  // handled above
    }
  }
  if (state_ == State::kFailed) return Reject(failed_context_, failed_kind_);
  return static_cast<size_t>(p - begin);
}

}  // namespace ficus::http
