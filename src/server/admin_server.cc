#include "server/internal/admin_server.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_set>

#include "base/base.h"
#include "base/json.h"
#include "base/log.h"
#include "http/http.h"

namespace ficus::server {
namespace {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kMaxHeaderCount = 64;
// After a response that closes the connection: how long and how much to keep reading (and
// discarding) what the client still sends, so that closing does not reset the connection and
// destroy the response before the client reads it.
constexpr auto kLingerTime = std::chrono::milliseconds(1000);
constexpr size_t kLingerBytes = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// Responses

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string allow;   // the Allow field (405)
  bool close = false;  // close the connection after this response
};

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

Response ErrorResponse(int status, std::string_view code, std::string_view field = {},
                       std::string_view value = {}) {
  Response r;
  r.status = status;
  r.body = JsonError(code, field, value);
  return r;
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

// ---------------------------------------------------------------------------------------------
// Endpoints

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
      auto [status, body] = h.apply_config(req.body);
      Response r;
      r.status = status;
      r.body = std::move(body);
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

// ---------------------------------------------------------------------------------------------
// Connections

struct Conn {
  explicit Conn(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer timer;  // the deadline of the current request or response
  bool timed_out = false;
};

void LogException(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("admin server: {}", ex.what());
  } catch (...) {
    log::error("admin server: unknown exception");
  }
}

}  // namespace

// Everything below runs on the admin thread, except the constructor, Start and Stop (the
// controlling thread; they touch the io_context only through post and join).
class AdminServer::Impl {
 public:
  Impl(const std::string& address, uint16_t port, AdminHandlers handlers, AdminOptions options)
      : handlers_(std::move(handlers)), options_(options) {
    ErrorCode ec;
    asio::ip::address ip = asio::ip::make_address(address, ec);
    const std::string host = !ec && ip.is_v6() ? "[" + address + "]" : address;
    where_ = host + ":" + std::to_string(port);
    auto fail = [&](const std::string& why) {
      throw std::runtime_error("admin listen " + where_ + ": " + why);
    };
    if (ec) fail("not an IP address");
    tcp::endpoint ep(ip, port);
    acceptor_.open(ep.protocol(), ec);
    if (ec) fail(ec.message());
    acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);  // restart over TIME_WAIT
    if (ec) fail(ec.message());
    acceptor_.bind(ep, ec);
    if (ec) fail(ec.message());
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail(ec.message());
    port_ = acceptor_.local_endpoint().port();
    where_ = host + ":" + std::to_string(port_);
  }

  uint16_t port() const { return port_; }

