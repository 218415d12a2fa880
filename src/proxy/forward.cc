#include "proxy/internal/forward.h"

#include <charconv>

namespace ficus::proxy {
namespace {

void AppendHeader(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void AppendNumber(std::string& out, uint64_t n) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, end);
}

// Content-Length arrives validated but possibly as "5, 5" or repeated (RFC 9110 §8.6 allows
// identical values): send exactly one field with one value, since some servers reject lists.
void AppendContentLength(std::string& out, std::span<const http::Header> headers) {
  for (const auto& h : headers) {
    if (h.role != http::HeaderRole::kContentLength) continue;
    std::string_view v = h.value.substr(0, h.value.find(','));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    AppendHeader(out, "Content-Length", v);
    return;
  }
}

// Appends `value` to a header whose earlier occurrences are combined with ", "
// (X-Forwarded-For, Via): one field out, whatever number came in.
void AppendCombined(std::string& out, std::string_view name, std::span<const http::Header> headers,
                    http::HeaderRole role, std::string_view value) {
  out.append(name);
  out.append(": ");
  for (const auto& h : headers) {
    if (h.role != role || h.value.empty()) continue;
    out.append(h.value);
    out.append(", ");
  }
  out.append(value);
  out.append("\r\n");
}

}  // namespace

void AppendUpstreamRequestHead(const http::RequestHead& head, const ForwardContext& ctx,
                               std::string& out) {
  out.append(head.method_text);
  out.push_back(' ');
  // Absolute-form targets are rewritten to origin-form for the upstream, and the authority in
  // the target replaces the Host field (RFC 9112 §3.2.2): the upstream must see the host ficus
  // routed on.
  const bool absolute_form = head.target.empty() || head.target[0] != '/';
  if (!absolute_form) {
    out.append(head.target);
  } else {
    out.append(head.path);
    if (!head.query.empty()) {
      out.push_back('?');
      out.append(head.query);
    }
  }
  // An HTTP/1.0 client cannot take a chunked response, so ask the upstream in HTTP/1.0 too:
  // it answers with a length or closes, and keep-alive is still offered for the pool.
  out.append(ctx.client_is_http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  if (absolute_form && !head.host.empty()) AppendHeader(out, "Host", head.host);
  for (const auto& h : head.headers) {
    if (absolute_form && h.role == http::HeaderRole::kHost) continue;
    switch (h.role) {
      case http::HeaderRole::kHopByHop:
      case http::HeaderRole::kExpect:  // ficus answers 100-continue itself
      case http::HeaderRole::kXForwardedFor:
      case http::HeaderRole::kXForwardedProto:
      case http::HeaderRole::kXForwardedHost:
      case http::HeaderRole::kXRequestId:
      case http::HeaderRole::kVia:
      case http::HeaderRole::kContentLength:
        continue;
      case http::HeaderRole::kTraceparent:
        if (!ctx.traceparent.empty()) continue;
        AppendHeader(out, h.name, h.value);
        break;
      case http::HeaderRole::kTracestate:
        if (ctx.drop_tracestate) continue;
        AppendHeader(out, h.name, h.value);
        break;
      default:
        AppendHeader(out, h.name, h.value);
    }
  }
  AppendContentLength(out, head.headers);
  AppendCombined(out, "X-Forwarded-For", head.headers, http::HeaderRole::kXForwardedFor,
                 ctx.client_ip);
  out.append("X-Forwarded-Proto: http\r\n");
  if (!head.host.empty()) AppendHeader(out, "X-Forwarded-Host", head.host);
  AppendCombined(out, "Via", head.headers, http::HeaderRole::kVia,
                 head.version_minor == 0 ? "1.0 ficus" : "1.1 ficus");
  AppendHeader(out, "X-Request-Id", ctx.request_id);
  if (!ctx.traceparent.empty()) AppendHeader(out, "traceparent", ctx.traceparent);
  if (head.upgrade) {
    out.append("Connection: upgrade\r\n");
    AppendHeader(out, "Upgrade", head.upgrade_protocol);
  } else if (ctx.client_is_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

void AppendDownstreamResponseHead(const http::ResponseHead& head, const ResponseContext& ctx,
                                  std::string& out) {
  out.append("HTTP/1.1 ");
  AppendNumber(out, head.status);
  out.push_back(' ');
  out.append(head.reason);
  out.append("\r\n");
  bool has_request_id = false;
  std::string_view upgrade_value;
  for (const auto& h : head.headers) {
    if (h.role == http::HeaderRole::kHopByHop) {
      if (ctx.upgrade && http::EqualsIgnoreCase(h.name, "upgrade")) upgrade_value = h.value;
      continue;
    }
    if (h.role == http::HeaderRole::kVia || h.role == http::HeaderRole::kContentLength) continue;
    if (ctx.dechunk && h.role == http::HeaderRole::kTransferEncoding) continue;
    if (h.role == http::HeaderRole::kXRequestId) has_request_id = true;
    AppendHeader(out, h.name, h.value);
  }
  AppendContentLength(out, head.headers);
  AppendCombined(out, "Via", head.headers, http::HeaderRole::kVia,
                 head.version_minor == 0 ? "1.0 ficus" : "1.1 ficus");
  if (!has_request_id) AppendHeader(out, "X-Request-Id", ctx.request_id);
  if (ctx.upgrade) {
    out.append("Connection: upgrade\r\n");
    if (!upgrade_value.empty()) AppendHeader(out, "Upgrade", upgrade_value);
  } else if (!ctx.keep_alive) {
    out.append("Connection: close\r\n");
  } else if (ctx.client_is_http10) {
    out.append("Connection: keep-alive\r\n");
  }
  out.append("\r\n");
}

int StatusFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadRequest:
      return 400;
    case ErrorKind::kHeadTooLarge:
      return 431;
    case ErrorKind::kBodyTooLarge:
      return 413;
    case ErrorKind::kHeadTimeout:
      return 408;
    case ErrorKind::kNotImplemented:
      return 501;
    case ErrorKind::kBadVersion:
      return 505;
    case ErrorKind::kNoRoute:
      return 404;
    case ErrorKind::kConnectFailed:
      return 502;
    case ErrorKind::kUpstreamTimeout:
      return 504;
    case ErrorKind::kUpstreamReset:
      return 502;
    case ErrorKind::kUpstreamProtocol:
      return 502;
    case ErrorKind::kOverloaded:
      return 503;
    case ErrorKind::kDownstreamClosed:
    case ErrorKind::kInternal:
    case ErrorKind::kConfig:
      return 500;
  }
  return 500;
}

void AppendErrorResponse(const Error& error, std::string_view request_id, bool keep_alive,
                         std::string& out) {
  // The context strings are static and ours, but escape anyway: a body is never malformed JSON.
  std::string body = "{\"error\":\"";
  body.append(ErrorKindName(error.kind));
  body.append("\",\"message\":\"");
  for (const char* p = error.context; p && *p; ++p) {
    if (*p == '"' || *p == '\\') body.push_back('\\');
    if (static_cast<unsigned char>(*p) >= 0x20) body.push_back(*p);
  }
  body.append("\",\"request_id\":\"");
  body.append(request_id);
  body.append("\"}\n");

  int status = StatusFor(error.kind);
  out.append("HTTP/1.1 ");
  AppendNumber(out, status);
  out.push_back(' ');
  out.append(http::ReasonPhrase(status));
  out.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  AppendNumber(out, body.size());
  out.append("\r\nX-Request-Id: ");
  out.append(request_id);
  out.append(keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
  out.append(body);
}

}  // namespace ficus::proxy
