// ficus::http — HTTP/1.1 framing: strict request/response head parsers and a validating
// chunked-body scanner. Nothing here allocates: every string_view points into the caller's
// buffer, and header fields are stored in a span the caller provides.
//
// Strictness is the point (request smuggling defence, RFC 9112): anything ambiguous is an
// error, never "repaired". See tests/http for every rejected case.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/base.h"

namespace ficus::http {

struct Limits {
  uint32_t max_head_bytes = 64 * 1024;  // request line + all fields + final CRLF
  uint32_t max_header_count = 100;      // must be <= the storage span given to a parser
};

enum class Method : uint8_t {
  kGet,
  kHead,
  kPost,
  kPut,
  kDelete,
  kConnect,
  kOptions,
  kTrace,
  kPatch,
  kOther
};
Method ParseMethod(std::string_view token);
// RFC 9110 §9.2.2: GET, HEAD, PUT, DELETE, OPTIONS, TRACE.
bool IsIdempotent(Method m);

enum class BodyFraming : uint8_t {
  kNone,           // no body
  kContentLength,  // exactly content_length bytes
  kChunked,        // Transfer-Encoding: chunked (final coding)
  kUntilClose,     // responses only: body runs until the upstream closes
};

// Why the proxy cares about a field; assigned while parsing so that forwarding is one pass.
enum class HeaderRole : uint8_t {
  kOther,
  kHopByHop,  // Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, and every
              // field named in a Connection header: never forwarded as-is
  kHost,
  kContentLength,
  kTransferEncoding,
  kExpect,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXRequestId,
  kVia,
  kTraceparent,  // W3C Trace Context: replaced (not forwarded as-is) when tracing is on
  kTracestate,
};

struct Header {
  std::string_view name;   // as received (case preserved)
  std::string_view value;  // leading/trailing whitespace trimmed
  HeaderRole role = HeaderRole::kOther;
};

// The standard reason phrase of a status code (RFC 9110 §15), "Unknown" for others.
std::string_view ReasonPhrase(int status);

// ASCII case-insensitive equality (field names, tokens).
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// `s` without optional whitespace (spaces and tabs, RFC 9110 §5.6.3) at either end.
std::string_view TrimOws(std::string_view s);

// The value of cookie `name` in one Cookie field value ("a=1; b=\"2\""; quotes removed,
// whitespace around names and values ignored), or empty when absent. `http/values.cc`.
std::string_view CookieValue(std::string_view cookie_field, std::string_view name);
// The raw (not percent-decoded) value of parameter `name` in a query ("a=1&b=2"), or empty.
std::string_view QueryValue(std::string_view query, std::string_view name);

namespace internal {
// How far a head parser got in a buffer that did not yet hold a complete head. Offsets, not
// pointers, so that the caller's buffer may move (grow) between calls.
struct HeadProgress {
  uint32_t line_start = 0;  // first line not yet lexed
  uint32_t scanned = 0;     // [line_start, scanned) holds no LF
  uint16_t fields = 0;      // field lines lexed so far
  uint8_t phase = 0;        // 0: start line (or leading empty lines), 1: field lines
  uint8_t empty_lines = 0;  // leading empty lines skipped (requests only)
};
}  // namespace internal

struct RequestHead {
  Method method = Method::kOther;
  std::string_view method_text;
  std::string_view target;    // request-target as sent
  std::string_view path;      // origin-form path (for absolute-form: the path part, "/" if empty;
                              // "*" for OPTIONS *; empty for CONNECT)
  std::string_view query;     // after '?', without it; empty if none
  uint8_t version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  std::string_view host;      // Host field value (absolute-form / CONNECT authority if given)
  BodyFraming framing = BodyFraming::kNone;  // kNone, kContentLength or kChunked
  uint64_t content_length = 0;               // valid when framing == kContentLength
  bool keep_alive = true;             // version default adjusted by Connection: close / keep-alive
  bool expect_continue = false;       // Expect: 100-continue
  bool upgrade = false;               // Connection: upgrade and an Upgrade field are both present
  std::string_view upgrade_protocol;  // Upgrade field value when upgrade
  std::string_view request_id;        // X-Request-Id value, if present
  std::string_view user_agent;        // first User-Agent value, if present
  std::string_view traceparent;       // first traceparent value, if present
  uint8_t traceparent_count = 0;      // traceparent fields (more than one: invalid)
  uint8_t tracestate_count = 0;       // tracestate fields
  bool underscore_names = false;      // a field name contains '_' (DropUnderscoreFields)
  std::span<Header> headers;          // the parsed fields, in order, inside caller storage
  size_t head_size = 0;               // bytes from the request line through the empty line
                                      // (and any empty lines skipped before the request line)
};

// Gives role kHopByHop (not forwarded) to every field whose name contains '_'. Behind a proxy,
// some servers and frameworks fold '_' into '-' (CGI-style variables), so a field the proxy
// saw as "Transfer_Encoding" would frame the body there: nginx drops such fields by default,
// Envoy offers the same choice (headers_with_underscores_action).
void DropUnderscoreFields(RequestHead& head);

// A compression transfer coding applied before the final chunked ("gzip, chunked"); ficus
// removes it on the way to the client (RFC 9112 §7: gzip and deflate).
enum class TransferCoding : uint8_t { kNone, kGzip, kDeflate };

struct ResponseHead {
  uint16_t status = 0;
  uint8_t version_minor = 1;
  std::string_view reason;
  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;
  TransferCoding transfer_coding = TransferCoding::kNone;  // under chunked (framing kChunked)
  bool keep_alive = true;  // false when the upstream said close, or HTTP/1.0 without keep-alive,
                           // or framing == kUntilClose
  std::span<Header> headers;
  size_t head_size = 0;
};

// Parses one request head. Feed it the same growing buffer (bytes received so far, starting
// at the request line) until it returns non-zero; it remembers how far it has scanned, so a
// head that trickles in costs O(total bytes), not O(n^2).
//
// Returns: the head size (> 0) when the head is complete and valid; 0 when more bytes are
// needed; or an Error: kHeadTooLarge (431) past Limits, kBadRequest (400) for malformed or
// ambiguous input, kNotImplemented (501) for a transfer coding other than chunked,
// kBadVersion (505) for an HTTP version other than 1.0/1.1. Error::context names the reason
// (a short static string such as "obs-fold in header field").
//
// Thread safety: none; one parser per connection.
class RequestHeadParser {
 public:
  // REQUIRES: storage.size() >= limits.max_header_count.
  RequestHeadParser(const Limits& limits, std::span<Header> storage)
      : limits_(limits), storage_(storage) {}
  Result<size_t> Parse(std::string_view buf, RequestHead& out);
  // Forget scan progress; call before parsing the next request on the connection. (Parse
  // also forgets it by itself whenever it returns non-zero or an error.)
  void Reset() { progress_ = {}; }