  void Start() {
    std::lock_guard lock(mu_);
    if (started_ || stopped_) return;
    started_ = true;
    asio::co_spawn(io_, Accept(), LogException);
    thread_ = std::thread([this] {
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {  // a handler threw past its coroutine: keep serving
          log::error("admin server: {}", e.what());
        }
      }
    });
  }

  void Stop() {
    std::unique_lock lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    if (!started_) {
      ErrorCode ec;
      acceptor_.close(ec);
      return;
    }
    lock.unlock();
    // Closing the listener and every socket completes every pending operation, so each
    // coroutine ends and io_.run() returns by itself.
    asio::post(io_, [this] { CloseAll(); });
    thread_.join();
  }

 private:
  void CloseAll() {
    stopping_ = true;
    ErrorCode ec;
    acceptor_.close(ec);
    accept_backoff_.cancel();
    for (Conn* c : conns_) {
      c->socket.close(ec);
      c->timer.cancel();
    }
  }

  awaitable<void> Accept() {
    for (;;) {
      ErrorCode ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (stopping_) co_return;
      if (ec) {
        // Out of file descriptors and the like: say so, wait a little, try again.
        log::warn("admin accept on {}: {}", where_, ec.message());
        accept_backoff_.expires_after(std::chrono::milliseconds(100));
        co_await accept_backoff_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (stopping_) co_return;
        continue;
      }
      if (static_cast<int>(conns_.size()) >= options_.max_connections) {
        RejectBusy(socket);
        continue;
      }
      auto conn = std::make_shared<Conn>(std::move(socket));
      conns_.insert(conn.get());  // now, not when Serve starts: the limit must hold in a burst
      asio::co_spawn(io_, Serve(conn), LogException);
    }
  }

  // Over the connection limit: one non-blocking write of a 503, then close.
  static void RejectBusy(tcp::socket& socket) {
    const std::string response =
        Serialize(ErrorResponse(503, "too_many_connections"), false, false, false);
    ErrorCode ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(response), ec);
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  // Starts (or restarts) the connection's deadline. When it passes, pending operations on the
  // socket are cancelled and `timed_out` tells the coroutine why.
  void Arm(const std::shared_ptr<Conn>& c, Clock::duration d) {
    if (stopping_) return;
    c->timed_out = false;
    c->timer.expires_after(d);
    c->timer.async_wait([c](const ErrorCode& ec) {
      // A wait that completed just before a re-arm still runs: check the current expiry.
      if (ec || c->timer.expiry() > Clock::now()) return;
      c->timed_out = true;
      ErrorCode ignored;
      c->socket.cancel(ignored);
    });
  }

  // Appends what the socket has to `buf`; false on EOF, error, timeout or stop.
  static awaitable<bool> ReadMore(Conn& c, std::string& buf) {
    constexpr size_t kReadSize = 4096;
    const size_t old_size = buf.size();
    buf.resize(old_size + kReadSize);
    ErrorCode ec;
    size_t n = co_await c.socket.async_read_some(asio::buffer(buf.data() + old_size, kReadSize),
                                                 asio::redirect_error(asio::use_awaitable, ec));
    buf.resize(old_size + (ec ? 0 : n));
    co_return !ec;
  }

  awaitable<bool> Write(const std::shared_ptr<Conn>& c, const std::string& bytes) {
    Arm(c, options_.head_timeout);
    ErrorCode ec;
    co_await asio::async_write(c->socket, asio::buffer(bytes),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec && !stopping_;
  }

  // Sends `r` with Connection: close and closes gracefully: stop sending, then read and
  // discard for a moment so that unread request bytes do not turn the close into a reset.
  awaitable<void> FinishWith(const std::shared_ptr<Conn>& c, Response r, bool head_only) {
    if (stopping_) co_return;
    if (!co_await Write(c, Serialize(r, head_only, /*keep_alive=*/false, /*http10=*/false))) {
      co_return;
    }
    ErrorCode ec;
    c->socket.shutdown(tcp::socket::shutdown_send, ec);
    Arm(c, kLingerTime);
    std::string sink;
    size_t discarded = 0;
    while (discarded < kLingerBytes && co_await ReadMore(*c, sink)) {
      discarded += sink.size();
      sink.clear();
    }
  }

  awaitable<void> Serve(std::shared_ptr<Conn> c) {
    struct Unregister {
      Impl* self;
      Conn* conn;
      ~Unregister() {
        self->conns_.erase(conn);
        ErrorCode ec;
        conn->socket.close(ec);
        conn->timer.cancel();  // releases the deadline handler's reference to the Conn
      }
    } unregister{this, c.get()};

    std::array<http::Header, kMaxHeaderCount> storage;
    http::Limits limits;
    limits.max_head_bytes = options_.max_head_bytes;
    limits.max_header_count = kMaxHeaderCount;
    http::RequestHeadParser parser(limits, storage);
    std::string buf;  // bytes received and not yet consumed

    while (!stopping_) {
      // Read head: the whole request must arrive within head_timeout of the previous response.
      Arm(c, options_.head_timeout);
      parser.Reset();
      http::RequestHead head;
      size_t head_size = 0;
      while (head_size == 0) {
        if (!buf.empty()) {
          Result<size_t> parsed = parser.Parse(buf, head);
          if (!parsed) {
            const Error& e = parsed.error();
            co_await FinishWith(
                c, ErrorResponse(StatusFor(e.kind), ErrorKindName(e.kind), "detail", e.context),
                false);
            co_return;
          }
          head_size = *parsed;
          if (head_size != 0) break;
        }
        if (!co_await ReadMore(*c, buf)) {
          // A started head that timed out gets a 408; an idle keep-alive connection just closes.
          if (c->timed_out && !buf.empty()) {
            co_await FinishWith(c, ErrorResponse(408, "head_timeout"), false);
          }
          co_return;
        }
      }

      Request req;
      req.method = head.method;
      req.method_text = head.method_text;
      req.path = head.path;
      req.query = head.query;
      {
        ErrorCode ec;
        auto ep = c->socket.remote_endpoint(ec);
        if (!ec) req.peer = ep.address().to_string();
      }
      req.keep_alive = head.keep_alive;
      req.http10 = head.version_minor == 0;
      for (const http::Header& h : head.headers) {
        if (http::EqualsIgnoreCase(h.name, "authorization")) req.authorization = h.value;
      }
      const bool head_only = req.method == http::Method::kHead;
      const http::BodyFraming framing = head.framing;
      const uint64_t content_length = head.content_length;
      const bool expect_continue = head.expect_continue;
      buf.erase(0, head_size);  // `head` points into buf: not used past this line

      // Read the body (POST /events takes one), within max_body_bytes.
      if (framing == http::BodyFraming::kContentLength &&
          content_length > options_.max_body_bytes) {
        co_await FinishWith(c, ErrorResponse(413, "body_too_large"), head_only);
        co_return;
      }
      if (expect_continue && !req.http10 && framing != http::BodyFraming::kNone &&
          !(framing == http::BodyFraming::kContentLength && content_length == 0)) {
        if (!co_await Write(c, "HTTP/1.1 100 Continue\r\n\r\n")) co_return;
        Arm(c, options_.head_timeout);
      }
      if (framing == http::BodyFraming::kContentLength) {
        uint64_t remaining = content_length;
        for (;;) {
          size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
          req.body.append(buf, 0, take);
          buf.erase(0, take);
          remaining -= take;
          if (remaining == 0) break;
          if (!co_await ReadMore(*c, buf)) {
            if (c->timed_out) co_await FinishWith(c, ErrorResponse(408, "body_timeout"), false);
            co_return;
          }
        }
      } else if (framing == http::BodyFraming::kChunked) {
        http::ChunkedScanner::Limits body_limits;
        body_limits.max_body_bytes = options_.max_body_bytes;
        http::ChunkedScanner scanner(body_limits);
        for (;;) {
          if (!buf.empty()) {
            Result<size_t> scanned = scanner.Scan(
                buf,
                [](void* body, std::string_view piece) {
                  static_cast<std::string*>(body)->append(piece);
                },
                &req.body);
            if (!scanned) {
              const Error& e = scanned.error();
              co_await FinishWith(
                  c, ErrorResponse(StatusFor(e.kind), ErrorKindName(e.kind), "detail", e.context),
                  head_only);
              co_return;
            }
            buf.erase(0, *scanned);
            if (scanner.done()) break;
          }
          if (!co_await ReadMore(*c, buf)) {
            if (c->timed_out) co_await FinishWith(c, ErrorResponse(408, "body_timeout"), false);
            co_return;
          }
        }
      }

      Response resp = Dispatch(req, handlers_);
      const bool keep_alive = req.keep_alive && !resp.close && !stopping_;
      if (!co_await Write(c, Serialize(resp, head_only, keep_alive, req.http10))) co_return;
      if (!keep_alive) {
        ErrorCode ec;
        c->socket.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
    }
  }

  // Declaration order matters for destruction: acceptor_ and the timers before io_ (they
  // belong to it), io_ (which destroys any coroutine frames still suspended) before conns_
  // and the handlers those frames may touch.
  AdminHandlers handlers_;
  AdminOptions options_;
  std::string where_;  // "address:port", for messages
  uint16_t port_ = 0;
  std::unordered_set<Conn*> conns_;  // open connections (admin thread only)
  bool stopping_ = false;            // admin thread only
  std::mutex mu_;                    // guards started_, stopped_ (controlling thread)
  bool started_ = false;
  bool stopped_ = false;
  std::thread thread_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  asio::steady_timer accept_backoff_{io_};
};

AdminServer::AdminServer(const std::string& address, uint16_t port, AdminHandlers handlers,
                         AdminOptions options)
    : impl_(std::make_unique<Impl>(address, port, std::move(handlers), options)) {}

AdminServer::~AdminServer() { Stop(); }

uint16_t AdminServer::port() const { return impl_->port(); }
void AdminServer::Start() { impl_->Start(); }
void AdminServer::Stop() { impl_->Stop(); }

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
