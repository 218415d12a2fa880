// TLS sessions on memory BIOs over the loop's sockets (tls.h says why memory BIOs).
#include "tls/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>

namespace ficus::tls {
namespace {

// OpenSSL's reason for the last failure (and clears its queue): "error:0A000086:SSL
// routines::certificate verify failed" -> "certificate verify failed".
std::string QueueError() {
  unsigned long e = 0, last = 0;
  while ((e = ERR_get_error()) != 0) last = e;
  if (last == 0) return "";
  const char* reason = ERR_reason_error_string(last);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

// Whether a file can be read, and if not why (errno's text): OpenSSL's own message for a
// missing file is "system lib".
std::string Unreadable(const std::string& path) {
  std::ifstream f(path);
  if (!f) return std::strerror(errno);
  return "";
}

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

std::string LoadPair(SSL_CTX* ctx, const std::string& cert_file, const std::string& key_file) {
  if (std::string why = Unreadable(cert_file); !why.empty())
    return "cannot read certificate " + cert_file + ": " + why;
  if (std::string why = Unreadable(key_file); !why.empty())
    return "cannot read key " + key_file + ": " + why;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1)
    return "certificate " + cert_file + ": " + QueueError() + " (expected a PEM certificate)";
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const std::string why = QueueError();
    if (why == "key values mismatch")
      return "key " + key_file + " does not match certificate " + cert_file;
    return "key " + key_file + ": " + why + " (expected a PEM private key)";
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return "key " + key_file + " does not match certificate " + cert_file;
  return "";
}

std::string CheckCaFile(const std::string& ca_file) {
  if (std::string why = Unreadable(ca_file); !why.empty())
    return "cannot read CA file " + ca_file + ": " + why;
  BIO* bio = BIO_new_file(ca_file.c_str(), "r");
  if (bio == nullptr) return "cannot read CA file " + ca_file + ": " + QueueError();
  int certs = 0;
  while (X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_free(x);
    ++certs;
  }
  BIO_free(bio);
  ERR_clear_error();  // the read that ended the loop
  if (certs == 0) return "CA file " + ca_file + " holds no PEM certificate";
  return "";
}

SSL_CTX* NewContext(bool server) {
  SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // A write is encrypted whole into the memory BIO; no renegotiation (TLS 1.2's is an attack
  // surface and TLS 1.3 has none); a peer closing without close_notify is an end of stream, as
  // over TCP (the protocols carried here frame their messages, so truncation is detected above).
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (server) {
    // No session resumption: sessions are per connection and long-lived (a database client, an
    // admin call), and a ticket key would have to be shared by the workers and rotated.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  return ctx;
}

}  // namespace

Outcome<std::shared_ptr<const Context>> Context::Server(const std::string& cert_file,
                                                        const std::string& key_file) {
  SSL_CTX* ctx = NewContext(true);
  if (ctx == nullptr) return Failed("cannot create a TLS context: " + QueueError());
  if (std::string why = LoadPair(ctx, cert_file, key_file); !why.empty()) {
    SSL_CTX_free(ctx);
    return Failed(why);
  }
  return std::shared_ptr<const Context>(new Context(ctx, true, Verify::kNone));
}

Outcome<std::shared_ptr<const Context>> Context::Client(const ClientOptions& o) {
  SSL_CTX* ctx = NewContext(false);
  if (ctx == nullptr) return Failed("cannot create a TLS context: " + QueueError());
  auto fail = [&](std::string why) {
    SSL_CTX_free(ctx);
    return Failed(std::move(why));
  };
  if (o.verify != Verify::kNone) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (o.ca_file.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        return fail("cannot load the system CA store: " + QueueError());
    } else {
      if (std::string why = CheckCaFile(o.ca_file); !why.empty()) return fail(why);
      if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
        return fail("CA file " + o.ca_file + ": " + QueueError());
    }
  }
  if (!o.cert_file.empty() || !o.key_file.empty()) {
    if (o.cert_file.empty() || o.key_file.empty())
      return fail("a client certificate needs both a certificate and a key file");
    if (std::string why = LoadPair(ctx, o.cert_file, o.key_file); !why.empty()) return fail(why);
  }
  return std::shared_ptr<const Context>(new Context(ctx, false, o.verify));
}

Context::~Context() { SSL_CTX_free(ctx_); }

Stream::Stream(const Context& ctx, std::string_view peer_name) {
  ssl_ = SSL_new(ctx.ctx_);
  if (ssl_ == nullptr) {
    error_ = "cannot create a TLS session: " + QueueError();
    return;
  }
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(rbio, -1);  // empty: "retry" (more may come), not end of file
  BIO_set_mem_eof_return(wbio, -1);
  SSL_set_bio(ssl_, rbio, wbio);
  if (ctx.server_) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  const std::string name(peer_name);
  if (name.empty()) return;
  const bool ip = IsIpLiteral(name);
  if (!ip) SSL_set_tlsext_host_name(ssl_, name.c_str());  // SNI carries names only (RFC 6066)
  if (ctx.verify_ == Verify::kFull) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    if (ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      SSL_set1_host(ssl_, name.c_str());
    }
  }
}

