// The HTTP/1.1 client: URL parsing, the TLS context, the non-blocking Call and the blocking forms
// on top of it.
#include "client/client.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <mutex>

#include "http/http.h"

namespace ficus::client {

namespace {

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// The oldest error on OpenSSL's thread-local queue, as text (and the queue cleared).
std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// TLS writes go through write(2): a peer that closed must be an error value, not SIGPIPE. The
// gateway ignores SIGPIPE already; tools (ficus slo test-webhooks, assess) get the same here.
void IgnoreSigpipeOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction old {};
    if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
      std::signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Url

std::string Url::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (port != (https ? 443 : 80)) out.append(":").append(std::to_string(port));
  return out;
}

bool ParseUrl(std::string_view text, Url* out, std::string* error) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      *error = "a URL must not contain spaces, control or non-ASCII characters";
      return false;
    }
  }
  auto starts = [&](std::string_view scheme) {
    return text.size() >= scheme.size() &&
           std::equal(scheme.begin(), scheme.end(), text.begin(), [](char a, char b) {
             return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
           });
  };
  Url url;
  if (starts("https://")) {
    url.https = true;
    text.remove_prefix(8);
  } else if (starts("http://")) {
    text.remove_prefix(7);
  } else {
    *error = "expected an http:// or https:// URL";
    return false;
  }
  const size_t end = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, end);
  const std::string_view rest = end == std::string_view::npos ? "" : text.substr(end);
  if (rest.find('#') != std::string_view::npos) {
    *error = "a URL must not have a fragment ('#')";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    *error = "a URL must not contain credentials ('user@')";
    return false;
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = "unterminated '[' in the host";
      return false;
    }
    url.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = "unexpected text after ']'";
        return false;
      }
      port = after.substr(1);
      if (port.empty()) port = "x";  // "[::1]:" is an error below
    }
    in6_addr a;
    if (::inet_pton(AF_INET6, url.host.c_str(), &a) != 1) {
      *error = "'" + url.host + "' is not an IPv6 address";
      return false;
    }
  } else {
    const size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) port = "x";
    }
  }
  if (url.host.empty()) {
    *error = "the URL has no host";
    return false;
  }
  url.port = url.https ? 443 : 80;
  if (!port.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) {
      *error = "bad port '" + std::string(port) + "' (1..65535)";
      return false;
    }
    url.port = static_cast<uint16_t>(v);
  }
  if (rest.empty()) {
    url.target = "/";
  } else if (rest.front() == '?') {
    url.target.assign(1, '/').append(rest);
  } else {
    url.target = std::string(rest);
  }
  *out = std::move(url);
  return true;
}

// ---------------------------------------------------------------------------------------------
// TlsContext

std::shared_ptr<TlsContext> TlsContext::Create(const TlsOptions& options, std::string* error) {
  IgnoreSigpipeOnce();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    *error = "TLS: cannot create a context: " + OpenSslError();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // A peer that closes without close_notify ends a body delimited by close, as over TCP (every
  // message whose length is known is still checked for truncation).
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  const int loaded = options.ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(ctx)
                         : SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr);
  if (loaded != 1) {
    *error = options.ca_file.empty()
                 ? "TLS: cannot load the system CA store: " + OpenSslError()
                 : "TLS: cannot load ca_file " + options.ca_file + ": " + OpenSslError();
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return std::shared_ptr<TlsContext>(new TlsContext(ctx, options));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

// ---------------------------------------------------------------------------------------------
// Connection

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = std::exchange(o.fd_, -1);
    ssl_ = std::exchange(o.ssl_, nullptr);
  }
  return *this;
}

void Connection::Close() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  ssl_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

// ---------------------------------------------------------------------------------------------
// Destination

