// ficus::tls — TLS (OpenSSL 3) on the workers' coroutine sockets (net/), server and client side,
// never blocking a worker: the handshake, reads and writes suspend on the socket like plain I/O.
//
// OpenSSL works on memory BIOs here, not on the descriptor: the loop keeps each socket's
// edge-triggered readiness itself (net.h), and a recv() OpenSSL made behind its back would leave
// that state stale. So ciphertext moves through Socket::ReadSome/WriteAll, the session is not
// tied to a descriptor (a pooled server connection moves to another worker's loop with its
// session), and a test can drive both ends in one loop. docs/architecture.md "TLS" says more.
//
// Contexts (certificates, keys, trusted CAs) are loaded off the workers (startup, reload) and
// shared read-only; a Stream is one connection's session, used on one worker at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/outcome.h"
#include "net/net.h"

typedef struct ssl_ctx_st SSL_CTX;  // <openssl/ssl.h>
typedef struct ssl_st SSL;

namespace ficus::tls {

// How a client checks the server it connects to (libpq's sslmode levels that verify).
enum class Verify : uint8_t {
  kNone,  // encrypted, the certificate not checked (libpq `require`)
  kCa,    // the chain must lead to a trusted CA (`verify-ca`)
  kFull,  // and the certificate must name the host (`verify-full`)
};

struct ClientOptions {
  Verify verify = Verify::kNone;
  std::string ca_file;  // trusted CAs (PEM); empty: the system store (when verifying)
  // A client certificate and its key (PEM), for servers that ask for one; both or neither.
  std::string cert_file, key_file;
};

// An SSL_CTX: TLS 1.2 and later. Immutable once made; shared by every Stream made from it.
class Context {
 public:
  // A server's certificate chain and private key (PEM). Fails with a message naming the file and
  // why (missing, unreadable, not PEM, the key does not match the certificate).
  static Outcome<std::shared_ptr<const Context>> Server(const std::string& cert_file,
                                                        const std::string& key_file);
  static Outcome<std::shared_ptr<const Context>> Client(const ClientOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  bool is_server() const { return server_; }
  Verify verify() const { return verify_; }

 private:
  Context(SSL_CTX* ctx, bool server, Verify verify) : ctx_(ctx), server_(server), verify_(verify) {}
  friend class Stream;
  SSL_CTX* ctx_;
  bool server_;
  Verify verify_;
};

// One connection's TLS session over a net::Socket the caller owns and passes to each call. A
// default-constructed Stream is inactive: the calls then go straight to the socket, so a
// connection that may or may not be encrypted has one code path.
//
// One reader and one writer may be in flight at once (a proxy reads one direction while it writes
// the other); two readers or two writers may not, as on a Socket.
class Stream {
 public:
  Stream() = default;
  // A session from `ctx`. Client side: `peer_name` is the server's host name or IP literal, sent
  // as SNI (names only) and, with Verify::kFull, matched against the certificate.
  Stream(const Context& ctx, std::string_view peer_name = {});
  Stream(Stream&& o) noexcept;
  Stream& operator=(Stream&& o) noexcept;
  ~Stream();

  bool active() const { return ssl_ != nullptr; }

  // The handshake, until done or failed: the message says why ("certificate verify failed:
  // unable to get local issuer certificate", "the peer closed the connection", "wrong version
  // number"...). With a deadline (`timeouts` swept by the worker's tick), a handshake still
  // running at `deadline_ms` (the loop's NowMs clock) fails with "timed out".
  net::Task<Outcome<void>> Handshake(net::Socket& sock);
  net::Task<Outcome<void>> Handshake(net::Socket& sock, net::TimeoutList& timeouts,
                                     int64_t deadline_ms);
  // As Socket::ReadSome: at least one byte of plaintext, waiting if none; 0 bytes with no error
  // is the end (close_notify, or the peer closed the TCP connection). A TLS failure is an
  // error (std::errc::protocol_error; error() says why).
  // Inactive: the socket's own task (no coroutine frame of ours on the plain path).
  net::Task<net::ReadResult> ReadSome(net::Socket& sock, std::span<char> into) {
    return ssl_ ? ReadTls(sock, into) : sock.ReadSome(into);
  }
  // As Socket::WriteAll.
  net::Task<net::ErrorCode> WriteAll(net::Socket& sock, std::string_view bytes) {
    return ssl_ ? WriteTls(sock, bytes) : sock.WriteAll(bytes);
  }
  // Sends close_notify (without waiting for the peer's); the caller closes the socket after.
  net::Task<void> Shutdown(net::Socket& sock);
  // What the last failure was (TLS alerts, OpenSSL's reason).
  const std::string& error() const { return error_; }
  // "TLSv1.3", and the cipher suite; empty when inactive.
  std::string_view version() const;
  std::string_view cipher() const;

 private:
  net::Task<net::ReadResult> ReadTls(net::Socket& sock, std::span<char> into);
  net::Task<net::ErrorCode> WriteTls(net::Socket& sock, std::string_view bytes);
  // Moves what OpenSSL wrote into the write BIO out to the socket.
  net::Task<net::ErrorCode> Flush(net::Socket& sock);
  void SetErrorFromQueue(int ssl_error);
  SSL* ssl_ = nullptr;
  std::string out_;  // ciphertext being written (Flush)
  std::string error_;
};

}  // namespace ficus::tls
