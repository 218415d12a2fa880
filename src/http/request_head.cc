// ficus::http — RequestHeadParser: request line and target forms (RFC 9112 §3), then the
// fields that decide routing, framing and the connection (RFC 9112 §6, RFC 9110 §7).
#include <algorithm>
#include <cstring>

#include "http/http.h"
#include "http/internal/chars.h"
#include "http/internal/fields.h"
#include "http/internal/head_lexer.h"

namespace ficus::http {
namespace {

Unexpected Bad(const char* context) {
  return Fail(ErrorKind::kBadRequest, Side::kDownstream, context);
}

void SplitPathQuery(std::string_view pq, RequestHead& out) {
  const size_t q = pq.find('?');
  if (q == std::string_view::npos) {
    out.path = pq;
  } else {
    out.path = pq.substr(0, q);
    out.query = pq.substr(q + 1);
  }
}

// Fills path and query from out.target; *authority is set for absolute- and authority-form.
const char* ParseTarget(RequestHead& out, std::string_view* authority) {
  const std::string_view t = out.target;  // non-empty, VCHARs only (the lexer checked)
  if (std::memchr(t.data(), '#', t.size()) != nullptr) return "fragment in request-target";
  if (t[0] == '/') {  // origin-form
    if (out.method == Method::kConnect) return "CONNECT requires authority-form";
    SplitPathQuery(t, out);
    return nullptr;
  }
  if (t == "*") {  // asterisk-form
    if (out.method != Method::kOptions) return "asterisk-form is only for OPTIONS";
    out.path = t;
    return nullptr;
  }
  if (out.method == Method::kConnect) {  // authority-form
    if (!internal::IsValidAuthority(t, /*require_port=*/true)) return "invalid CONNECT authority";
    *authority = t;
    return nullptr;
  }
  // absolute-form: only http and https URIs make sense to a gateway.
  size_t scheme = 0;
  if (t.size() >= 7 && internal::EqualsLower(t.substr(0, 7), "http://")) {
    scheme = 7;
  } else if (t.size() >= 8 && internal::EqualsLower(t.substr(0, 8), "https://")) {
    scheme = 8;
  } else {
    return "unsupported request-target form";
  }
  const std::string_view rest = t.substr(scheme);
  const size_t a_end = rest.find_first_of("/?");
  const std::string_view auth = rest.substr(0, a_end);
  if (!internal::IsValidAuthority(auth, /*require_port=*/false)) {
    return "invalid authority in request-target";
  }
  *authority = auth;
  if (a_end == std::string_view::npos) {
    out.path = "/";
    return nullptr;
  }
  SplitPathQuery(rest.substr(a_end), out);
  if (out.path.empty()) out.path = "/";
  return nullptr;
}

// out = RequestHead{}, spelled out: g++ compiles the aggregate assignment to a `rep stos`
// whose start-up cost alone was a tenth of parsing a short head.
void ResetHead(RequestHead& h) {
  h.method = Method::kOther;
  h.method_text = {};
  h.target = {};
  h.path = {};
  h.query = {};
  h.version_minor = 1;
  h.host = {};
  h.framing = BodyFraming::kNone;
  h.content_length = 0;
  h.keep_alive = true;
  h.expect_continue = false;
  h.upgrade = false;
  h.upgrade_protocol = {};
  h.request_id = {};
  h.user_agent = {};
  h.traceparent = {};
  h.traceparent_count = 0;
  h.tracestate_count = 0;
  h.headers = {};
  h.head_size = 0;
}

}  // namespace

Result<size_t> RequestHeadParser::Parse(std::string_view buf, RequestHead& out) {
  using internal::LexStatus;
  internal::LexResult lx;
  const LexStatus status =
      internal::LexHead(internal::HeadKind::kRequest, buf, limits_, storage_, progress_, lx);
  switch (status) {
    case LexStatus::kIncomplete:
      return size_t{0};
    case LexStatus::kComplete:
      break;
    case LexStatus::kMalformed:
      return Bad(lx.context);
    case LexStatus::kTooLarge:
      return Fail(ErrorKind::kHeadTooLarge, Side::kDownstream, lx.context);
    case LexStatus::kBadVersion:
      return Fail(ErrorKind::kBadVersion, Side::kDownstream, lx.context);
  }

  ResetHead(out);
  out.method_text = lx.start.method;
  out.method = ParseMethod(lx.start.method);
  out.target = lx.start.target;
  out.version_minor = lx.start.version_minor;
  std::string_view authority;
  if (const char* err = ParseTarget(out, &authority)) return Bad(err);

  const std::span<Header> fields = storage_.first(lx.field_count);
  internal::FieldSummary s;
  if (const char* err = internal::SummarizeFields(fields, s)) return Bad(err);
  // Two credentials: a gateway and its upstream could each believe a different one.
  if (s.authorization_count > 1) return Bad("more than one Authorization field");
  const bool http11 = out.version_minor == 1;
  if (s.host_count > 1) return Bad("multiple Host fields");
  if (s.host_count == 0 && http11) return Bad("missing Host");
  if (!s.host.empty() && !internal::IsValidAuthority(s.host, /*require_port=*/false)) {
    return Bad("invalid Host");
  }
  if (s.has_transfer_encoding) {
    if (s.has_content_length) return Bad("both Transfer-Encoding and Content-Length");
    if (!http11) return Bad("Transfer-Encoding in an HTTP/1.0 request");
    bool not_implemented = false;
    if (const char* err = internal::CheckTransferCodings(s, &not_implemented)) {
      return not_implemented ? Fail(ErrorKind::kNotImplemented, Side::kDownstream, err) : Bad(err);
    }
    out.framing = BodyFraming::kChunked;
  } else if (s.has_content_length) {
    out.framing = BodyFraming::kContentLength;
    out.content_length = s.content_length;
  }

  // RFC 9112 §3.2.2: an absolute-form (or CONNECT's authority-form) target overrides Host.
  out.host = authority.empty() ? s.host : authority;
  out.keep_alive = http11 ? !s.conn_close : (s.conn_keep_alive && !s.conn_close);
  // RFC 9110 §10.1.1 and §7.8: Expect and Upgrade are ignored in HTTP/1.0 requests.
  out.expect_continue = http11 && s.expect_continue;
  out.upgrade = http11 && s.conn_upgrade && s.has_upgrade;
  if (out.upgrade) out.upgrade_protocol = s.upgrade;
  out.request_id = s.request_id;
  out.user_agent = s.user_agent;
  out.traceparent = s.traceparent;
  out.traceparent_count = static_cast<uint8_t>(std::min<uint32_t>(s.traceparent_count, 255));
  out.tracestate_count = static_cast<uint8_t>(std::min<uint32_t>(s.tracestate_count, 255));
  out.underscore_names = lx.underscore_names;
  if (s.conn_options > 0) internal::MarkConnectionOptions(fields);
  out.headers = fields;
  out.head_size = lx.head_size;
  return size_t{lx.head_size};
}

}  // namespace ficus::http