 private:
  Limits limits_;
  std::span<Header> storage_;
  internal::HeadProgress progress_;
};

// Parses one response head from an upstream. `request_method` decides framing (a response to
// HEAD has no body) together with the status (1xx, 204, 304 have none). Interim 1xx responses
// other than 101 are returned like any other; the caller forwards them and parses again.
// Same return convention as RequestHeadParser; every error (a head over Limits included) is
// kUpstreamProtocol with Side::kUpstream: the client gets a 502, never a 4xx.
class ResponseHeadParser {
 public:
  ResponseHeadParser(const Limits& limits, std::span<Header> storage)
      : limits_(limits), storage_(storage) {}
  Result<size_t> Parse(std::string_view buf, Method request_method, ResponseHead& out);
  void Reset() { progress_ = {}; }

 private:
  Limits limits_;
  std::span<Header> storage_;
  internal::HeadProgress progress_;
};

// W3C Trace Context (https://www.w3.org/TR/trace-context/), parsed strictly.
struct TraceParent {
  uint8_t version = 0;
  uint8_t trace_id[16] = {};
  uint8_t parent_id[8] = {};
  uint8_t flags = 0;
  bool sampled() const { return (flags & 1) != 0; }
};
inline constexpr size_t kTraceParentSize = 55;  // "00-" 32 hex "-" 16 hex "-" 2 hex
// A traceparent field value: lower-case hex only; version "ff" is invalid; version 00 is exactly
// 55 bytes; a later version is at least 55 bytes and, if longer, has '-' after the flags (its
// extra fields are ignored); trace id and parent id must not be all zeros. False if invalid.
bool ParseTraceParent(std::string_view value, TraceParent* out);
// Writes version 00 "00-<trace_id>-<span_id>-<flags>" (kTraceParentSize bytes) to out.
void FormatTraceParent(const uint8_t trace_id[16], const uint8_t span_id[8], uint8_t flags,
                       char* out);
// A tracestate field value: at most 32 list members separated by commas (optional spaces or
// tabs around them; empty members allowed), each key=value with the spec's key grammar
// (simple or tenant@system) and value grammar (1..256 printable ASCII except ',' and '=', no
// trailing space), no duplicate keys, and at most 512 bytes in all. False if invalid.
bool ValidTraceState(std::string_view value);
// Several tracestate fields are one list (W3C Trace Context §3.3.1.1, RFC 9110 §5.3: combined
// in order with commas), so the member limit, the 512-byte limit (commas between fields
// included) and the duplicate-key rule apply across them. Add each field value in order; the
// list is valid while every Add returned true. No allocation: keys are views into the values,
// which must outlive the object.
class TraceStateList {
 public:
  bool Add(std::string_view field_value);
  bool valid() const { return valid_; }

