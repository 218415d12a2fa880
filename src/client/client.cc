// The HTTP/1.1 client's connection and its non-blocking Call: connect to each address in turn,
// send, read and parse the response (TLS in tls.cc, URLs in url.cc, the blocking forms in
// blocking.cc).
#include "client/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "client/internal/tls.h"
#include "http/http.h"

namespace ficus::client {

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
  return StartTls();
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

}  // namespace ficus::client
