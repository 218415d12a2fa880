// Sockets on a loop: reads, peeks, writes, connect, accept, listen.
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "net/internal/errors.h"
#include "net/net.h"

namespace ficus::net {

using internal::LastError;
using internal::SystemError;

// Suspends until the socket's read (or write) readiness changes or it is cancelled.
struct Socket::Waiter {
  internal::IoState* s;
  bool write;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept {
    (write ? s->write_waiter : s->read_waiter) = h;
  }
  // True when the wait was cancelled.
  bool await_resume() noexcept {
    bool& cancelled = write ? s->write_cancelled : s->read_cancelled;
    return std::exchange(cancelled, false);
  }
};

Socket::Socket(Loop& loop, int fd) : state_(loop.Register(fd)) {}

Socket& Socket::operator=(Socket&& o) noexcept {
  if (this != &o) {
    Close();
    state_ = std::exchange(o.state_, nullptr);
  }
  return *this;
}

void Socket::Cancel() {
  if (!state_) return;
  if (state_->read_waiter) {
    state_->read_cancelled = true;
    state_->loop->Ready(std::exchange(state_->read_waiter, nullptr));
  }
  if (state_->write_waiter) {
    state_->write_cancelled = true;
    state_->loop->Ready(std::exchange(state_->write_waiter, nullptr));
  }
}

void Socket::Close() {
  if (!state_) return;
  // REQUIRES (by design): no coroutine is suspended on this socket — the owner closes it
  // after its own waits returned; Cancel() first otherwise.
  FICUS_DCHECK(!state_->read_waiter && !state_->write_waiter);
  state_->loop->Unregister(state_);
  state_ = nullptr;
}

int Socket::Release() {
  if (!state_) return -1;
  FICUS_DCHECK(!state_->read_waiter && !state_->write_waiter);
  const int fd = state_->loop->Forget(state_);
  state_ = nullptr;
  return fd;
}

void Socket::ShutdownWrite() {
  if (state_) ::shutdown(state_->fd, SHUT_WR);
}

Task<ReadResult> Socket::ReadSome(std::span<char> into) {
  internal::IoState* s = state_;
  if (!s) co_return ReadResult{0, Aborted()};
  for (;;) {
    if (s->readable) {
      ssize_t n = ::recv(s->fd, into.data(), into.size(), 0);
      if (n > 0) {
        // A short read drained the socket: the next read waits for an event instead of
        // trying (and failing) first. Data arriving after this recv raises a new edge; an
        // end of stream that came with the data does not, hence the hangup exception.
        if (static_cast<size_t>(n) < into.size() && !s->hangup) s->readable = false;
        co_return ReadResult{static_cast<size_t>(n), {}};
      }
      if (n == 0) co_return ReadResult{0, {}};
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return ReadResult{0, LastError()};
      s->readable = false;
    }
    if (co_await Waiter{s, false}) co_return ReadResult{0, Aborted()};
  }
}

Task<ReadResult> Socket::PeekSome(std::span<char> into, size_t seen) {
  internal::IoState* s = state_;
  if (!s) co_return ReadResult{0, Aborted()};
  for (;;) {
    if (s->readable) {
      ssize_t n = ::recv(s->fd, into.data(), into.size(), MSG_PEEK);
      if (n > 0 && (static_cast<size_t>(n) > seen || seen >= into.size())) {
        // A peek that came up short saw all that was queued: as after a short read, what
        // arrives later raises a new edge, so the next peek waits for it (the peeked bytes are
        // still queued; Consume() sets the flag again if it leaves some of them there).
        const bool saw_all = static_cast<size_t>(n) < into.size() && !s->hangup;
        s->short_peek_bytes = saw_all ? static_cast<size_t>(n) : 0;
        if (saw_all) s->readable = false;
        co_return ReadResult{static_cast<size_t>(n), {}};
      }
      if (n > 0) {
        // Nothing beyond what the caller has seen (an edge for bytes an earlier peek showed).
        if (s->hangup) co_return ReadResult{0, {}};
        s->readable = false;
      } else if (n == 0) {
        co_return ReadResult{0, {}};
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN) {
        co_return ReadResult{0, LastError()};
      } else {
        s->readable = false;
      }
    }
    if (co_await Waiter{s, false}) co_return ReadResult{0, Aborted()};
  }
}

size_t Socket::Consume(size_t n) {
  internal::IoState* s = state_;
  if (!s || n == 0) return 0;
  ssize_t got;
  do {
    got = ::recv(s->fd, nullptr, n, MSG_TRUNC | MSG_DONTWAIT);  // TCP: drops, copies nothing
  } while (got < 0 && errno == EINTR);
  const size_t dropped = got > 0 ? static_cast<size_t>(got) : 0;
  // Bytes the short peek saw are still queued (or the drop failed): let the next read find out.
  if (dropped < s->short_peek_bytes) s->readable = true;
  s->short_peek_bytes = 0;
  return dropped;
}

Task<ErrorCode> Socket::WaitReadable() {
  internal::IoState* s = state_;
  if (!s) co_return Aborted();
  if (s->readable) co_return ErrorCode{};
  if (co_await Waiter{s, false}) co_return Aborted();
  co_return ErrorCode{};
}

bool Socket::IsQuiet() {
  internal::IoState* s = state_;
  if (!s || s->hangup) return false;
  if (!s->readable) return true;
  char c;
  ssize_t n;
  do {
    n = ::recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno == EAGAIN) {
    s->readable = false;  // the event was for bytes a read already took
    return true;
  }
  return false;  // bytes, EOF or an error
}

Task<ErrorCode> Socket::WriteAll(iovec* iov, int count) {
  internal::IoState* s = state_;
  if (!s) co_return Aborted();
  while (count > 0) {
    if (!s->writable) {
      if (co_await Waiter{s, true}) co_return Aborted();
      continue;
    }
    ssize_t n = ::writev(s->fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return LastError();
      s->writable = false;
      continue;
    }
    size_t written = static_cast<size_t>(n);
    while (count > 0 && written >= iov->iov_len) {
      written -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + written;
      iov->iov_len -= written;
    }
  }
  co_return ErrorCode{};
}

Task<ErrorCode> Socket::WriteAll(std::string_view bytes) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  co_return co_await WriteAll(&iov, 1);
}

