// Serializers for the heads the proxy writes: the request head sent upstream, the response head
// sent downstream, and the JSON error answers. Pure functions over parsed heads so that the
// header rules (hop-by-hop removal, X-Forwarded-*, Via, X-Request-Id) are unit-tested alone.
#pragma once

#include <string>
#include <string_view>

#include "base/base.h"
#include "http/http.h"

namespace ficus::proxy {

struct ForwardContext {
  std::string_view client_ip;     // appended to X-Forwarded-For
  std::string_view request_id;    // sent as X-Request-Id
  bool client_is_http10 = false;  // upstream request is sent as HTTP/1.0 (see forward.cc)
  // Tracing on: the traceparent to send (replacing the client's); empty = tracing off, the
  // client's Trace Context fields pass through untouched.
  std::string_view traceparent = {};
  bool drop_tracestate = false;  // the client's tracestate was invalid or its trace restarted
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
};

// Appends the response head to send downstream to `out`.
void AppendDownstreamResponseHead(const http::ResponseHead& head, const ResponseContext& ctx,
                                  std::string& out);

// Formats 128 random bits as a version 4, variant 1 UUID (36 characters, lower-case hex): the
// request id ficus generates when the client sent none.
void FormatRequestId(uint64_t hi, uint64_t lo, char out[36]);

// The HTTP status for an error answered by ficus itself (the Fail phase's one mapping).
int StatusFor(ErrorKind kind);

// A complete error response: status line, JSON content type and length, X-Request-Id,
// Connection, and {"error":..,"message":..,"request_id":..}.
void AppendErrorResponse(const Error& error, std::string_view request_id, bool keep_alive,
                         std::string& out);

}  // namespace ficus::proxy
