#include "http/internal/fields.h"

#include "http/internal/chars.h"

namespace ficus::http::internal {
namespace {

// Content-Length = 1*DIGIT, or a list of identical values (RFC 9110 §8.6). Empty list
// elements are refused: nothing legitimate sends them here.
const char* ParseContentLength(std::string_view v, uint64_t* out) {
  const char* p = v.data();
  const char* const e = p + v.size();
  bool have = false;
  uint64_t first = 0;
  for (;;) {
    while (p < e && IsOws(*p)) ++p;
    if (p == e || !IsDigit(static_cast<unsigned char>(*p))) return "invalid Content-Length";
    uint64_t n = 0;
    while (p < e && IsDigit(static_cast<unsigned char>(*p))) {
      const uint64_t d = static_cast<uint64_t>(*p - '0');
      if (n > (UINT64_MAX - d) / 10) return "Content-Length overflow";
      n = n * 10 + d;
      ++p;
    }
    if (have && n != first) return "conflicting Content-Length values";
    first = n;
    have = true;
    while (p < e && IsOws(*p)) ++p;
    if (p == e) break;
    if (*p != ',') return "invalid Content-Length";
    ++p;
  }
  *out = first;
  return nullptr;
}

// Calls f(element) for each element of a comma-separated list, OWS trimmed (possibly empty).
template <class F>
bool ForEachElement(std::string_view v, F&& f) {
  size_t i = 0;
  for (;;) {
    const size_t comma = v.find(',', i);
    const std::string_view el =
        TrimOws(v.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    if (!f(el)) return false;
    if (comma == std::string_view::npos) return true;
    i = comma + 1;
  }
}

// Transfer-Encoding = #transfer-coding; only bare tokens are accepted (a coding with
// parameters, or an empty element, is refused rather than guessed at).
bool AddCodings(std::string_view v, FieldSummary& s) {
  return ForEachElement(v, [&s](std::string_view el) {
    if (!IsToken(el)) return false;
    if (EqualsLower(el, "chunked")) {
      ++s.te_chunked;
      s.te_last_chunked = true;
    } else {
      ++s.te_other;
      if (EqualsLower(el, "gzip") || EqualsLower(el, "x-gzip")) {
        ++s.te_gzip;
      } else if (EqualsLower(el, "deflate")) {
        ++s.te_deflate;
      }
      s.te_last_chunked = false;
    }
    return true;
  });
}

bool IsStandardConnectionOption(std::string_view tok) {
  return EqualsLower(tok, "close") || EqualsLower(tok, "keep-alive") || EqualsLower(tok, "upgrade");
}

// Connection = #connection-option; empty elements are ignored (RFC 9110 §5.6.1.2).
const char* AddConnection(std::string_view v, FieldSummary& s) {
  const char* error = nullptr;
  ForEachElement(v, [&](std::string_view el) {
    if (el.empty()) return true;
    if (!IsToken(el)) {
      error = "malformed Connection header";
      return false;
    }
    if (EqualsLower(el, "close")) {
      s.conn_close = true;
    } else if (EqualsLower(el, "keep-alive")) {
      s.conn_keep_alive = true;
    } else if (EqualsLower(el, "upgrade")) {
      s.conn_upgrade = true;
    } else if (++s.conn_options > kMaxConnectionOptions) {
      error = "too many Connection options";
      return false;
    }
    return true;
  });
  return error;
}

}  // namespace

KnownField ClassifyField(std::string_view n) {
  switch (n.size()) {
    case 2:
      return EqualsLower(n, "te") ? KnownField::kTe : KnownField::kOther;
    case 3:
      return EqualsLower(n, "via") ? KnownField::kVia : KnownField::kOther;
    case 4:
      return EqualsLower(n, "host") ? KnownField::kHost : KnownField::kOther;
    case 6:
      return EqualsLower(n, "expect") ? KnownField::kExpect : KnownField::kOther;
    case 7:
      if (EqualsLower(n, "upgrade")) return KnownField::kUpgrade;
      if (EqualsLower(n, "trailer")) return KnownField::kTrailer;
      return KnownField::kOther;
    case 10:
      if (EqualsLower(n, "connection")) return KnownField::kConnection;
      if (EqualsLower(n, "keep-alive")) return KnownField::kKeepAlive;
      if (EqualsLower(n, "user-agent")) return KnownField::kUserAgent;
      if (EqualsLower(n, "tracestate")) return KnownField::kTracestate;
      return KnownField::kOther;
    case 11:
      return EqualsLower(n, "traceparent") ? KnownField::kTraceparent : KnownField::kOther;
    case 12:
      return EqualsLower(n, "x-request-id") ? KnownField::kXRequestId : KnownField::kOther;
    case 13:
      return EqualsLower(n, "authorization") ? KnownField::kAuthorization : KnownField::kOther;
    case 14:
      return EqualsLower(n, "content-length") ? KnownField::kContentLength : KnownField::kOther;
    case 15:
      return EqualsLower(n, "x-forwarded-for") ? KnownField::kXForwardedFor : KnownField::kOther;
    case 16:
      if (EqualsLower(n, "x-forwarded-host")) return KnownField::kXForwardedHost;
      if (EqualsLower(n, "proxy-connection")) return KnownField::kProxyConnection;
      return KnownField::kOther;
    case 17:
      if (EqualsLower(n, "transfer-encoding")) return KnownField::kTransferEncoding;
      if (EqualsLower(n, "x-forwarded-proto")) return KnownField::kXForwardedProto;
      return KnownField::kOther;
    default:
      return KnownField::kOther;
  }
}

HeaderRole RoleOf(KnownField f) {
  switch (f) {
    case KnownField::kOther:
      return HeaderRole::kOther;
    case KnownField::kHost:
      return HeaderRole::kHost;
    case KnownField::kContentLength:
      return HeaderRole::kContentLength;
    case KnownField::kTransferEncoding:
      return HeaderRole::kTransferEncoding;
    case KnownField::kConnection:
    case KnownField::kKeepAlive:
    case KnownField::kProxyConnection:
    case KnownField::kTe:
    case KnownField::kTrailer:
    case KnownField::kUpgrade:
      return HeaderRole::kHopByHop;
    case KnownField::kExpect:
      return HeaderRole::kExpect;
    case KnownField::kXForwardedFor:
      return HeaderRole::kXForwardedFor;
    case KnownField::kXForwardedProto:
      return HeaderRole::kXForwardedProto;
    case KnownField::kXForwardedHost:
      return HeaderRole::kXForwardedHost;
    case KnownField::kXRequestId:
      return HeaderRole::kXRequestId;
    case KnownField::kVia:
      return HeaderRole::kVia;
    case KnownField::kTraceparent:
      return HeaderRole::kTraceparent;
    case KnownField::kTracestate:
      return HeaderRole::kTracestate;
    case KnownField::kUserAgent:
    case KnownField::kAuthorization:
      return HeaderRole::kOther;
  }
  return HeaderRole::kOther;
}

const char* SummarizeFields(std::span<Header> fields, FieldSummary& s) {
  s.Clear();
  for (Header& h : fields) {
    const KnownField k = ClassifyField(h.name);
    h.role = RoleOf(k);
    switch (k) {
      case KnownField::kOther:
        break;
      case KnownField::kHost:
        if (s.host_count++ == 0) s.host = h.value;
        break;
      case KnownField::kContentLength: {
        uint64_t v = 0;
        if (const char* err = ParseContentLength(h.value, &v)) return err;
        if (s.has_content_length && v != s.content_length) {
          return "conflicting Content-Length values";
        }
        s.has_content_length = true;
        s.content_length = v;
        break;
      }
      case KnownField::kTransferEncoding:
        s.has_transfer_encoding = true;
        if (!AddCodings(h.value, s)) return "malformed Transfer-Encoding";
        break;
      case KnownField::kConnection:
        if (const char* err = AddConnection(h.value, s)) return err;
        break;
      case KnownField::kUpgrade:
        if (!s.has_upgrade) {
          s.has_upgrade = true;
          s.upgrade = h.value;
        }
        break;
      case KnownField::kExpect:
        if (EqualsLower(h.value, "100-continue")) s.expect_continue = true;
        break;
      case KnownField::kXRequestId:
        if (!s.has_request_id) {
          s.has_request_id = true;
          s.request_id = h.value;
        }
        break;
      case KnownField::kUserAgent:
        if (s.user_agent.empty()) s.user_agent = h.value;
        break;
      case KnownField::kTraceparent:
        if (s.traceparent_count++ == 0) s.traceparent = h.value;
        break;
      case KnownField::kTracestate:
        ++s.tracestate_count;
        break;
      case KnownField::kAuthorization:
        ++s.authorization_count;
        break;
      default:
        break;
    }
  }
  return nullptr;
}

void MarkConnectionOptions(std::span<Header> fields) {
  for (const Header& c : fields) {
    if (ClassifyField(c.name) != KnownField::kConnection) continue;
    ForEachElement(c.value, [fields](std::string_view tok) {
      if (tok.empty() || IsStandardConnectionOption(tok)) return true;
      for (Header& h : fields) {
        if (h.role == HeaderRole::kHost || h.role == HeaderRole::kContentLength ||
            h.role == HeaderRole::kTransferEncoding) {
          continue;
        }
        if (EqualsIgnoreCase(h.name, tok)) h.role = HeaderRole::kHopByHop;
      }
      return true;
    });
  }
}

const char* CheckTransferCodings(const FieldSummary& s, bool* not_implemented) {
  *not_implemented = false;
  if (!s.te_last_chunked) return "final transfer coding is not chunked";
  if (s.te_chunked > 1) return "chunked applied more than once";
  if (s.te_other > 0) {
    *not_implemented = true;
    return "transfer coding other than chunked";
  }
  return nullptr;
}

bool IsValidAuthority(std::string_view s, bool require_port) {
  if (s.empty()) return false;
  size_t i = 0;
  if (s[0] == '[') {  // IP-literal
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (size_t j = 1; j < close; ++j) {
      const unsigned char c = static_cast<unsigned char>(s[j]);
      if (!kAuthority[c] || c == '[') return false;
    }
    i = close + 1;
  } else {  // reg-name
    while (i < s.size()) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (kRegName[c]) {
        ++i;
      } else if (c == ':') {
        break;
      } else if (c == '%' && i + 2 < s.size() &&
                 HexValue(static_cast<unsigned char>(s[i + 1])) >= 0 &&
                 HexValue(static_cast<unsigned char>(s[i + 2])) >= 0) {
        i += 3;
      } else {
        return false;
      }
    }
    if (i == 0) return false;
  }
  if (i == s.size()) return !require_port;
  if (s[i] != ':') return false;
  const std::string_view port = s.substr(i + 1);
  if (port.size() > 5 || (require_port && port.empty())) return false;
  for (char c : port) {
    if (!IsDigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace ficus::http::internal