Stream::Stream(Stream&& o) noexcept
    : ssl_(std::exchange(o.ssl_, nullptr)), out_(std::move(o.out_)), error_(std::move(o.error_)) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    if (ssl_ != nullptr) SSL_free(ssl_);
    ssl_ = std::exchange(o.ssl_, nullptr);
    out_ = std::move(o.out_);
    error_ = std::move(o.error_);
  }
  return *this;
}

Stream::~Stream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

std::string_view Stream::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }
std::string_view Stream::cipher() const {
  const char* c = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return c ? c : "";
}

void Stream::SetErrorFromQueue(int ssl_error) {
  std::string why = QueueError();
  if (ssl_ != nullptr && SSL_get_verify_result(ssl_) != X509_V_OK && !SSL_is_server(ssl_)) {
    why += why.empty() ? "" : ": ";
    why += X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
  }
  if (why.empty()) why = "TLS error " + std::to_string(ssl_error);
  error_ = std::move(why);
}

net::Task<net::ErrorCode> Stream::Flush(net::Socket& sock) {
  BIO* wbio = SSL_get_wbio(ssl_);
  const size_t pending = BIO_ctrl_pending(wbio);
  if (pending == 0) co_return net::ErrorCode();
  out_.resize(pending);
  const int n = BIO_read(wbio, out_.data(), static_cast<int>(std::min<size_t>(pending, INT_MAX)));
  out_.resize(n > 0 ? static_cast<size_t>(n) : 0);
  net::ErrorCode ec = co_await sock.WriteAll(out_);
  out_.clear();
  co_return ec;
}

net::Task<Outcome<void>> Stream::Handshake(net::Socket& sock) {
  if (ssl_ == nullptr) co_return Failed(error_.empty() ? "no TLS session" : error_);
  char buf[16 * 1024 + 512];  // one record
  for (;;) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_);
    const int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, r);
    if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) SetErrorFromQueue(err);
    // What the handshake wrote goes out, an alert on failure too (the peer learns why).
    const net::ErrorCode wec = co_await Flush(sock);
    if (err == SSL_ERROR_NONE) {
      if (wec) co_return Failed(wec == net::Aborted() ? "timed out" : wec.message());
      co_return Outcome<void>();
    }
    if (err != SSL_ERROR_WANT_READ) co_return Failed(error_);
    if (wec) co_return Failed(wec == net::Aborted() ? "timed out" : wec.message());
    const net::ReadResult rr = co_await sock.ReadSome({buf, sizeof buf});
    if (rr.ec) co_return Failed(rr.ec == net::Aborted() ? "timed out" : rr.ec.message());
    if (rr.bytes == 0) co_return Failed("the peer closed the connection during the TLS handshake");
    BIO_write(SSL_get_rbio(ssl_), buf, static_cast<int>(rr.bytes));
  }
}

net::Task<Outcome<void>> Stream::Handshake(net::Socket& sock, net::TimeoutList& timeouts,
                                           int64_t deadline_ms) {
  struct Deadline : net::TimeoutList::Entry {
    net::Socket* sock = nullptr;
    void OnTimeout() override { sock->Cancel(); }
  } deadline;
  deadline.sock = &sock;
  deadline.SetDeadline(deadline_ms);
  timeouts.Add(&deadline);
  Outcome<void> r = co_await Handshake(sock);
  timeouts.Remove(&deadline);
  co_return r;
}

net::Task<net::ReadResult> Stream::ReadTls(net::Socket& sock, std::span<char> into) {
  const int want = static_cast<int>(std::min<size_t>(into.size(), INT_MAX));
  for (;;) {
    ERR_clear_error();
    const int n = SSL_read(ssl_, into.data(), want);
    if (n > 0) co_return net::ReadResult{static_cast<size_t>(n), {}};
    const int err = SSL_get_error(ssl_, n);
    if (err == SSL_ERROR_ZERO_RETURN) co_return net::ReadResult{};  // close_notify
    if (err != SSL_ERROR_WANT_READ) {
      SetErrorFromQueue(err);
      co_return net::ReadResult{0, std::make_error_code(std::errc::protocol_error)};
    }
    // Ciphertext is read into the caller's buffer (no buffer of our own), then handed to OpenSSL,
    // which decrypts it back into the same buffer.
    net::ReadResult r = co_await sock.ReadSome(into);
    if (r.ec || r.bytes == 0) co_return r;
    BIO_write(SSL_get_rbio(ssl_), into.data(), static_cast<int>(r.bytes));
  }
}

net::Task<net::ErrorCode> Stream::WriteTls(net::Socket& sock, std::string_view bytes) {
  while (!bytes.empty()) {
    const int chunk = static_cast<int>(std::min<size_t>(bytes.size(), 1u << 30));
    ERR_clear_error();
    const int n = SSL_write(ssl_, bytes.data(), chunk);
    if (n <= 0) {
      SetErrorFromQueue(SSL_get_error(ssl_, n));
      co_return std::make_error_code(std::errc::protocol_error);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  co_return co_await Flush(sock);
}

net::Task<void> Stream::Shutdown(net::Socket& sock) {
  if (ssl_ == nullptr || !SSL_is_init_finished(ssl_)) co_return;
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);
  ERR_clear_error();
  (void)co_await Flush(sock);
}

}  // namespace ficus::tls
