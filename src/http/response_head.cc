// ficus::http — ResponseHeadParser: status line, then framing (RFC 9112 §6.3) from the
// request method, the status and the framing fields. Every error blames the upstream.
#include "http/http.h"
#include "http/internal/fields.h"
#include "http/internal/head_lexer.h"

namespace ficus::http {
namespace {

Unexpected Bad(const char* context) {
  return Fail(ErrorKind::kUpstreamProtocol, Side::kUpstream, context);
}

}  // namespace

Result<size_t> ResponseHeadParser::Parse(std::string_view buf, Method request_method,
                                         ResponseHead& out) {
  using internal::LexStatus;
  internal::LexResult lx;
  const LexStatus status =
      internal::LexHead(internal::HeadKind::kResponse, buf, limits_, storage_, progress_, lx);
  if (status == LexStatus::kIncomplete) return size_t{0};
  // A too-large response head is also a protocol error: it is the upstream's fault, and the
  // client must get a 502, not a 431.
  if (status != LexStatus::kComplete) return Bad(lx.context);

  out = ResponseHead{};
  out.status = lx.start.status;
  out.version_minor = lx.start.version_minor;
  out.reason = lx.start.reason;

  const std::span<Header> fields = storage_.first(lx.field_count);
  internal::FieldSummary s;
  if (const char* err = internal::SummarizeFields(fields, s)) return Bad(err);
  const bool http11 = out.version_minor == 1;
  if (s.has_transfer_encoding) {
    if (s.has_content_length) return Bad("both Transfer-Encoding and Content-Length");
    if (!http11) return Bad("Transfer-Encoding in an HTTP/1.0 response");
    // One compression coding under the final chunked ("gzip, chunked") is valid and is decoded
    // on the way to the client (RFC 9112 §7); anything else is refused like a malformed field.
    bool not_implemented = false;
    if (const char* err = internal::CheckTransferCodings(s, &not_implemented)) {
      if (!not_implemented || s.te_other != 1 || s.te_gzip + s.te_deflate != 1) return Bad(err);
      out.transfer_coding = s.te_gzip ? TransferCoding::kGzip : TransferCoding::kDeflate;
    }
  }
  if (s.has_content_length) out.content_length = s.content_length;

  const uint16_t st = out.status;
  const bool no_body = request_method == Method::kHead || st < 200 || st == 204 || st == 304 ||
                       (request_method == Method::kConnect && st < 300);
  if (no_body) {
    out.framing = BodyFraming::kNone;
  } else if (s.has_transfer_encoding) {
    out.framing = BodyFraming::kChunked;
  } else if (s.has_content_length) {
    out.framing = BodyFraming::kContentLength;
  } else {
    out.framing = BodyFraming::kUntilClose;
  }
  out.keep_alive = (http11 ? !s.conn_close : (s.conn_keep_alive && !s.conn_close)) &&
                   out.framing != BodyFraming::kUntilClose;
  if (s.conn_options > 0) internal::MarkConnectionOptions(fields);
  out.headers = fields;
  out.head_size = lx.head_size;
  return size_t{lx.head_size};
}

}  // namespace ficus::http
