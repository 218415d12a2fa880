// TLS with OpenSSL 3: the context (TLS 1.2+, the system store or a ca_file), and a call's TLS
// session and handshake, verified against the host name or IP address it was made for.
#include "client/internal/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <mutex>

#include "client/client.h"

namespace ficus::client {
namespace {

bool IsIpLiteral(const std::string& host) {
  in6_addr a6;
  in_addr a4;
  return ::inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
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

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

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

// After the TCP connect: the TLS session on the socket, with SNI and the name to verify.
bool Call::StartTls() {
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

}  // namespace ficus::client
