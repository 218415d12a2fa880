// The HTTP client against local servers: framing (Content-Length, chunked, close-delimited,
// interim 1xx), keep-alive and the stale-connection retry, timeouts, errors, many non-blocking
// calls on one poll, and TLS with a throwaway CA made by the openssl command at test time.
#include "client/client.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace ficus::client {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

// A loopback server on its own thread: accepts connections one after another and gives each to
// `serve` (which reads the request and writes the canned answer).
class Server {
 public:
  using Serve = std::function<void(int fd)>;
  explicit Server(Serve serve) : serve_(std::move(serve)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) {
          if (stop_) return;
          continue;
        }
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        ++accepted_;
        serve_(c);
        ::close(c);
      }
    });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_; }
  std::string url(std::string_view path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  Serve serve_;
  int fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Reads one request head (and a Content-Length body) from fd; returns it, empty at EOF.
std::string ReadRequest(int fd) {
  std::string in;
  char buf[4096];
  for (;;) {
    const size_t end = in.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t want = end + 4;
      const size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < end) want += std::stoul(in.substr(cl + 16));
      if (in.size() >= want) return in;
    }
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return in.empty() ? std::string() : in;
    in.append(buf, static_cast<size_t>(n));
  }
}

void Write(int fd, std::string_view s) { ::send(fd, s.data(), s.size(), MSG_NOSIGNAL); }

Url MustParse(const std::string& text) {
  Url u;
  std::string error;
  EXPECT_TRUE(ParseUrl(text, &u, &error)) << error;
  return u;
}

TEST(ClientUrl, ParsesSchemesHostsPortsAndTargets) {
  Url u = MustParse("https://hooks.example.com/a/b?c=d");
  EXPECT_TRUE(u.https);
  EXPECT_EQ(u.host, "hooks.example.com");
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/a/b?c=d");
  EXPECT_EQ(u.Authority(), "hooks.example.com");
  u = MustParse("http://[::1]:8080");
  EXPECT_FALSE(u.https);
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/");
  EXPECT_EQ(u.Authority(), "[::1]:8080");
  u = MustParse("HTTP://10.0.0.1?x=1");
  EXPECT_EQ(u.port, 80);
  EXPECT_EQ(u.target, "/?x=1");
  for (const char* bad :
       {"", "ftp://a/", "http://", "http://a b/", "http://u@a/", "http://a/#f", "http://a:0/",
        "http://a:70000/", "http://a:/", "http://[::1/", "http://[x]/", "https://[::1]x/"}) {
    Url out;
    std::string error;
    EXPECT_FALSE(ParseUrl(bad, &out, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(Client, ContentLengthBodyAndTheRequestItSent) {
  std::string seen;
  Server server([&](int fd) {
    seen = ReadRequest(fd);
    Write(fd, "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
  });
  Request req;
  req.method = "POST";
  req.target = "/hook?x=1";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = "{}";
  const Response r = Fetch(MustParse(server.url("/ignored")), req, 2s);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.body, "hello");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[1].first, "X-A");
  EXPECT_EQ(r.headers[1].second, "b");
  EXPECT_EQ(seen, "POST /hook?x=1 HTTP/1.1\r\nContent-Type: application/json\r\nHost: 127.0.0.1:" +
                      std::to_string(server.port()) +
                      "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
}

TEST(Client, ChunkedBodyIsDecoded) {
  Server server([](int fd) {
    ReadRequest(fd);
    Write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    std::this_thread::sleep_for(20ms);  // the rest in another segment
    Write(fd, "6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n");
  });
  const Response r = Fetch(MustParse(server.url()), Request{}, 2s);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "hello world");
}

TEST(Client, BodyDelimitedByCloseAndInterimResponses) {
  Server server([](int fd) {
    ReadRequest(fd);
    Write(fd, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ");
    std::this_thread::sleep_for(20ms);
    Write(fd, "the end");
  });
  const Response r = Fetch(MustParse(server.url()), Request{}, 2s);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "until the end");
  EXPECT_FALSE(r.keep_alive);
}

TEST(Client, MalformedOrTruncatedResponsesAreErrors) {
  Server bad([](int fd) {
    ReadRequest(fd);
    Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
  });
  Response r = Fetch(MustParse(bad.url()), Request{}, 2s);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("invalid response from 127.0.0.1:"));
  Server cut([](int fd) {
    ReadRequest(fd);
    Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  });
  r = Fetch(MustParse(cut.url()), Request{}, 2s);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("cut short"));
  Server silent([](int fd) { ReadRequest(fd); });
  r = Fetch(MustParse(silent.url()), Request{}, 2s);
  EXPECT_THAT(r.error, HasSubstr("closed the connection without a response"));
}

TEST(Client, TimesOutWaitingForTheResponse) {
  // The server closes after 1 s; a client that did not time out would report that close
  // instead (no wall-clock upper bound: a busy machine may be slow to wake the client).
  Server server([](int fd) {
    ReadRequest(fd);
    std::this_thread::sleep_for(1s);
  });
  const auto start = std::chrono::steady_clock::now();
  const Response r = Fetch(MustParse(server.url()), Request{}, 200ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("timed out waiting for the response from 127.0.0.1:"));
}

TEST(Client, ConnectionRefused) {
  // Bound, never listening: connect is refused.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const Response r = Fetch(MustParse("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/"),
                           Request{}, 2s);
  ::close(fd);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("Connection refused"));
}

