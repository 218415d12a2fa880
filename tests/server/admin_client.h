// What the admin server tests share: a blocking loopback client that reads HTTP/1.1 responses,
// and a fixture with a server on an ephemeral port.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "server/internal/admin_api.h"
#include "server/internal/admin_server.h"

namespace ficus::server::admin_test {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A blocking loopback client with a receive timeout, reading HTTP/1.1 responses framed by
// Content-Length (the admin server always sends it).
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) throw std::runtime_error("socket");
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~Client() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }

  void Send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }

  // Reads one response; nullopt on EOF/timeout/garbage. `head_request`: no body follows.
  std::optional<HttpResponse> Read(bool head_request = false) {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return std::nullopt;
    }
    HttpResponse r;
    std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    size_t eol = head.find("\r\n");
    std::string status_line = head.substr(0, eol);
    if (status_line.rfind("HTTP/1.1 ", 0) != 0) return std::nullopt;
    r.status = std::stoi(status_line.substr(9, 3));
    size_t pos = eol + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      std::string line = head.substr(pos, e - pos);
      size_t colon = line.find(':');
      if (colon == std::string::npos) return std::nullopt;
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[Lower(line.substr(0, colon))] = value;
      pos = e + 2;
    }
    if (head_request || r.status / 100 == 1) return r;
    size_t length = std::stoul(r.headers.at("content-length"));
    while (buf_.size() < length) {
      if (!Fill()) return std::nullopt;
    }
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  std::optional<HttpResponse> Get(const std::string& path, const std::string& method = "GET",
                                  const std::string& extra_headers = "") {
    Send(method + " " + path + " HTTP/1.1\r\nHost: admin\r\n" + extra_headers + "\r\n");
    return Read(method == "HEAD");
  }

  // True when the server closed the connection (EOF) with nothing more to read.
  bool SeesEof() {
    if (!buf_.empty()) return false;
    char c;
    ssize_t n = recv(fd_, &c, 1, 0);
    return n == 0;
  }

  const std::string& leftover() const { return buf_; }

 private:
  bool Fill() {
    char tmp[4096];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void StartServer(AdminOptions options = {}) {
    AdminHandlers h;
    h.ready = [this] { return ready_.load(); };
    h.config_yaml = [] { return std::string("workers: 2\nadmin:\n  token: <redacted>\n"); };
    h.metrics = [this] {
      ++scrapes_;
      return std::string("# HELP x_total X.\n# TYPE x_total counter\nx_total 1\n");
    };
    server_ = std::make_unique<AdminServer>("127.0.0.1", 0, std::move(h), options);
    server_->Start();
  }
  uint16_t port() const { return server_->port(); }

  std::atomic<bool> ready_{true};
  std::atomic<int> scrapes_{0};
  std::unique_ptr<AdminServer> server_;
};

}  // namespace ficus::server::admin_test
