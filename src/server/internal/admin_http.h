// The admin server's HTTP side, apart from its connections: the request it hands on, the
// responses it writes, and which endpoint answers what.
#pragma once

#include <string>
#include <string_view>

#include "base/base.h"
#include "http/http.h"
#include "server/internal/admin_server.h"

namespace ficus::server::admin_http {

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;   // the Allow field (405)
  bool close = false;  // close the connection after this response
};

// What the endpoints need from a request head, copied out of the connection's buffer (which
// is reused for the body and the next request).
struct Request {
  http::Method method = http::Method::kOther;
  std::string method_text;
  std::string path;
  std::string query;
  std::string body;
  std::string peer;
  std::string authorization;  // for the state-changing endpoints (TokenMatches)
  bool keep_alive = true;
  bool http10 = false;
};

// A JSON error body {"error":"<code>"} (plus one optional string field) with `status`.
Response ErrorResponse(int status, std::string_view code, std::string_view field = {},
                       std::string_view value = {});
// The status of a request the head parser refused.
int StatusFor(ErrorKind kind);
// Head and body as sent (a HEAD gets the head only, with the length a GET would get).
std::string Serialize(const Response& r, bool head_only, bool keep_alive, bool http10);
// The built-in endpoints, then the JSON API (AdminHandlers::api); handlers that throw get 500.
Response Dispatch(const Request& req, const AdminHandlers& h);

}  // namespace ficus::server::admin_http
