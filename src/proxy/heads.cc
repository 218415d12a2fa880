#include "proxy/internal/heads.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "base/json.h"
#include "base/text.h"

namespace ficus::proxy {
namespace {

// Appends to a std::string through a raw cursor: the string is sized once for the expected
// head, each piece costs one bounds check and a memcpy, and the length is trimmed once at the
// end. std::string::append re-checks size, capacity and aliasing on every call, which made the
// head serializers ~10 % of the proxy's instructions per request.
class HeadWriter {
 public:
  HeadWriter(std::string& out, size_t expected) : out_(out), base_(out.size()) {
    Resize(base_ + expected);
    p_ = out_.data() + base_;
  }
  ~HeadWriter() { out_.resize(static_cast<size_t>(p_ - out_.data())); }
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;

  [[gnu::always_inline]] void Put(std::string_view s) {
    if (s.size() > static_cast<size_t>(end_ - p_)) Grow(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }
  [[gnu::always_inline]] void Put(char c) {
    if (p_ == end_) Grow(1);
    *p_++ = c;
  }
  [[gnu::always_inline]] void Header(std::string_view name, std::string_view value) {
    const size_t n = name.size() + value.size() + 4;
    if (n > static_cast<size_t>(end_ - p_)) Grow(n);
    std::memcpy(p_, name.data(), name.size());
    p_ += name.size();
    *p_++ = ':';
    *p_++ = ' ';
    std::memcpy(p_, value.data(), value.size());
    p_ += value.size();
    *p_++ = '\r';
    *p_++ = '\n';
  }
  void Number(uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    Put(std::string_view(buf, static_cast<size_t>(end - buf)));
  }

 private:
  // The contents up to the new size are written before they are read, so skip the zero fill.
  void Resize(size_t size) {
    out_.resize_and_overwrite(size, [](char*, size_t n) { return n; });
    end_ = out_.data() + out_.size();
  }
  void Grow(size_t need) {  // the estimate was short: a slow path, kept correct
    const size_t used = static_cast<size_t>(p_ - out_.data());
    Resize(std::max(out_.size() * 2, used + need));
    p_ = out_.data() + used;
  }

  std::string& out_;
  size_t base_;
  char* p_ = nullptr;
  char* end_ = nullptr;
};

// Content-Length arrives validated but possibly as "5, 5" or repeated (RFC 9110 §8.6 allows
// identical values): send exactly one field with one value, since some servers reject lists.
void PutContentLength(HeadWriter& w, std::span<const http::Header> headers) {
  for (const auto& h : headers) {
    if (h.role != http::HeaderRole::kContentLength) continue;
    std::string_view v = h.value.substr(0, h.value.find(','));
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    w.Header("Content-Length", v);
    return;
  }
}

// Appends `value` to a header whose earlier occurrences are combined with ", "
// (X-Forwarded-For, Via): one field out, whatever number came in.
void PutCombined(HeadWriter& w, std::string_view name, std::span<const http::Header> headers,
                 http::HeaderRole role, std::string_view value) {
  w.Put(name);
  w.Put(": ");
  for (const auto& h : headers) {
    if (h.role != role || h.value.empty()) continue;
    w.Put(h.value);
    w.Put(", ");
  }
  w.Put(value);
  w.Put("\r\n");
}

bool Dropped(std::span<const std::string_view> names, std::string_view name) {
  for (std::string_view n : names) {
    if (http::EqualsIgnoreCase(n, name)) return true;
  }
  return false;
}

// What the heads add to the received head, at most: the fixed field names and values, plus one
// byte per field for a missing space after the colon.
constexpr size_t kAddedFixedBytes = 256;

}  // namespace

void AppendUpstreamRequestHead(const http::RequestHead& head, const ForwardContext& ctx,
                               std::string& out) {
  // Everything sent comes from the received head (each field at most one byte longer) or the
  // context; an absolute-form target's authority may also appear as Host.
  HeadWriter w(out, head.head_size + head.headers.size() + 2 * head.host.size() +
                        ctx.client_ip.size() + ctx.request_id.size() + ctx.traceparent.size() +
                        ctx.added.size() + head.upgrade_protocol.size() + kAddedFixedBytes);
  w.Put(head.method_text);
  w.Put(' ');
  // Absolute-form targets are rewritten to origin-form for the upstream, and the authority in
  // the target replaces the Host field (RFC 9112 §3.2.2): the upstream must see the host ficus
  // routed on.
  const bool absolute_form = head.target.empty() || head.target[0] != '/';
  if (!absolute_form) {
    w.Put(head.target);
  } else {
    w.Put(head.path);
    if (!head.query.empty()) {
      w.Put('?');
      w.Put(head.query);
    }
  }
  // An HTTP/1.0 client cannot take a chunked response, so ask the upstream in HTTP/1.0 too:
  // it answers with a length or closes, and keep-alive is still offered for the pool.
  w.Put(ctx.client_is_http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  if (absolute_form && !head.host.empty()) w.Header("Host", head.host);
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
        w.Header(h.name, h.value);
        break;
      case http::HeaderRole::kTracestate:
        if (ctx.drop_tracestate) continue;
        w.Header(h.name, h.value);
        break;
      default:
        w.Header(h.name, h.value);
    }
  }
  if (!ctx.added.empty()) w.Put(ctx.added);
  PutContentLength(w, head.headers);
  PutCombined(w, "X-Forwarded-For", head.headers, http::HeaderRole::kXForwardedFor, ctx.client_ip);
  w.Put("X-Forwarded-Proto: http\r\n");
  if (!head.host.empty()) w.Header("X-Forwarded-Host", head.host);
  PutCombined(w, "Via", head.headers, http::HeaderRole::kVia,
              head.version_minor == 0 ? "1.0 ficus" : "1.1 ficus");
  w.Header("X-Request-Id", ctx.request_id);
  if (!ctx.traceparent.empty()) w.Header("traceparent", ctx.traceparent);
  if (head.upgrade) {
    w.Put("Connection: upgrade\r\n");
    w.Header("Upgrade", head.upgrade_protocol);
  } else if (ctx.client_is_http10) {
    w.Put("Connection: keep-alive\r\n");
  }
  w.Put("\r\n");
}

void AppendDownstreamResponseHead(const http::ResponseHead& head, const ResponseContext& ctx,
                                  std::string& out) {
  HeadWriter w(out, head.head_size + head.headers.size() + ctx.request_id.size() +
                        ctx.added.size() + ctx.representation.size() + kAddedFixedBytes);
  w.Put("HTTP/1.1 ");
  w.Number(head.status);
  w.Put(' ');
  w.Put(head.reason);
  w.Put("\r\n");
  bool has_request_id = false;
  std::string_view upgrade_value;
  // RFC 9110 §8.6, RFC 9112 §6.1: no Content-Length or Transfer-Encoding in a 204 (or 1xx),
  // whatever the upstream sent.
  const bool framing_fields = head.status >= 200 && head.status != 204;
  for (const auto& h : head.headers) {
    if (h.role == http::HeaderRole::kHopByHop) {
      if (ctx.upgrade && http::EqualsIgnoreCase(h.name, "upgrade")) upgrade_value = h.value;
      continue;
    }
    if (h.role == http::HeaderRole::kVia || h.role == http::HeaderRole::kContentLength) continue;
    if (h.role == http::HeaderRole::kTransferEncoding &&
        (ctx.dechunk || ctx.rechunk || !framing_fields))
      continue;
    if (h.role == http::HeaderRole::kXRequestId) has_request_id = true;
    if (!ctx.dropped.empty() && Dropped(ctx.dropped, h.name)) [[unlikely]]
      continue;
    w.Header(h.name, h.value);
  }
  if (framing_fields && !ctx.transformed) PutContentLength(w, head.headers);
  if (ctx.rechunk) w.Put("Transfer-Encoding: chunked\r\n");
  PutCombined(w, "Via", head.headers, http::HeaderRole::kVia,
              head.version_minor == 0 ? "1.0 ficus" : "1.1 ficus");
  if (!has_request_id) w.Header("X-Request-Id", ctx.request_id);
  if (!ctx.added.empty()) w.Put(ctx.added);
  if (!ctx.representation.empty()) w.Put(ctx.representation);
  if (ctx.upgrade) {
    w.Put("Connection: upgrade\r\n");
    if (!upgrade_value.empty()) w.Header("Upgrade", upgrade_value);
  } else if (!ctx.keep_alive) {
    w.Put("Connection: close\r\n");
  } else if (ctx.client_is_http10) {
    w.Put("Connection: keep-alive\r\n");
  }
  w.Put("\r\n");
}

void AppendInterimResponseHead(const http::ResponseHead& head, std::string& out) {
  HeadWriter w(out, head.head_size + head.headers.size() + kAddedFixedBytes);
  w.Put("HTTP/1.1 ");
  w.Number(head.status);
  w.Put(' ');
  w.Put(head.reason);
  w.Put("\r\n");
  for (const auto& h : head.headers) {
    if (h.role == http::HeaderRole::kHopByHop || h.role == http::HeaderRole::kContentLength ||
        h.role == http::HeaderRole::kTransferEncoding) {
      continue;
    }
    w.Header(h.name, h.value);
  }
  w.Put("\r\n");
}

bool AllowedInTrailer(std::string_view name) {
  static constexpr std::string_view kRefused[] = {
      // framing and connection
      "content-length", "transfer-encoding", "trailer", "te", "connection", "keep-alive",
      "proxy-connection", "upgrade",
      // routing, request modifiers and conditionals
      "host", "expect", "max-forwards", "range", "if-match", "if-none-match", "if-modified-since",
      "if-unmodified-since", "if-range", "cache-control", "pragma",
      // authentication and cookies
      "authorization", "proxy-authorization", "www-authenticate", "proxy-authenticate", "cookie",
      "set-cookie",
      // response control data and content format
      "age", "expires", "date", "location", "retry-after", "vary", "warning", "content-encoding",
      "content-type", "content-range"};
  for (std::string_view refused : kRefused) {
    if (http::EqualsIgnoreCase(name, refused)) return false;
  }
  return true;
}

size_t TrailerGate::Pass(const http::ChunkedScanner& scanner, std::string_view scanned) {
  out_.clear();
  if (!scanner.in_trailer_section() && !scanner.done()) return scanned.size();
  const size_t at = scanner.trailer_offset();
  if (scanner.done() && held_.empty() && scanned.size() - at == 2) return scanned.size();
  held_.append(scanned.substr(at));
  if (!scanner.done()) return at;
  // held_: field lines, then the final CRLF, every line validated by the scanner.
  for (size_t i = 0;;) {
    const size_t eol = held_.find("\r\n", i);
    if (eol == i || eol == std::string::npos) break;
    const std::string_view line(held_.data() + i, eol + 2 - i);
    if (AllowedInTrailer(line.substr(0, line.find(':')))) out_.append(line);
    i = eol + 2;
  }
  out_.append("\r\n");
  held_.clear();
  return at;
}

void FormatRequestId(uint64_t hi, uint64_t lo, char out[36]) {
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 1
  uint8_t b[16];
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<uint8_t>(hi >> (56 - 8 * i));
    b[8 + i] = static_cast<uint8_t>(lo >> (56 - 8 * i));
  }
  // 8-4-4-4-12
  WriteHexLower(b, 4, out);
  out[8] = '-';
  WriteHexLower(b + 4, 2, out + 9);
  out[13] = '-';
  WriteHexLower(b + 6, 2, out + 14);
  out[18] = '-';
  WriteHexLower(b + 8, 2, out + 19);
  out[23] = '-';
  WriteHexLower(b + 10, 6, out + 24);
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
    case ErrorKind::kUpstreamRetryStatus:
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
                         std::string_view added, std::string& out) {
  // The request id is the client's (any bytes a header value may hold); the context is ours.
  std::string body = "{\"error\":";
  AppendJsonString(body, ErrorKindName(error.kind));
  body.append(",\"message\":");
  AppendJsonString(body, error.context ? std::string_view(error.context) : std::string_view());
  body.append(",\"request_id\":");
  AppendJsonString(body, request_id);
  body.append("}\n");
  const int status = StatusFor(error.kind);
  AppendAnswerHead(status, {}, added, "application/json", body.size(), request_id, keep_alive, out);
  if (status != 204 && status != 304) out.append(body);
}

void AppendAnswerHead(int status, std::string_view fields, std::string_view added,
                      std::string_view content_type, size_t body_size, std::string_view request_id,
                      bool keep_alive, std::string& out) {
  char digits[24];
  auto number = [&digits](uint64_t n) {
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    return std::string_view(digits, static_cast<size_t>(end - digits));
  };
  out.append("HTTP/1.1 ");
  out.append(number(static_cast<uint64_t>(status)));
  out.push_back(' ');
  out.append(http::ReasonPhrase(status));
  if (!content_type.empty()) {
    out.append("\r\nContent-Type: ");
    out.append(content_type);
  }
  // No Content-Length on a status that has no content (RFC 9110 §8.6).
  if (status != 204 && status != 304) {
    out.append("\r\nContent-Length: ");
    out.append(number(body_size));
  }
  out.append("\r\n");
  out.append(fields);
  out.append(added);
  out.append("X-Request-Id: ");
  out.append(request_id);
  out.append(keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
}

}  // namespace ficus::proxy
