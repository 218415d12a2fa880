// ficus::http internal — what the request and response parsers share once a head is lexed:
// field-name classification (roles), and the framing and connection fields (RFC 9110 §7.6.1,
// §8.6; RFC 9112 §6, §9.6) summarised in one pass over the stored fields.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "http/http.h"

namespace ficus::http::internal {

// Field names the parsers act on; several map to the same HeaderRole.
enum class KnownField : uint8_t {
  kOther,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kKeepAlive,
  kProxyConnection,
  kTe,
  kTrailer,
  kUpgrade,
  kExpect,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXRequestId,
  kVia,
  kTraceparent,
  kTracestate,
  kUserAgent,
  kAuthorization,
};

KnownField ClassifyField(std::string_view name);
HeaderRole RoleOf(KnownField f);

// Connection options (tokens of Connection fields) beyond close / keep-alive / upgrade that a
// head may name; more is refused, which bounds the work of marking the fields they name.
inline constexpr uint32_t kMaxConnectionOptions = 32;

// No default member initializers on purpose: SummarizeFields sets every member with plain
// stores (value-initialising the struct made g++ emit a `rep stos`, slow to start).
struct FieldSummary {
  uint32_t host_count;
  std::string_view host;  // first Host value
  bool has_content_length;
  uint64_t content_length;
  bool has_transfer_encoding;
  uint32_t te_chunked;   // "chunked" codings seen across Transfer-Encoding fields
  uint32_t te_other;     // other codings seen
  uint32_t te_gzip;      // of which gzip (or x-gzip)
  uint32_t te_deflate;   // of which deflate
  bool te_last_chunked;  // the final coding is chunked
  bool conn_close;
  bool conn_keep_alive;
  bool conn_upgrade;
  uint32_t conn_options;  // other Connection tokens: fields named by them are hop-by-hop
  bool has_upgrade;
  std::string_view upgrade;  // first Upgrade value
  bool expect_continue;
  bool has_request_id;
  std::string_view request_id;   // first X-Request-Id value
  std::string_view user_agent;   // first User-Agent value
  std::string_view traceparent;  // first traceparent value
  uint32_t traceparent_count;
  uint32_t tracestate_count;
  uint32_t authorization_count;  // a request with two is refused: which would the upstream use?

  void Clear() {
    host_count = 0;
    host = {};
    has_content_length = false;
    content_length = 0;
    has_transfer_encoding = false;
    te_chunked = 0;
    te_other = 0;
    te_gzip = 0;
    te_deflate = 0;
    te_last_chunked = false;
    conn_close = false;
    conn_keep_alive = false;
    conn_upgrade = false;
    conn_options = 0;
    has_upgrade = false;
    upgrade = {};
    expect_continue = false;
    has_request_id = false;
    request_id = {};
    user_agent = {};
    traceparent = {};
    traceparent_count = 0;
    tracestate_count = 0;
    authorization_count = 0;
  }
};

// Assigns every field its role and fills (all of) `s`. Returns nullptr, or the context of the first
// malformed framing/connection field (invalid or conflicting Content-Length, a malformed
// Transfer-Encoding or Connection list, too many Connection options).
const char* SummarizeFields(std::span<Header> fields, FieldSummary& s);

// Gives role kHopByHop to every field named by a Connection option (RFC 9110 §7.6.1), except
// Host, Content-Length and Transfer-Encoding, whose roles the proxy needs to frame and route
// the message (it regenerates those fields itself). Only needed when s.conn_options > 0.
void MarkConnectionOptions(std::span<Header> fields);

// The transfer-coding rules (RFC 9112 §6.1) on a summary with has_transfer_encoding:
// nullptr when the codings are exactly "chunked"; otherwise the context, with *not_implemented
// set when the only problem is another coding applied before the final chunked.
const char* CheckTransferCodings(const FieldSummary& s, bool* not_implemented);

// authority (RFC 3986, no userinfo): host [":" port], host a reg-name or an IP-literal in
// brackets; port up to 5 digits, and required (non-empty) when `require_port`.
bool IsValidAuthority(std::string_view s, bool require_port);

}  // namespace ficus::http::internal