bool Destination::Resolve(const Url& url, std::shared_ptr<TlsContext> tls, Destination* out,
                          std::string* error) {
  Destination d;
  d.host = url.host;
  d.port = url.port;
  d.https = url.https;
  if (url.https) {
    if (tls == nullptr) tls = TlsContext::Create({}, error);
    if (tls == nullptr) return false;
    d.tls = std::move(tls);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(url.port);
  const int rc = ::getaddrinfo(url.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return false;
  }
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    sockaddr_storage s{};
    std::memcpy(&s, ai->ai_addr, std::min<size_t>(ai->ai_addrlen, sizeof s));
    d.addresses.push_back(s);
  }
  ::freeaddrinfo(res);
  *out = std::move(d);
  return true;
}

Destination Destination::Of(const sockaddr* address, socklen_t length, std::string host,
                            uint16_t port) {
  Destination d;
  d.host = std::move(host);
  d.port = port;
  sockaddr_storage s{};
  std::memcpy(&s, address, std::min<size_t>(length, sizeof s));
  d.addresses.push_back(s);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Call

struct Call::Chunked {
  http::ChunkedScanner scanner;
};

namespace {

socklen_t LengthOf(const sockaddr_storage& s) {
  return s.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::string AddressText(const sockaddr_storage& s) {
  char buf[INET6_ADDRSTRLEN] = "?";
  uint16_t port = 0;
  if (s.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&s);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
    return std::string(buf) + ":" + std::to_string(port);
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&s);
  ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
  port = ntohs(a->sin6_port);
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

}  // namespace

std::string Call::Where() const {
  std::string out = dest_.host.find(':') != std::string::npos ? "[" + dest_.host + "]" : dest_.host;
  return out + ":" + std::to_string(dest_.port);
}

std::string Call::Waiting() const {
  switch (state_) {
    case State::kConnecting:
      return "connecting to " + Where();
    case State::kHandshake:
      return "in the TLS handshake with " + Where();
    case State::kSending:
      return "sending to " + Where();
    default:
      return "waiting for the response from " + Where();
  }
}

void Call::Start(Destination destination, const Request& request, const Options& options,
                 Connection reuse) {
  dest_ = std::move(destination);
  options_ = options;
  response_ = Response{};
  in_.clear();
  head_size_ = 0;
  body_scanned_ = 0;
  sent_ = 0;
  stale_ = false;
  connected_ = false;
  next_address_ = 0;
  connect_error_.clear();
  chunked_.reset();
  head_request_ = request.method == "HEAD";

  out_.clear();
  out_.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& [name, value] : request.headers) {
    has_host = has_host || http::EqualsIgnoreCase(name, "host");
    out_.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) {
    Url u;
    u.https = dest_.https;
    u.host = dest_.host;
    u.port = dest_.port;
    out_.append("Host: ").append(u.Authority()).append("\r\n");
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
      request.method == "PATCH") {
    out_.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  }
  if (!request.keep_alive) out_.append("Connection: close\r\n");
  out_.append("\r\n").append(request.body);

  if (dest_.https && dest_.tls == nullptr) {
    Fail("https needs a TLS context");
    return;
  }
  reused_ = reuse.open();
  if (reused_) {
    connected_ = true;
    conn_ = std::move(reuse);
    state_ = State::kSending;
    events_ = POLLOUT;
    Advance();
    return;
  }
  state_ = State::kConnecting;
  if (!ConnectNext()) return;
  Advance();
}

// Opens a socket to the next address and starts connecting. False when none is left (done).
bool Call::ConnectNext() {
  while (next_address_ < dest_.addresses.size()) {
    const sockaddr_storage& a = dest_.addresses[next_address_++];
    conn_.Close();
    conn_.fd_ = ::socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (conn_.fd_ < 0) {
      connect_error_ = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    if (::connect(conn_.fd_, reinterpret_cast<const sockaddr*>(&a), LengthOf(a)) == 0 ||
        errno == EINPROGRESS) {
      state_ = State::kConnecting;
      events_ = POLLOUT;
      return true;
    }
    connect_error_ = "connect to " + AddressText(a) + ": " + std::strerror(errno);
  }
  Fail(connect_error_.empty() ? "no address to connect to" : connect_error_);
  return false;
}

void Call::Fail(std::string why) {
  response_.status = 0;
  response_.error = std::move(why);
  response_.keep_alive = false;
  conn_.Close();
  state_ = State::kDone;
  events_ = 0;
}

bool Call::Advance() {
  for (;;) {
    switch (state_) {
      case State::kIdle:
      case State::kDone:
        return true;
      case State::kConnecting:
        if (!Connected()) return done();
        break;
      case State::kHandshake:
        if (!Handshake()) return done();
        break;
      case State::kSending:
        if (!Send()) return done();
        break;
      case State::kReading:
        if (!Receive()) return done();
        break;
    }
  }
}

// Each step returns true when it moved to the next state (continue at once), false when it
// must wait for events_ or the call ended.
bool Call::Connected() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(conn_.fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err == 0) {
    // Still connecting? A non-blocking connect is done when the socket is writable; a
    // zero-length send tells without poll.
    sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    if (::getpeername(conn_.fd_, reinterpret_cast<sockaddr*>(&peer), &plen) != 0) {
      if (errno == ENOTCONN) return false;  // wait for POLLOUT
      err = errno;
    }
  }
  if (err != 0) {
    connect_error_ =
        "connect to " + AddressText(dest_.addresses[next_address_ - 1]) + ": " + std::strerror(err);
    ConnectNext();
    return state_ != State::kDone;  // the next address, if any, is connecting
  }
  connected_ = true;
  if (options_.connect_only) {
    conn_.Close();
    state_ = State::kDone;
    events_ = 0;
    return false;
  }
  if (!dest_.https) {
    state_ = State::kSending;
    return true;
  }
  SSL* ssl = SSL_new(dest_.tls->get());
  if (ssl == nullptr || SSL_set_fd(ssl, conn_.fd_) != 1) {
    if (ssl) SSL_free(ssl);
    Fail("TLS: " + OpenSslError());
    return false;
  }
  conn_.ssl_ = ssl;
  // SNI for names (not for IP literals, RFC 6066), and the name or address the certificate must
  // be for: OpenSSL checks it during the handshake and fails it otherwise.
  const bool ip = IsIpLiteral(dest_.host);
  if (!ip) SSL_set_tlsext_host_name(ssl, dest_.host.c_str());
  const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), dest_.host.c_str())
                     : SSL_set1_host(ssl, dest_.host.c_str());
  if (set != 1) {
    Fail("TLS: cannot set the name to verify: " + OpenSslError());
    return false;
  }
  state_ = State::kHandshake;
  return true;
}

