// Serializers for the heads the proxy writes: the request head sent upstream, the response head
// sent downstream, and the JSON error answers. Pure functions over parsed heads so that the
// header rules (hop-by-hop removal, X-Forwarded-*, Via, X-Request-Id) are unit-tested alone.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "base/base.h"
#include "http/http.h"

namespace ficus::proxy {

struct ForwardContext {
  std::string_view client_ip;     // appended to X-Forwarded-For
  std::string_view request_id;    // sent as X-Request-Id
  bool client_is_http10 = false;  // upstream request is sent as HTTP/1.0 (see heads.cc)
  // Tracing on: the traceparent to send (replacing the client's); empty = tracing off, the
  // client's Trace Context fields pass through untouched.
  std::string_view traceparent = {};
  bool drop_tracestate = false;  // the client's tracestate was invalid or its trace restarted
  // Fields the route's policies added (raw "Name: value\r\n" lines), sent after the client's.
  std::string_view added = {};
};

// Appends the request head to send upstream to `out`.
void AppendUpstreamRequestHead(const http::RequestHead& head, const ForwardContext& ctx,
                               std::string& out);

struct ResponseContext {
  std::string_view request_id;
  bool keep_alive = true;  // the downstream connection stays open after this response
  bool client_is_http10 = false;
  bool upgrade = false;  // a 101 to a client that asked for an upgrade
  bool dechunk = false;  // the body is decoded for an HTTP/1.0 client: no Transfer-Encoding
  // A compression transfer coding is removed and the body re-chunked: Transfer-Encoding is
  // replaced by "chunked".
  bool rechunk = false;
  // Fields the route's policies added to the response (raw "Name: value\r\n" lines).
  std::string_view added = {};
  // A policy transforms the body (policy::BodyTransform): no Content-Length (the new length is
  // not known until the end); with a body, framed as `rechunk` or `dechunk` say.
  bool transformed = false;
  // The upstream's fields a policy removed (names, any case), and the fields that describe the
  // representation it made (raw lines), sent after `added`.
  std::span<const std::string_view> dropped = {};
  std::string_view representation = {};
};

// Appends the response head to send downstream to `out`.
void AppendDownstreamResponseHead(const http::ResponseHead& head, const ResponseContext& ctx,
                                  std::string& out);

// Appends an interim (1xx) response head to send downstream: the status line and the fields
// that are not hop-by-hop or framing.
void AppendInterimResponseHead(const http::ResponseHead& head, std::string& out);

// Whether a field may be forwarded in a trailer section. RFC 9110 §6.5.1: fields that frame,
// route, authenticate, modify the request, control the response or describe the content must
// be in the header section; a recipient must not act on them as trailers, so the proxy never
// passes them on where a careless next hop might (Go's net/http refuses the same list).
bool AllowedInTrailer(std::string_view name);

// Holds back a chunked body's trailer section until it is complete, then lets it out without
// the fields AllowedInTrailer refuses. A body without trailer fields (the last chunk followed
// by the final CRLF) passes straight through; only one with fields allocates.
class TrailerGate {
 public:
  // `scanned`: the bytes `scanner` consumed in its last Scan. Returns how many of them to send
  // now; release() is what must follow them (the filtered section, once the body is done).
  size_t Pass(const http::ChunkedScanner& scanner, std::string_view scanned);
  std::string_view release() const { return out_; }

 private:
  std::string held_;
  std::string out_;
};

// Formats 128 random bits as a version 4, variant 1 UUID (36 characters, lower-case hex): the
// request id ficus generates when the client sent none.
void FormatRequestId(uint64_t hi, uint64_t lo, char out[36]);

// The HTTP status for an error answered by ficus itself (the Fail phase's one mapping).
int StatusFor(ErrorKind kind);

// The head of a response ficus answers itself: status line, Content-Type (when given),
// Content-Length (of a `body_size` body), the raw `fields` and `added` ("Name: value\r\n"
// lines: the answer's own, then the ones the route's policies added), X-Request-Id, and
// Connection: close unless `keep_alive`.
void AppendAnswerHead(int status, std::string_view fields, std::string_view added,
                      std::string_view content_type, size_t body_size, std::string_view request_id,
                      bool keep_alive, std::string& out);

// A complete error response: status line, JSON content type and length, `added` fields,
// X-Request-Id, Connection, and {"error":..,"message":..,"request_id":..}.
void AppendErrorResponse(const Error& error, std::string_view request_id, bool keep_alive,
                         std::string_view added, std::string& out);

}  // namespace ficus::proxy