Task<ErrorCode> Socket::Connect(Loop& loop, const Address& to) {
  Close();
  int fd = ::socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return LastError();
  SetNoDelay(fd);
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length);
  if (rc != 0 && errno != EINPROGRESS) {
    ErrorCode ec = LastError();
    ::close(fd);
    co_return ec;
  }
  state_ = loop.Register(fd);
  if (rc != 0) {
    state_->writable = false;
    while (!state_->writable) {
      if (co_await Waiter{state_, true}) co_return Aborted();
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) co_return ErrorCode(err, std::generic_category());
  }
  co_return ErrorCode{};
}

Task<Result<int>> Socket::Accept() {
  internal::IoState* s = state_;
  for (;;) {
    if (!s) co_return Fail(ErrorKind::kInternal, Side::kInternal, "listener closed");
    int fd = ::accept4(s->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) co_return fd;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno != EAGAIN) {
      // EMFILE, ENFILE, ENOBUFS, ENOMEM: the caller backs off.
      co_return Fail(ErrorKind::kOverloaded, Side::kInternal, "accept failed");
    }
    s->readable = false;
    if (co_await Waiter{s, false})
      co_return Fail(ErrorKind::kInternal, Side::kInternal, "cancelled");
    s = state_;
  }
}

size_t Socket::PeerAddress(char* out, size_t size) const {
  if (!state_) return 0;
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getpeername(state_->fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  const char* p = nullptr;
  if (ss.ss_family == AF_INET) {
    p = ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, out, size);
  } else if (ss.ss_family == AF_INET6) {
    p = ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, out, size);
  }
  return p ? std::strlen(out) : 0;
}

void SetNoDelay(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Socket Listen(Loop& loop, const Address& at, int backlog) {
  const std::string where = std::string("listen ").append(at.ToString());
  int fd = ::socket(at.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SystemError(where);
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, reinterpret_cast<const sockaddr*>(&at.storage), at.length) != 0 ||
      ::listen(fd, backlog) != 0) {
    auto err = SystemError(where);
    ::close(fd);
    throw err;
  }
  return Socket(loop, fd);
}

}  // namespace ficus::net