bool Call::Handshake() {
  ERR_clear_error();
  const int rc = SSL_connect(conn_.ssl_);
  if (rc == 1) {
    state_ = State::kSending;
    return true;
  }
  const int e = SSL_get_error(conn_.ssl_, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    events_ = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return false;
  }
  const long verify = SSL_get_verify_result(conn_.ssl_);
  std::string why = "TLS handshake with " + Where() + " failed: ";
  if (verify != X509_V_OK) {
    why += "certificate verification failed: ";
    why += X509_verify_cert_error_string(verify);
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      why += " (the certificate is not for '" + dest_.host + "')";
    } else if (verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
               verify == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
               verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
               verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) {
      why += dest_.tls->options().ca_file.empty()
                 ? " (issued by a CA the system store does not trust; set ca_file to trust it)"
                 : " (issued by a CA not in ca_file " + dest_.tls->options().ca_file + ")";
    }
    ERR_clear_error();
  } else if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    why += errno != 0 ? std::strerror(errno) : "the server closed the connection";
  } else {
    why += OpenSslError();
  }
  Fail(std::move(why));
  return false;
}

bool Call::Send() {
  events_ = POLLOUT;
  while (sent_ < out_.size()) {
    const char* p = out_.data() + sent_;
    const size_t n = out_.size() - sent_;
    if (conn_.ssl_ != nullptr) {
      ERR_clear_error();
      const int rc = SSL_write(conn_.ssl_, p, static_cast<int>(std::min<size_t>(n, 1 << 30)));
      if (rc > 0) {
        sent_ += static_cast<size_t>(rc);
        continue;
      }
      const int e = SSL_get_error(conn_.ssl_, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        events_ = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return false;
      }
      if (reused_) stale_ = true;
      Fail("sending to " + Where() + ": " +
           (e == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : OpenSslError()));
      return false;
    }
    const ssize_t rc = ::send(conn_.fd_, p, n, MSG_NOSIGNAL);
    if (rc > 0) {
      sent_ += static_cast<size_t>(rc);
    } else if (rc < 0 && errno == EINTR) {
      continue;
    } else if (rc < 0 && errno == EAGAIN) {
      return false;
    } else {
      if (reused_) stale_ = true;
      Fail("sending to " + Where() + ": " + std::strerror(errno));
      return false;
    }
  }
  state_ = State::kReading;
  events_ = POLLIN;
  return true;
}

