// The admin HTTP/1.1 server: liveness, readiness, the running config and the metrics
// scrape, on its own thread with its own event loop (never on a worker thread). Requests are
// parsed with ficus::http's strict parser; everything else here favours clarity over speed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/outcome.h"

namespace ficus::server {

// A request for the API endpoints beyond the built-in ones (AdminHandlers::api).
struct AdminRequest {
  std::string method;         // as sent (upper case for the standard ones)
  std::string path;           // without the query
  std::string query;          // after '?', raw (percent-encoded)
  std::string body;           // up to AdminOptions::max_body_bytes
  std::string authorization;  // the Authorization field value, if any
  std::string peer;           // the client's IP address
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;  // the Allow field (405): "GET, HEAD, POST"
};

// What the endpoints serve. Every handler runs on the admin thread, one request at a time, so
// it must be safe to call concurrently with the workers (not with itself). A handler that
// throws gets a 500 {"error":"internal"} (the exception text is logged, never sent). An empty
// handler: /ready answers ready (a server without a readiness check is ready when it
// listens), /config and /metrics answer 503 {"error":"unavailable"}.
struct AdminHandlers {
  std::function<bool()> ready;               // GET /ready: 200 {"ready":true} / 503 {"ready":false}
  std::function<std::string()> config_yaml;  // GET /config: text/yaml, secrets already redacted
  std::function<std::string()> metrics;      // GET /metrics: Prometheus text format 0.0.4
  // POST /config (body = a whole config in YAML): validate and apply it. Returns the diff
  // applied (JSON, answered with 200), or fails with the JSON document that says why
  // ({"applied":false,"errors":[...]}, answered with 400). Only requests whose Authorization
  // field `authorized` accepts get here (others: 401); both unset = 405.
  std::function<Outcome<std::string>(std::string_view yaml)> apply_config;
  std::function<bool(std::string_view authorization)> authorized;
  // Every request first (unset: all may read): false answers 401 before any handler runs. The
  // server refuses reads without the token when the admin listener is not loopback.
  std::function<bool(std::string_view path, std::string_view authorization)> may_read;
  // Every other path: the JSON API (admin_api.h). nullopt = 404. It answers HEAD like GET (the
  // server drops the body) and checks methods and the token itself.
  std::function<std::optional<AdminResponse>(const AdminRequest&)> api;
};

// Limits of the admin listener. The defaults are what ficus runs with; tests shorten them.
struct AdminOptions {
  // The whole request head must arrive within this, measured from the end of the previous
  // response (so it is also the keep-alive idle timeout). A partial head gets 408 and close;
  // an idle connection is just closed. The same budget bounds writing each response.
  std::chrono::milliseconds head_timeout{10'000};
  // Connections over this are answered 503 and closed at once.
  int max_connections = 64;
  // Request bodies are read and discarded up to this many bytes; larger ones get 413 and
  // close (Content-Length: before reading the body; chunked: as soon as the limit is passed).
  uint64_t max_body_bytes = 1024 * 1024;  // POST /config takes a whole config
  uint32_t max_head_bytes = 16 * 1024;    // over it: 431 and close
};

// Endpoints: GET|HEAD /live, /ready, /config, /metrics; POST /config (authenticated). Unknown path:
// 404
// {"error":"not_found","path":...}; another method on a known path: 405 with `Allow: GET,
// HEAD`; a malformed head: 400 (431, 501, 505 as the parser decides) and close. HTTP/1.1
// keep-alive and pipelining; HTTP/1.0 keep-alive when asked for.
//
// Thread safety: construct, Start, Stop and destroy from one controlling thread (not from a
// handler: Stop joins the admin thread). port() may be called from any thread.
class AdminServer {
 public:
  // Binds and listens immediately, so that a busy port fails startup: throws
  // std::runtime_error("admin listen 127.0.0.1:9901: Address already in use"). `address` is
  // an IP literal (IPv6 without brackets); port 0 picks an ephemeral port (see port()).
  AdminServer(const std::string& address, uint16_t port, AdminHandlers handlers,
              AdminOptions options = {});
  ~AdminServer();  // Stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  uint16_t port() const;  // the bound port
  // Starts the admin thread, which accepts and serves until Stop(). Call at most once.
  void Start();
  // Closes the listener and every connection (in-flight responses are cut), then joins the
  // admin thread. Idempotent; also fine without Start().
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// True iff `header_value` (an Authorization field value) is "Bearer <token>": the scheme
// case-insensitively, then one or more spaces, then exactly `token`. The token comparison
// takes time that depends only on token.size(), never on where the first difference is, so
// a client cannot guess the token byte by byte from response times. An empty `token` never
// matches (an unset admin token must not open the state-changing endpoints).
bool TokenMatches(std::string_view header_value, std::string_view token);

}  // namespace ficus::server
