// ficus::client — the one small HTTP/1.1 client of everything ficus sends on its own behalf
// (SLO webhooks, the OTLP exporter, active health checks, the CLI's admin calls), over plain TCP
// or TLS (OpenSSL 3: the peer's certificate and host name are always verified, against the
// system CA store or a CA file). Responses are parsed by http's strict ResponseHeadParser and
// ChunkedScanner. Never on a worker thread: the workers' upstream traffic is the proxy's.
//
// Two forms over the same code:
// - `Call`, a non-blocking request state machine: the caller polls `fd()` for `events()` and
//   calls `Advance()` when it is ready; many calls can share one poll (the health checks).
// - `Client` (one destination, one kept-alive connection) and `Fetch` (one request, one fresh
//   connection), blocking with a deadline, built on Call (webhooks, the exporter, the CLI).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;

namespace ficus::client {

// "http://host[:port][/path][?query]" or "https://...": the host is a DNS name or an IP literal
// ("[v6]" in brackets). No userinfo, no fragment, no whitespace or control characters.
struct Url {
  bool https = false;
  std::string host;    // without brackets
  uint16_t port = 0;   // 80 or 443 when the URL has none
  std::string target;  // origin-form "/path?query"; "/" when the URL has none
  // The Host header value: host (bracketed when IPv6), ":port" unless the scheme's default.
  std::string Authority() const;
};
// False with *error set when `text` is not such a URL.
bool ParseUrl(std::string_view text, Url* out, std::string* error);

// Trust settings of TLS connections. Verification cannot be turned off.
struct TlsOptions {
  // PEM file of CA certificates to trust instead of the system store (a private CA, or a
  // self-signed certificate). Empty: the system store (OpenSSL's default paths).
  std::string ca_file;
};

// An OpenSSL client context (SSL_CTX) with its trust store loaded: TLS 1.2 or later, peer
// verification on. Loading the store costs milliseconds: create one per trust setting and share
// it. Thread safety: may be used by several connections on several threads at once.
class TlsContext {
 public:
  // Null with *error set when the CA file cannot be read.
  static std::shared_ptr<TlsContext> Create(const TlsOptions& options, std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ssl_ctx_st* get() const { return ctx_; }
  const TlsOptions& options() const { return options_; }

 private:
  TlsContext(ssl_ctx_st* ctx, TlsOptions options) : ctx_(ctx), options_(std::move(options)) {}
  ssl_ctx_st* ctx_;
  TlsOptions options_;
};

// One request. The client adds Host (unless given in `headers`), Content-Length (when there is
// a body or the method is POST, PUT or PATCH) and Connection: close (unless keep_alive).
struct Request {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;  // sent in order
  std::string body;
  bool keep_alive = false;
};

struct Response {
  int status = 0;  // 0 when no valid response arrived (then error says why)
  std::string error;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // decoded (chunked framing removed)
  bool keep_alive = false;
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// A socket, with its TLS session when the connection is https. Move-only; closes on destruction.
class Connection {
 public:
  Connection() = default;
  ~Connection() { Close(); }
  Connection(Connection&& o) noexcept { *this = std::move(o); }
  Connection& operator=(Connection&& o) noexcept;
  bool open() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Close();

