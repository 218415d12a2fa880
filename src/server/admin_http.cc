// The admin server's responses and endpoints (its connections are in admin_server.cc).
#include "server/internal/admin_http.h"

#include <time.h>

#include <optional>

#include "base/json.h"
#include "base/log.h"

namespace ficus::server {
namespace admin_http {
namespace {

// {"error":"<code>"} plus one optional string field.
std::string JsonError(std::string_view code, std::string_view field = {},
                      std::string_view value = {}) {
  std::string out = "{\"error\":";
  AppendJsonString(out, code);
  if (!field.empty()) {
    out += ',';
    AppendJsonString(out, field);
    out += ':';
    AppendJsonString(out, value);
  }
  out += '}';
  return out;
}

// RFC 9110 §5.6.7 IMF-fixdate. strftime's %a/%b are the C locale's English names: ficus never
// calls setlocale.
std::string HttpDate() {
  time_t now = time(nullptr);
  tm t;
  gmtime_r(&now, &t);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &t);
  return std::string(buf, n);
}

}  // namespace

Response ErrorResponse(int status, std::string_view code, std::string_view field,
                       std::string_view value) {
  Response r;
  r.status = status;
  r.body = JsonError(code, field, value);
  return r;
}

std::string Serialize(const Response& r, bool head_only, bool keep_alive, bool http10) {
  std::string out;
  out.reserve(160 + (head_only ? 0 : r.body.size()));
  out += "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  out += http::ReasonPhrase(r.status);
  out += "\r\nDate: ";
  out += HttpDate();
  out += "\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  out += std::to_string(r.body.size());  // also for HEAD: the length a GET would get
  out += "\r\nCache-Control: no-store\r\n";
  if (!r.allow.empty()) {
    out += "Allow: ";
    out += r.allow;
    out += "\r\n";
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

int StatusFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kHeadTooLarge:
      return 431;
    case ErrorKind::kBodyTooLarge:
      return 413;
    case ErrorKind::kNotImplemented:
      return 501;
    case ErrorKind::kBadVersion:
      return 505;
    default:
      return 400;
  }
}

Response Dispatch(const Request& req, const AdminHandlers& h) {
  enum class Endpoint { kLive, kReady, kConfig, kMetrics };
  std::optional<Endpoint> endpoint;
  if (req.path == "/live") endpoint = Endpoint::kLive;
  if (req.path == "/ready") endpoint = Endpoint::kReady;
  if (req.path == "/config") endpoint = Endpoint::kConfig;
  if (req.path == "/metrics") endpoint = Endpoint::kMetrics;
  if (h.may_read && !h.may_read(req.path, req.authorization)) {
    return ErrorResponse(401, "unauthorized", "detail",
                         "this admin listener is not loopback: Authorization: Bearer "
                         "<admin.token> is required");
  }
  // POST /config goes to the API first: there it is audited like every state change.
  const bool post_config = endpoint == Endpoint::kConfig && req.method == http::Method::kPost;
  if ((!endpoint || post_config) && h.api) {
    try {
      AdminRequest api{req.method_text, req.path, req.query, req.body, req.authorization, req.peer};
      if (std::optional<AdminResponse> a = h.api(api)) {
        Response r;
        r.status = a->status;
        r.content_type = a->content_type;
        r.body = std::move(a->body);
        r.allow = std::move(a->allow);
        return r;
      }
    } catch (const std::exception& e) {
      log::error("admin {} {}: {}", req.method_text, req.path, e.what());
      return ErrorResponse(500, "internal");
    }
  }
  if (!endpoint) return ErrorResponse(404, "not_found", "path", req.path);
  if (endpoint == Endpoint::kConfig && req.method == http::Method::kPost && h.apply_config) {
    if (!h.authorized || !h.authorized(req.authorization)) {
      return ErrorResponse(401, "unauthorized", "detail",
                           "POST /config needs Authorization: Bearer <admin.token>");
    }
    try {
      Outcome<std::string> applied = h.apply_config(req.body);
      Response r;
      r.status = applied ? 200 : 400;
      r.body = applied ? std::move(applied).value() : applied.message();
      return r;
    } catch (const std::exception& e) {
      log::error("admin POST /config: {}", e.what());
      return ErrorResponse(500, "internal");
    }
  }
  if (req.method != http::Method::kGet && req.method != http::Method::kHead) {
    Response r = ErrorResponse(405, "method_not_allowed", "method", req.method_text);
    r.allow = endpoint == Endpoint::kConfig && h.apply_config != nullptr ? "GET, HEAD, POST"
                                                                         : "GET, HEAD";
    return r;
  }
  Response r;
  try {
    switch (*endpoint) {
      case Endpoint::kLive:
        r.body = R"({"live":true})";
        break;
      case Endpoint::kReady: {
        bool ready = !h.ready || h.ready();
        r.status = ready ? 200 : 503;
        r.body = ready ? R"({"ready":true})" : R"({"ready":false})";
        break;
      }
      case Endpoint::kConfig:
        if (!h.config_yaml) return ErrorResponse(503, "unavailable");
        r.content_type = "text/yaml; charset=utf-8";
        r.body = h.config_yaml();
        break;
      case Endpoint::kMetrics:
        if (!h.metrics) return ErrorResponse(503, "unavailable");
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = h.metrics();
        break;
    }
  } catch (const std::exception& e) {
    log::error("admin {} {}: {}", req.method_text, req.path, e.what());
    return ErrorResponse(500, "internal");
  } catch (...) {
    log::error("admin {} {}: unknown exception", req.method_text, req.path);
    return ErrorResponse(500, "internal");
  }
  return r;
}

}  // namespace admin_http

bool TokenMatches(std::string_view header_value, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer";
  if (token.empty() || header_value.size() <= kScheme.size() ||
      !http::EqualsIgnoreCase(header_value.substr(0, kScheme.size()), kScheme) ||
      header_value[kScheme.size()] != ' ') {
    return false;
  }
  std::string_view given = header_value.substr(kScheme.size());
  while (!given.empty() && given.front() == ' ') given.remove_prefix(1);
  // Visit every byte of `token` whatever `given` holds; volatile keeps the compiler from
  // turning the accumulation into an early exit.
  volatile unsigned char diff = given.size() != token.size() ? 1 : 0;
  for (size_t i = 0; i < token.size(); ++i) {
    unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff = diff | (g ^ static_cast<unsigned char>(token[i]));
  }
  return diff == 0;
}

}  // namespace ficus::server
