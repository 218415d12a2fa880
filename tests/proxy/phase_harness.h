// The test seam for the request path's phases (a friend of Session) and what the phase tests
// share: a real Session on one end of a socketpair (the client), a real Worker (not started) and
// snapshot, and either a loopback upstream run on the same loop or canned upstream bytes.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "proxy/internal/heads.h"
#include "proxy/internal/session.h"

namespace ficus::proxy {

// The test seam (a friend of Session): one session, its worker and loop, and the phases.
class PhaseTest {
 public:
  // `clusters`: the YAML of the clusters list; every route goes to the first cluster.
  explicit PhaseTest(const std::string& clusters) {
    const std::string yaml = "listeners: [{ listen: 127.0.0.1:8080 }]\nclusters: " + clusters +
                             "\nroutes: [{ cluster: app }]\n";
    config::LoadResult r = config::LoadString(yaml, "phases.yaml");
    EXPECT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].ToString());
    snapshot_ = BuildSnapshot(r.config, registry_, 1);
    worker_ = std::make_unique<Worker>(0, loop_, registry_, snapshot_);
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    peer_ = sv[1];
    session_ = std::make_unique<Session>(*worker_, net::Socket(loop_, sv[0]));
    session_->TakeCurrentSnapshot();  // as Run does before each head
  }
  ~PhaseTest() {
    session_.reset();
    ::close(peer_);
    for (int fd : canned_peers_) ::close(fd);
  }

  // Before the first policy-using exchange (the snapshot is built, not yet shared with anyone).
  void AddPolicy(std::unique_ptr<policy::Policy> p) {
    const_cast<Snapshot&>(*snapshot_).route_policies[0].push_back(std::move(p));
  }

  // What the client sends (written before the loop runs; the socketpair buffers it).
  void ClientSends(std::string_view bytes) {
    EXPECT_EQ(::write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  // Everything the session wrote to the client.
  std::string ClientReceived() {
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(peer_, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // Runs `body` on the loop to its end.
  void Drive(std::function<net::Task<void>()> body) {
    net::Spawn([](PhaseTest* t, std::function<net::Task<void>()> body) -> net::Task<void> {
      co_await body();
      t->loop_.Stop();
    }(this, std::move(body)));
    loop_.Run();
  }

  // The read-head phase; true when a request head was read.
  net::Task<bool> ReadHead() {
    auto next = co_await session_->ReadHead();
    const bool read = next && *next == Session::Next::kRequest;
    co_return read;
  }
  // read head -> begin -> route, as the runner does; true when the request was routed.
  net::Task<bool> ReadAndRoute() {
    auto next = co_await session_->ReadHead();
    if (!next || *next != Session::Next::kRequest) co_return false;
    session_->BeginExchange();
    Status routed = session_->Route();
    co_return static_cast<bool>(routed);
  }
  // What Forward does first: the route's cluster.
  void EnterCluster() {
    Exchange& ex = session_->ex_;
    ex.cluster = worker_->cluster(0);
    ex.cluster_cell = &ex.cluster->stats()->Cell(0);
    session_->mem_.in_begin += ex.head.head_size;
  }
  // An upstream connection whose peer already sent `bytes` (and closed, when `close`).
  std::unique_ptr<upstream::Connection> CannedUpstream(std::string_view bytes, bool close) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    EXPECT_EQ(::write(sv[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    if (close) {
      ::close(sv[1]);
    } else {
      canned_peers_.push_back(sv[1]);
    }
    auto conn = std::make_unique<upstream::Connection>(0);
    conn->socket = net::Socket(loop_, sv[0]);
    return conn;
  }

  Session& session() { return *session_; }
  Exchange& ex() { return session_->ex_; }
  net::Loop& loop() { return loop_; }
  net::Task<StepResult> Admit() { return session_->Admit(); }
  net::Task<Status> Forward() { return session_->Forward(*session_->ex_.route); }
  net::Task<Status> RelayResponse(upstream::Connection& conn) {
    return session_->RelayResponse(conn);
  }
  net::Task<void> Fail(const Error& e) { return session_->Fail(e); }
  net::Task<bool> RunExchange() { return session_->RunExchange(); }

 private:
  net::Loop loop_;
  observe::Registry registry_{1};
  std::shared_ptr<const Snapshot> snapshot_;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<Session> session_;
  int peer_ = -1;
  std::vector<int> canned_peers_;
};

namespace phase_test {

inline constexpr const char* kGet = "GET /p HTTP/1.1\r\nHost: shop\r\n\r\n";

// A listening loopback socket (non-blocking) and its port, opened before the config that names
// it; TestUpstream adopts it into the test's loop.
inline int ListenLoopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  EXPECT_EQ(::listen(fd, 16), 0);
  *port = ntohs(a.sin_port);
  return fd;
}

// A loopback upstream on the test's loop: accepts `connections` connections, reads each request
// head, answers from `answers` in turn (closing after each), and keeps what it received.
struct TestUpstream {
  int fd = -1;
  int port = 0;
  std::vector<std::string> requests;
  std::vector<std::string> answers;
  int* order = nullptr;  // shared by several upstreams: answers by request order across them

  TestUpstream() { fd = ListenLoopback(&port); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port); }

  net::Task<void> Serve(net::Loop& loop, int connections) {
    net::Socket listener(loop, fd);
    for (int i = 0; i < connections; ++i) {
      Result<int> accepted = co_await listener.Accept();
      if (!accepted) co_return;
      net::Socket s(loop, *accepted);
      std::string got;
      char buf[4096];
      while (got.find("\r\n\r\n") == std::string::npos) {
        net::ReadResult r = co_await s.ReadSome({buf, sizeof buf});
        if (r.ec || r.bytes == 0) break;
        got.append(buf, r.bytes);
      }
      const size_t n = order ? static_cast<size_t>((*order)++) : requests.size();
      const std::string answer = answers[std::min(n, answers.size() - 1)];
      requests.push_back(got);
      co_await s.WriteAll(answer);
      s.Close();
    }
  }
};

inline std::string Cluster(const std::string& endpoints, const std::string& extra = "") {
  return "[{ name: app, endpoints: [" + endpoints + "], connect_timeout: 1s" + extra + " }]";
}

// A JSON object of string members only ({"a":"b",...}), as the fail phase writes.
inline bool IsFlatJsonObject(std::string_view s) {
  size_t i = 0;
  auto string = [&]() {
    if (i >= s.size() || s[i++] != '"') return false;
    while (i < s.size() && s[i] != '"') {
      if (static_cast<unsigned char>(s[i]) < 0x20) return false;
      if (s[i] == '\\') ++i;
      ++i;
    }
    return i++ < s.size();
  };
  if (s.empty() || s[i++] != '{') return false;
  for (;;) {
    if (!string() || i >= s.size() || s[i++] != ':' || !string() || i >= s.size()) return false;
    if (s[i] == '}') return s.substr(i + 1) == "\n";
    if (s[i++] != ',') return false;
  }
}

}  // namespace phase_test
}  // namespace ficus::proxy