TEST(Client, KeepsTheConnectionAndRetriesOnceWhenTheServerClosedIt) {
  std::atomic<int> requests{0};
  std::atomic<int> connections{0};
  Server server([&](int fd) {
    // Two requests on the first connection, then close it; one on each later connection.
    const int per_connection = connections++ == 0 ? 2 : 1;
    for (int i = 0; i < per_connection; ++i) {
      if (ReadRequest(fd).empty()) return;
      ++requests;
      Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  Client client(MustParse(server.url("/v1/traces")), nullptr);
  for (int i = 0; i < 3; ++i) {
    Request req;
    req.method = "POST";
    req.target = "/v1/traces";
    req.body = "x";
    const Response r = client.Send(req, 2s);
    EXPECT_EQ(r.error, "") << i;
    EXPECT_EQ(r.body, "ok") << i;
  }
  // The third found the first connection closed (stale) and went again on a second one.
  EXPECT_EQ(client.connections(), 2u);
  EXPECT_EQ(requests.load(), 3);
}

TEST(ClientCall, ManyCallsOnOnePoll) {
  Server server([](int fd) {
    ReadRequest(fd);
    Write(fd, "HTTP/1.1 204 No Content\r\n\r\n");
  });
  Url url = MustParse(server.url("/health"));
  Destination dest;
  std::string error;
  ASSERT_TRUE(Destination::Resolve(url, nullptr, &dest, &error)) << error;
  std::vector<Call> calls(8);
  Call::Options head_only;
  head_only.head_only = true;
  for (Call& c : calls) c.Start(dest, Request{}, head_only);
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    std::vector<pollfd> fds;
    for (Call& c : calls) {
      if (!c.done()) fds.push_back({c.fd(), c.events(), 0});
    }
    if (fds.empty() || std::chrono::steady_clock::now() > deadline) break;
    ::poll(fds.data(), fds.size(), 50);
    for (Call& c : calls) {
      if (!c.done()) c.Advance();
    }
  }
  for (const Call& c : calls) {
    EXPECT_TRUE(c.done());
    EXPECT_EQ(c.response().error, "");
    EXPECT_EQ(c.response().status, 204);
  }
}

// ---------------------------------------------------------------------------------------------
// TLS: a throwaway CA and server certificates, made with the openssl command in a temp dir.

class TlsFiles {
 public:
  TlsFiles() {
    dir_ = std::filesystem::temp_directory_path() /
           ("ficus-client-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    // ca: the test CA; other: a CA nobody trusts; server: for "localhost" and 127.0.0.1 by ca.
    const std::string script =
        "set -e; cd '" + d +
        "'; "
        "for ca in ca other; do openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
        "-subj \"/CN=ficus test $ca\" -keyout $ca.key -out $ca.pem "
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign "
        ">/dev/null 2>&1; done; "
        "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
        "-out server.csr >/dev/null 2>&1; "
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.cnf; "
        "printf 'subjectAltName=DNS:elsewhere.example\\n' > wrong.cnf; "
        "for c in server wrong; do openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile $c.cnf -out $c.pem >/dev/null 2>&1; done";
    ok_ = std::system(("bash -c \"" + Escape(script) + "\"").c_str()) == 0;
  }
  ~TlsFiles() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::string path(const char* name) const { return (dir_ / name).string(); }

 private:
  static std::string Escape(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '"' || c == '\\' || c == '$') out += '\\';
      out += c;
    }
    return out;
  }
  std::filesystem::path dir_;
  bool ok_ = false;
};

// An HTTPS server (OpenSSL) answering every request with 200 "secure".
class TlsServer {
 public:
  explicit TlsServer(const TlsFiles& files, const char* cert = "server.pem") {
    ctx_ = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx_, files.path(cert).c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx_, files.path("server.key").c_str(), SSL_FILETYPE_PEM),
              1);
    server_ = std::make_unique<Server>([this](int fd) {
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) == 1) {
        std::string in;
        char buf[4096];
        while (in.find("\r\n\r\n") == std::string::npos) {
          const int n = SSL_read(ssl, buf, sizeof buf);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
        }
        sni_ = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) ?: "";
        const std::string out = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure";
        SSL_write(ssl, out.data(), static_cast<int>(out.size()));
        SSL_shutdown(ssl);
      }
      SSL_free(ssl);
    });
  }
  ~TlsServer() {
    server_.reset();
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return server_->port(); }
  std::string sni() const { return sni_; }

 private:
  SSL_CTX* ctx_;
  std::string sni_;
  std::unique_ptr<Server> server_;
};

class ClientTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { files_ = new TlsFiles(); }
  static void TearDownTestSuite() { delete files_; }
  void SetUp() override {
    if (!files_->ok()) GTEST_SKIP() << "the openssl command could not make test certificates";
  }
  Response Get(const std::string& host, const TlsServer& server, const std::string& ca_file) {
    std::string error;
    auto tls = TlsContext::Create({ca_file}, &error);
    EXPECT_NE(tls, nullptr) << error;
    return Fetch(MustParse("https://" + host + ":" + std::to_string(server.port()) + "/"),
                 Request{}, 5s, tls);
  }
  static TlsFiles* files_;
};
TlsFiles* ClientTls::files_ = nullptr;

TEST_F(ClientTls, AValidCertificatePassesWithSniAndHostName) {
  TlsServer server(*files_);
  Response r = Get("localhost", server, files_->path("ca.pem"));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "secure");
  EXPECT_EQ(server.sni(), "localhost");
  // An IP literal is checked against the certificate's IP addresses (and sends no SNI).
  r = Get("127.0.0.1", server, files_->path("ca.pem"));
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.body, "secure");
}

TEST_F(ClientTls, AWrongHostNameIsRefused) {
  // A certificate from the trusted CA, but for another name.
  TlsServer server(*files_, "wrong.pem");
  Response r = Get("localhost", server, files_->path("ca.pem"));
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("certificate verification failed: hostname mismatch"));
  EXPECT_THAT(r.error, HasSubstr("the certificate is not for 'localhost'"));
  r = Get("127.0.0.1", server, files_->path("ca.pem"));
  EXPECT_THAT(r.error, HasSubstr("certificate verification failed: IP address mismatch"));
}

TEST_F(ClientTls, AnUnknownCaIsRefused) {
  TlsServer server(*files_);
  Response r = Get("localhost", server, files_->path("other.pem"));
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("TLS handshake with localhost:"));
  EXPECT_THAT(r.error, HasSubstr("certificate verification failed: unable to get local issuer"));
  EXPECT_THAT(r.error, HasSubstr("not in ca_file"));
  // The system store does not know the test CA either.
  r = Get("localhost", server, "");
  EXPECT_THAT(r.error, HasSubstr("the system store does not trust; set ca_file"));
}

TEST_F(ClientTls, AMissingCaFileIsAClearError) {
  std::string error;
  EXPECT_EQ(TlsContext::Create({files_->path("absent.pem")}, &error), nullptr);
  EXPECT_THAT(error, HasSubstr("cannot load ca_file"));
}

TEST_F(ClientTls, PlainHttpServerIsNotTls) {
  Server plain([](int fd) {
    std::this_thread::sleep_for(20ms);  // the client's hello has arrived: a reset, not a FIN
    Write(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
  });
  std::string error;
  auto tls = TlsContext::Create({files_->path("ca.pem")}, &error);
  const Response r = Fetch(MustParse("https://localhost:" + std::to_string(plain.port()) + "/"),
                           Request{}, 2s, tls);
  EXPECT_EQ(r.status, 0);
  EXPECT_THAT(r.error, HasSubstr("TLS handshake with localhost:"));
  EXPECT_THAT(r.error, Not(HasSubstr("timed out")));
}

}  // namespace
}  // namespace ficus::client
