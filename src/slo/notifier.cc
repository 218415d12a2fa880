// Webhook delivery: a background thread, a bounded queue, retries with exponential backoff, and
// a small blocking HTTP/1.1 client with timeouts. Never on a worker thread.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "slo/slo.h"

namespace ficus::slo {

namespace {

using Clock = std::chrono::steady_clock;

// Waits for `events` on fd until `deadline`. True when ready.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

// Connects to the first address of host:port that accepts within the deadline. -1 on failure.
int Connect(const config::Webhook& hook, Clock::time_point deadline, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(hook.port);
  const int rc = ::getaddrinfo(hook.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "cannot resolve " + hook.host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      int err = errno;
      if (err == EINPROGRESS && WaitFor(fd, POLLOUT, deadline)) {
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      } else if (err == EINPROGRESS) {
        err = ETIMEDOUT;
      }
      if (err != 0) {
        *error = "connect to " + hook.host + ":" + port + ": " + std::strerror(err);
        ::close(fd);
        fd = -1;
      }
    }
  }
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace

PostResult HttpPost(const config::Webhook& hook, std::string_view body,
                    std::chrono::milliseconds timeout, std::string_view extra_headers) {
  PostResult result;
  const Clock::time_point deadline = Clock::now() + timeout;
  const int fd = Connect(hook, deadline, &result.error);
  if (fd < 0) return result;
  const bool v6 = hook.host.find(':') != std::string::npos;
  std::string request = "POST " + hook.target + " HTTP/1.1\r\nHost: ";
  request.append(v6 ? "[" + hook.host + "]" : hook.host);
  if (hook.port != 80) request.append(":").append(std::to_string(hook.port));
  request.append(
      "\r\nUser-Agent: ficus-slo\r\nContent-Type: application/json\r\nConnection: close\r\n");
  request.append(extra_headers);
  request.append("Content-Length: ");
  request.append(std::to_string(body.size())).append("\r\n\r\n").append(body);

  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFor(fd, POLLOUT, deadline)) {
        result.error = "timed out sending the request";
        ::close(fd);
        return result;
      }
    } else {
      result.error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return result;
    }
  }
  // Only the status line matters: read until its end.
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    char buf[1024];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      head.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!WaitFor(fd, POLLIN, deadline)) {
        result.error = "timed out waiting for the response";
        ::close(fd);
        return result;
      }
    } else {
      result.error = std::string("recv: ") + std::strerror(errno);
      ::close(fd);
      return result;
    }
  }
  ::close(fd);
  // "HTTP/1.x NNN ..."
  if (head.size() >= 12 && head.starts_with("HTTP/1.") && head[8] == ' ' &&
      std::all_of(head.begin() + 9, head.begin() + 12,
                  [](char c) { return c >= '0' && c <= '9'; })) {
    result.status = std::stoi(head.substr(9, 3));
    if (result.status < 100) result.status = 0;
  }
  if (result.status == 0) result.error = "no valid HTTP response";
  return result;
}

Notifier::Notifier(Options options) : options_(options), thread_([this] { Loop(); }) {}

Notifier::~Notifier() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::chrono::milliseconds Notifier::Backoff(int attempt) const {
  auto d = options_.first_backoff;
  for (int i = 1; i < attempt && d < options_.max_backoff; ++i) d *= 2;
  return std::min(d, options_.max_backoff);
}

void Notifier::Post(const std::vector<config::Webhook>& hooks, std::string body) {
  auto shared = std::make_shared<const std::string>(std::move(body));
  {
    std::lock_guard lock(mu_);
    for (const config::Webhook& hook : hooks) {
      if (queue_.size() >= options_.max_queue) {
        ++stats_.dropped;
        continue;
      }
      queue_.push_back(Delivery{hook, shared, 0, Clock::now()});
    }
  }
  cv_.notify_all();
}

bool Notifier::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return queue_.empty() && in_flight_ == 0; });
}

Notifier::Stats Notifier::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Notifier::Loop() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (queue_.empty()) {
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      continue;
    }
    // The delivery due first (retries wait for their backoff; new ones are due now).
    auto next =
        std::min_element(queue_.begin(), queue_.end(),
                         [](const Delivery& a, const Delivery& b) { return a.due < b.due; });
    if (next->due > Clock::now()) {
      cv_.wait_until(lock, next->due);
      continue;  // re-check: stop, or an earlier delivery queued meanwhile
    }
    Delivery d = std::move(*next);
    queue_.erase(next);
    ++in_flight_;
    lock.unlock();
    const PostResult r = HttpPost(d.hook, *d.body, options_.timeout);
    lock.lock();
    --in_flight_;
    ++stats_.attempts;
    ++d.attempts;
    if (r.status >= 200 && r.status < 300) {
      ++stats_.delivered;
    } else if (d.attempts >= options_.max_attempts) {
      ++stats_.failed;
      log::warn("slo webhook {} failed after {} attempts: {}", d.hook.url, d.attempts,
                r.status ? "status " + std::to_string(r.status) : r.error);
    } else {
      d.due = Clock::now() + Backoff(d.attempts);
      queue_.push_back(std::move(d));
    }
    cv_.notify_all();  // Flush waiters
  }
}

}  // namespace ficus::slo