bool Call::Receive() {
  events_ = POLLIN;
  for (;;) {
    char buf[16384];
    size_t got = 0;
    bool eof = false;
    if (conn_.ssl_ != nullptr) {
      ERR_clear_error();
      const int rc = SSL_read(conn_.ssl_, buf, sizeof buf);
      if (rc > 0) {
        got = static_cast<size_t>(rc);
      } else {
        const int e = SSL_get_error(conn_.ssl_, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
          events_ = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
          return false;
        }
        if (e == SSL_ERROR_ZERO_RETURN ||
            (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && (rc == 0 || errno == ECONNRESET))) {
          eof = true;
        } else {
          if (reused_ && in_.empty()) stale_ = true;
          Fail("reading from " + Where() + ": " + OpenSslError());
          return false;
        }
      }
    } else {
      const ssize_t rc = ::recv(conn_.fd_, buf, sizeof buf, 0);
      if (rc > 0) {
        got = static_cast<size_t>(rc);
      } else if (rc == 0 || errno == ECONNRESET) {
        eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN) {
        return false;
      } else {
        if (reused_ && in_.empty()) stale_ = true;
        Fail("reading from " + Where() + ": " + std::strerror(errno));
        return false;
      }
    }
    if (got > 0) {
      if (in_.size() + got > options_.max_response_bytes) {
        Fail("the response from " + Where() + " is larger than " +
             std::to_string(options_.max_response_bytes) + " bytes");
        return false;
      }
      in_.append(buf, got);
    }
    if (eof && in_.empty()) {
      if (reused_) stale_ = true;
      Fail(Where() + " closed the connection without a response");
      return false;
    }
    if (Parse(eof)) return false;  // finished (done) either way
    if (eof) {
      Fail("the response from " + Where() + " was cut short (connection closed)");
      return false;
    }
  }
}

