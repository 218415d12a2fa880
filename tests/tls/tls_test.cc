// The TLS layer on real loopback sockets inside one Loop: both ends of each connection are
// coroutines of the same loop, so every test is deterministic and nothing blocks.
#include "tls/tls.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

namespace ficus::tls {
namespace {

namespace fs = std::filesystem;

// A CA, a server certificate for "localhost" and 127.0.0.1 signed by it, and an unrelated CA,
// made once per test binary with the openssl CLI.
class Certs {
 public:
  static const Certs& Get() {
    static Certs c;
    return c;
  }
  std::string dir, ca, other_ca, cert, key;

 private:
  ~Certs() { fs::remove_all(dir); }
  Certs() {
    char tmpl[] = "/tmp/ficus-tls-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    ca = dir + "/ca.crt";
    other_ca = dir + "/other.crt";
    cert = dir + "/server.crt";
    key = dir + "/server.key";
    const std::string d = dir;
    const std::string script =
        "cd " + d +
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
        "-subj /CN=test-ca 2>/dev/null"
        " && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.crt -days 2 "
        "-subj /CN=other-ca 2>/dev/null"
        " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=localhost 2>/dev/null"
        " && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf"
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
        "-out server.crt -days 2 -extfile ext.cnf 2>/dev/null";
    if (std::system(script.c_str()) != 0) ADD_FAILURE() << "openssl could not make certificates";
  }
};

net::Socket ListenOnLoopback(net::Loop& loop, net::Address* at) {
  net::Socket listener = net::Listen(loop, net::MakeAddress("127.0.0.1", 0));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  EXPECT_EQ(getsockname(listener.fd(), reinterpret_cast<sockaddr*>(&bound), &len), 0);
  *at = net::MakeAddress("127.0.0.1", ntohs(bound.sin_port));
  return listener;
}

std::shared_ptr<const Context> ServerContext() {
  auto ctx = Context::Server(Certs::Get().cert, Certs::Get().key);
  EXPECT_TRUE(ctx.ok()) << ctx.message();
  return ctx.ok() ? *ctx : nullptr;
}

std::shared_ptr<const Context> ClientContext(Verify verify, const std::string& ca) {
  ClientOptions o;
  o.verify = verify;
  o.ca_file = ca;
  auto ctx = Context::Client(o);
  EXPECT_TRUE(ctx.ok()) << ctx.message();
  return ctx.ok() ? *ctx : nullptr;
}

struct Ends {
  std::string server_error = "unset", client_error = "unset";
  std::string echoed;
  bool server_saw_end = false;
};

// The server accepts one connection, shakes hands, echoes what it reads until the client's
// close_notify; the client sends `message` (large ones span many records) and reads it back.
void RunEcho(const Context& server_ctx, const Context& client_ctx, const std::string& peer_name,
             const std::string& message, Ends* ends) {
  net::Loop loop;
  net::Address at;
  net::Socket listener = ListenOnLoopback(loop, &at);
  int done = 0;
  auto finish = [&] {
    if (++done == 2) loop.Stop();
  };
  net::Spawn([](net::Socket& listener, net::Loop& loop, const Context& ctx, Ends* ends,
                std::function<void()> finish) -> net::Task<void> {
    Result<int> fd = co_await listener.Accept();
    net::Socket s(loop, *fd);
    Stream tls(ctx);
    Outcome<void> hs = co_await tls.Handshake(s);
    ends->server_error = hs.message();
    if (hs) {
      std::string buf(4096, '\0');
      for (;;) {
        net::ReadResult r = co_await tls.ReadSome(s, buf);
        if (r.ec || r.bytes == 0) {
          ends->server_saw_end = !r.ec;
          break;
        }
        if (co_await tls.WriteAll(s, std::string_view(buf.data(), r.bytes))) break;
      }
    }
    finish();
  }(listener, loop, server_ctx, ends, finish));
  net::Spawn([](net::Loop& loop, net::Address at, const Context& ctx, std::string peer,
                std::string message, Ends* ends, std::function<void()> finish) -> net::Task<void> {
    net::Socket s;
    if (!co_await s.Connect(loop, at)) {
      Stream tls(ctx, peer);
      Outcome<void> hs = co_await tls.Handshake(s);
      ends->client_error = hs.message();
      if (hs && !co_await tls.WriteAll(s, message)) {
        std::string buf(8192, '\0');
        while (ends->echoed.size() < message.size()) {
          net::ReadResult r = co_await tls.ReadSome(s, buf);
          if (r.ec || r.bytes == 0) break;
          ends->echoed.append(buf.data(), r.bytes);
        }
        co_await tls.Shutdown(s);
      }
    }
    s.Close();
    finish();
  }(loop, at, client_ctx, peer_name, message, ends, finish));
  loop.Run();
}

TEST(TlsTest, HandshakeAndEchoVerifyingTheHostName) {
  auto server = ServerContext();
  auto client = ClientContext(Verify::kFull, Certs::Get().ca);
  ASSERT_TRUE(server && client);
  std::string big(300 * 1024, 'x');  // many records each way
  for (size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  Ends ends;
  RunEcho(*server, *client, "localhost", big, &ends);
  EXPECT_EQ(ends.client_error, "");
  EXPECT_EQ(ends.server_error, "");
  EXPECT_TRUE(ends.echoed == big);
  EXPECT_TRUE(ends.server_saw_end);  // close_notify read as the end of the stream
}

TEST(TlsTest, VerifiesAnIpAddressAgainstTheCertificate) {
  auto server = ServerContext();
  auto client = ClientContext(Verify::kFull, Certs::Get().ca);
  Ends ends;
  RunEcho(*server, *client, "127.0.0.1", "ping", &ends);
  EXPECT_EQ(ends.client_error, "");
  EXPECT_EQ(ends.echoed, "ping");
}

TEST(TlsTest, AWrongCaFailsWithTheReason) {
  auto server = ServerContext();
  auto client = ClientContext(Verify::kCa, Certs::Get().other_ca);
  Ends ends;
  RunEcho(*server, *client, "localhost", "ping", &ends);
  EXPECT_NE(ends.client_error.find("certificate verify failed"), std::string::npos)
      << ends.client_error;
  EXPECT_NE(ends.client_error.find("local issuer"), std::string::npos) << ends.client_error;
  EXPECT_NE(ends.server_error, "");  // the alert reached the server
  EXPECT_EQ(ends.echoed, "");
}

TEST(TlsTest, AHostNameTheCertificateDoesNotNameFails) {
  auto server = ServerContext();
  auto client = ClientContext(Verify::kFull, Certs::Get().ca);
  Ends ends;
  RunEcho(*server, *client, "db.example.com", "ping", &ends);
  EXPECT_NE(ends.client_error.find("hostname mismatch"), std::string::npos) << ends.client_error;
  // verify-ca does not look at the name.
  auto ca_only = ClientContext(Verify::kCa, Certs::Get().ca);
  Ends ok;
  RunEcho(*server, *ca_only, "db.example.com", "ping", &ok);
  EXPECT_EQ(ok.client_error, "");
  EXPECT_EQ(ok.echoed, "ping");
}

// A peer that connects and never says anything: the handshake fails at its deadline.
TEST(TlsTest, HandshakeTimesOut) {
  auto server = ServerContext();
  net::Loop loop;
  net::TimeoutList timeouts;
  loop.SetTick(std::chrono::milliseconds(10), [&] { timeouts.Sweep(loop.NowMs()); });
  net::Address at;
  net::Socket listener = ListenOnLoopback(loop, &at);
  std::string error = "unset";
  net::Socket silent;
  net::Spawn([](net::Loop& loop, net::Address at, net::Socket& silent) -> net::Task<void> {
    (void)co_await silent.Connect(loop, at);
  }(loop, at, silent));
  const auto start = std::chrono::steady_clock::now();
  net::Spawn([](net::Socket& listener, net::Loop& loop, const Context& ctx,
                net::TimeoutList& timeouts, std::string& error) -> net::Task<void> {
    Result<int> fd = co_await listener.Accept();
    net::Socket s(loop, *fd);
    Stream tls(ctx);
    Outcome<void> hs = co_await tls.Handshake(s, timeouts, loop.NowMs() + 200);
    error = hs.message();
    loop.Stop();
  }(listener, loop, *server, timeouts, error));
  loop.Run();
  EXPECT_EQ(error, "timed out");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
  EXPECT_EQ(timeouts.size(), 0u);
}

// A peer that speaks something else (plain HTTP, random bytes): the handshake fails with
// OpenSSL's reason, at once, and the stream is unusable.
TEST(TlsTest, APeerSendingGarbageFailsTheHandshake) {
  auto server = ServerContext();
  for (const std::string& garbage :
       {std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), std::string(600, '\x16'),
        std::string("\x16\x03\x01\x00\x05hello", 10)}) {
    net::Loop loop;
    net::Address at;
    net::Socket listener = ListenOnLoopback(loop, &at);
    std::string error = "unset";
    net::Socket peer;
    net::Spawn([](net::Loop& loop, net::Address at, net::Socket& peer,
                  std::string garbage) -> net::Task<void> {
      if (!co_await peer.Connect(loop, at)) (void)co_await peer.WriteAll(garbage);
    }(loop, at, peer, garbage));
    net::Spawn([](net::Socket& listener, net::Loop& loop, const Context& ctx,
                  std::string& error) -> net::Task<void> {
      Result<int> fd = co_await listener.Accept();
      net::Socket s(loop, *fd);
      Stream tls(ctx);
      Outcome<void> hs = co_await tls.Handshake(s);
      error = hs.ok() ? "" : hs.message();
      loop.Stop();
    }(listener, loop, *server, error));
    loop.Run();
    EXPECT_NE(error, "") << garbage.size();
    EXPECT_NE(error, "unset");
    EXPECT_NE(error, "timed out");
  }
}

TEST(TlsTest, InactiveStreamIsPlainSocketIo) {
  net::Loop loop;
  net::Address at;
  net::Socket listener = ListenOnLoopback(loop, &at);
  std::string got;
  net::Spawn([](net::Socket& listener, net::Loop& loop, std::string& got) -> net::Task<void> {
    Result<int> fd = co_await listener.Accept();
    net::Socket s(loop, *fd);
    Stream plain;
    char buf[16];
    net::ReadResult r = co_await plain.ReadSome(s, {buf, sizeof buf});
    got.assign(buf, r.bytes);
    loop.Stop();
  }(listener, loop, got));
  net::Socket c;
  net::Spawn([](net::Loop& loop, net::Address at, net::Socket& c) -> net::Task<void> {
    if (!co_await c.Connect(loop, at)) {
      Stream plain;
      (void)co_await plain.WriteAll(c, "plain");
    }
  }(loop, at, c));
  loop.Run();
  EXPECT_EQ(got, "plain");
}

TEST(TlsTest, LoadErrorsNameTheFileAndWhy) {
  const Certs& c = Certs::Get();
  auto missing = Context::Server(c.dir + "/nope.crt", c.key);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(),
            "cannot read certificate " + c.dir + "/nope.crt: No such file or directory");
  auto swapped = Context::Server(c.key, c.cert);  // a key where the certificate goes
  ASSERT_FALSE(swapped.ok());
  EXPECT_NE(swapped.message().find("certificate " + c.key), std::string::npos) << swapped.message();
  // A key of another certificate.
  const std::string other_key = c.dir + "/other.key";
  auto mismatch = Context::Server(c.cert, other_key);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.message(), "key " + other_key + " does not match certificate " + c.cert);
  ClientOptions not_a_ca;
  not_a_ca.verify = Verify::kCa;
  not_a_ca.ca_file = c.key;
  auto no_ca = Context::Client(not_a_ca);
  ASSERT_FALSE(no_ca.ok());
  EXPECT_EQ(no_ca.message(), "CA file " + c.key + " holds no PEM certificate");
  ClientOptions half;
  half.cert_file = c.cert;
  EXPECT_FALSE(Context::Client(half).ok());
}

}  // namespace
}  // namespace ficus::tls