 private:
  friend class Call;
  int fd_ = -1;
  ssl_st* ssl_ = nullptr;
};

// Where a call goes: the name that the Host header, SNI and the certificate check use, and the
// addresses to try in order (the first that accepts the connection is used).
struct Destination {
  std::string host;  // DNS name or IP literal without brackets
  uint16_t port = 80;
  bool https = false;
  std::shared_ptr<TlsContext> tls;  // REQUIRES: set when https
  std::vector<sockaddr_storage> addresses;
  // From a URL: resolves the host (getaddrinfo: blocks). False with *error when it does not
  // resolve. `tls` is used for https URLs; when null, a context with the system store is made.
  static bool Resolve(const Url& url, std::shared_ptr<TlsContext> tls, Destination* out,
                      std::string* error);
  // One address, no resolution (health checks: endpoints are already addresses).
  static Destination Of(const sockaddr* address, socklen_t length, std::string host, uint16_t port);
};

// One request as a non-blocking state machine: connect (each address in turn), TLS handshake,
// send, read the response. Drive it by polling fd() for events() and calling Advance(); it has
// no clock: the caller owns the deadline (and destroys or abandons the call when it passes).
// Thread safety: none; one thread drives a call.
class Call {
 public:
  struct Options {
    size_t max_response_bytes = 1 << 20;  // head + body; more is an error
    // Finish when the response head is complete (the body is not read; the connection is not
    // reusable). Health checks need only the status.
    bool head_only = false;
    // Finish as soon as the connection is established (no request is sent): a reachability
    // probe. connected() tells the result.
    bool connect_only = false;
  };
  Call() = default;
  Call(Call&&) = default;
  Call& operator=(Call&&) = default;
  // Starts the call. `reuse`: a kept-alive connection to the same destination (from a previous
  // call's TakeConnection), used instead of connecting. Never blocks; may finish at once
  // (done() then, e.g. when no socket can be made).
  void Start(Destination destination, const Request& request, const Options& options,
             Connection reuse = {});
  // Makes all the progress possible without blocking. True when the call has finished.
  bool Advance();
  bool done() const { return state_ == State::kDone; }
  int fd() const { return conn_.fd(); }
  short events() const { return events_; }  // POLLIN or POLLOUT, for poll()
  // A connection was established (whatever happened after): false means the call failed while
  // connecting (refused, unreachable, or abandoned by the caller's deadline).
  bool connected() const { return connected_; }
  const Response& response() const { return response_; }
  Response& response() { return response_; }
  // The call reused a kept-alive connection and failed before any response byte arrived: the
  // server had probably closed it while idle. Worth one retry on a fresh connection.
  bool stale() const { return stale_; }
  // After a response that allows it, the connection for the next call; else a closed one.
  Connection TakeConnection();
  // Ends the call as failed with `why` (e.g. the caller's deadline passed); closes the socket.
  void Fail(std::string why);
  // What the call is waiting for, for errors: "connecting to HOST:PORT", "in the TLS handshake
  // with HOST:PORT", "sending to HOST:PORT", "waiting for the response from HOST:PORT".
  std::string Waiting() const;

 private:
  enum class State : uint8_t { kIdle, kConnecting, kHandshake, kSending, kReading, kDone };
  bool ConnectNext();
  bool Connected();
  bool StartTls();  // tls.cc
  bool Handshake();
  bool Send();
  bool Receive();
  bool Parse(bool eof);
  void Finish();
  std::string Where() const;

  Destination dest_;
  Options options_;
  State state_ = State::kIdle;
  short events_ = 0;
  Connection conn_;
  size_t next_address_ = 0;
  std::string connect_error_;  // the last address's failure
  bool reused_ = false;
  bool connected_ = false;
  bool stale_ = false;
  bool head_request_ = false;
  std::string out_;  // the serialized request
  size_t sent_ = 0;
  std::string in_;  // bytes received
  size_t head_size_ = 0;
  uint8_t framing_ = 0;
  uint64_t content_length_ = 0;
  size_t body_scanned_ = 0;  // bytes of in_ after the head given to the chunked scanner
  struct Chunked;
  std::shared_ptr<Chunked> chunked_;
  Response response_;
};

// Blocking calls to one destination over one kept-alive connection (reconnecting when the
// server closed it; a reused connection found closed is retried once on a fresh one).
// Thread safety: none; one thread uses a client.
class Client {
 public:
  Client(Url url, std::shared_ptr<TlsContext> tls) : url_(std::move(url)), tls_(std::move(tls)) {}
  // Sends `request` (keep_alive is set) and waits for the whole response, at most `timeout`.
  // DNS is resolved for each new connection.
  Response Send(Request request, std::chrono::milliseconds timeout);
  const Url& url() const { return url_; }
  uint64_t connections() const { return connections_; }  // opened so far

 private:
  Url url_;
  std::shared_ptr<TlsContext> tls_;
  Connection conn_;
  uint64_t connections_ = 0;
};

// One blocking request on a fresh connection (Connection: close), at most `timeout` including
// DNS resolution (getaddrinfo, which the deadline cannot interrupt), connect and TLS. `tls`: for
// https URLs; null = the system store.
Response Fetch(const Url& url, const Request& request, std::chrono::milliseconds timeout,
               std::shared_ptr<TlsContext> tls = nullptr);

// Runs `call` to its end on this thread, polling until `deadline`. Used by Client and Fetch.
void Run(Call& call, std::chrono::steady_clock::time_point deadline);

}  // namespace ficus::client