// Parses what has arrived. True when the call finished (a complete response or an error).
bool Call::Parse(bool eof) {
  while (head_size_ == 0) {
    std::array<http::Header, 100> storage;
    http::Limits limits;
    limits.max_header_count = storage.size();
    http::ResponseHeadParser parser(limits, storage);
    http::ResponseHead head;
    // The parser is given the whole buffer each time (a head is small; no scan state kept).
    Result<size_t> parsed =
        parser.Parse(in_, head_request_ ? http::Method::kHead : http::Method::kGet, head);
    if (!parsed) {
      Fail("invalid response from " + Where() + ": " + std::string(parsed.error().context));
      return true;
    }
    if (*parsed == 0) return false;
    if (head.status >= 100 && head.status < 200 && head.status != 101) {
      in_.erase(0, *parsed);  // interim (100 Continue, 103 Early Hints): the final one follows
      continue;
    }
    head_size_ = *parsed;
    response_.status = head.status;
    response_.keep_alive = head.keep_alive;
    for (const http::Header& h : head.headers) {
      response_.headers.emplace_back(std::string(h.name), std::string(h.value));
    }
    framing_ = static_cast<uint8_t>(head.framing);
    content_length_ = head.content_length;
    if (head.framing == http::BodyFraming::kChunked) {
      chunked_ = std::make_shared<Chunked>();
      chunked_->scanner.set_upstream(true);
    }
    if (options_.head_only) {
      response_.keep_alive = false;
      Finish();
      return true;
    }
  }
  const std::string_view body = std::string_view(in_).substr(head_size_);
  switch (static_cast<http::BodyFraming>(framing_)) {
    case http::BodyFraming::kNone:
      break;
    case http::BodyFraming::kContentLength:
      if (body.size() < content_length_) return false;
      if (body.size() > content_length_) response_.keep_alive = false;  // extra bytes
      response_.body.assign(body.substr(0, content_length_));
      break;
    case http::BodyFraming::kChunked: {
      Result<size_t> scanned = chunked_->scanner.Scan(
          body.substr(body_scanned_),
          [](void* ctx, std::string_view piece) { static_cast<std::string*>(ctx)->append(piece); },
          &response_.body);
      if (!scanned) {
        Fail("invalid chunked body from " + Where() + ": " + std::string(scanned.error().context));
        return true;
      }
      body_scanned_ += *scanned;
      if (!chunked_->scanner.done()) return false;
      if (body_scanned_ != body.size()) response_.keep_alive = false;
      break;
    }
    case http::BodyFraming::kUntilClose:
      if (!eof) return false;
      response_.body.assign(body);
      response_.keep_alive = false;
      break;
  }
  Finish();
  return true;
}

void Call::Finish() {
  if (!response_.keep_alive) conn_.Close();
  state_ = State::kDone;
  events_ = 0;
}

Connection Call::TakeConnection() {
  if (state_ != State::kDone || !response_.error.empty() || !response_.keep_alive) {
    conn_.Close();
  }
  return std::move(conn_);
}

// ---------------------------------------------------------------------------------------------
// Blocking forms

void Run(Call& call, std::chrono::steady_clock::time_point deadline) {
  while (!call.Advance()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      call.Fail("timed out " + call.Waiting());
      return;
    }
    pollfd p{call.fd(), call.events(), 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60'000) + 1));
    if (rc < 0 && errno != EINTR) {
      call.Fail(std::string("poll: ") + std::strerror(errno));
      return;
    }
  }
}

Response Fetch(const Url& url, const Request& request, std::chrono::milliseconds timeout,
               std::shared_ptr<TlsContext> tls) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Destination dest;
  Response r;
  if (!Destination::Resolve(url, std::move(tls), &dest, &r.error)) return r;
  Call call;
  Request req = request;
  req.keep_alive = false;
  call.Start(std::move(dest), req, Call::Options{});
  Run(call, deadline);
  return std::move(call.response());
}

Response Client::Send(Request request, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  request.keep_alive = true;
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reuse = conn_.open();
    Destination dest;
    Response r;
    if (reuse) {
      dest.host = url_.host;
      dest.port = url_.port;
      dest.https = url_.https;
      dest.tls = tls_;
    } else {
      if (url_.https && tls_ == nullptr) tls_ = TlsContext::Create({}, &r.error);
      if (url_.https && tls_ == nullptr) return r;
      if (!Destination::Resolve(url_, tls_, &dest, &r.error)) return r;
      ++connections_;
    }
    Call call;
    call.Start(std::move(dest), request, Call::Options{}, std::move(conn_));
    Run(call, deadline);
    if (call.stale() && attempt == 0) continue;  // the server had closed the idle connection
    conn_ = call.TakeConnection();
    return std::move(call.response());
  }
  return Response{0, "unreachable", {}, {}, false};
}

}  // namespace ficus::client