 private:
  static constexpr size_t kMaxMembers = 32;
  std::string_view keys_[kMaxMembers];
  size_t members_ = 0;
  size_t bytes_ = 0;
  size_t fields_ = 0;
  bool valid_ = true;
};

// Validates a chunked body incrementally, so the proxy can forward the raw bytes it has
// checked (no re-encoding, no copy) and know exactly where the message ends.
// Chunk sizes are hex digits only (no sign, no leading whitespace, at most 16 digits, no
// overflow); chunk extensions must be well-formed `;name[=value]` and are bounded in size;
// each chunk's data is followed by exactly CRLF; trailer fields are validated like header
// fields and bounded by max_trailer_bytes.
class ChunkedScanner {
 public:
  struct Limits {
    uint64_t max_body_bytes = UINT64_MAX;  // decoded payload bytes; over it -> kBodyTooLarge
    uint32_t max_extension_bytes = 256;    // per chunk-size line, after the size
    uint32_t max_trailer_bytes = 8 * 1024;
  };
  explicit ChunkedScanner(const Limits& limits) : limits_(limits) {}
  ChunkedScanner() = default;

  // Consumes a prefix of `data` and returns its length: all of `data`, unless the body ends
  // inside it (then done() is true and the rest belongs to the next message). Errors:
  // kBadRequest (or kUpstreamProtocol when `upstream`), kBodyTooLarge.
  Result<size_t> Scan(std::string_view data) { return Scan(data, nullptr, nullptr); }
  // The same, and each piece of chunk data (the decoded payload) inside `data` is passed to
  // on_payload(ctx, piece) in order, before Scan returns. Pieces never overlap the framing
  // bytes before them, so a caller may move them toward the start of `data` as it goes
  // (decoding in place, e.g. for an HTTP/1.0 client that cannot take chunked framing).
  using PayloadFn = void (*)(void* ctx, std::string_view piece);
  Result<size_t> Scan(std::string_view data, PayloadFn on_payload, void* ctx);
  bool done() const { return state_ == State::kDone; }
  uint64_t payload_bytes() const { return payload_bytes_; }
  // The trailer section (the field lines after the last chunk, and the final CRLF) has begun:
  // true from the byte after "0\r\n" until done().
  bool in_trailer_section() const {
    return state_ >= State::kTrailerLineStart && state_ <= State::kFinalLf;
  }
  // Where the trailer section begins in the data the last Scan consumed: an offset into it, or
  // 0 when it began in an earlier call. Meaningful when in_trailer_section() or done().
  size_t trailer_offset() const { return trailer_offset_; }
  // Starts over for the next body; also forgets set_upstream().
  void Reset(const Limits& limits) { *this = ChunkedScanner(limits); }
  // Errors are attributed to the upstream (a response body) instead of the downstream.
  void set_upstream(bool upstream) { upstream_ = upstream; }

 private:
  enum class State : uint8_t {
    kSize,
    kExtension,
    kSizeLf,
    kData,
    kDataCr,
    kDataLf,
    kTrailerLineStart,
    kTrailerLine,
    kTrailerLf,
    kFinalLf,
    kDone,
    kFailed
  };
  Result<size_t> Reject(const char* context, ErrorKind kind = ErrorKind::kBadRequest);
  Limits limits_;
  State state_ = State::kSize;
  bool upstream_ = false;
  uint8_t size_digits_ = 0;
  uint64_t chunk_remaining_ = 0;
  uint64_t payload_bytes_ = 0;
  uint32_t line_bytes_ = 0;  // extension or trailer-line bytes so far
  uint32_t trailer_bytes_ = 0;
  size_t trailer_offset_ = 0;
  uint8_t ext_state_ = 0;  // internal sub-state of the extension / trailer-line grammar
  ErrorKind failed_kind_ = ErrorKind::kBadRequest;  // once kFailed: the error Scan repeats
  const char* failed_context_ = "";
};

}  // namespace ficus::http
