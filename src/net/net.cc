#include "net/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <stdexcept>

namespace ficus::net {

tcp::endpoint MakeEndpoint(const std::string& ip, uint16_t port) {
  ErrorCode ec;
  auto addr = asio::ip::make_address(ip, ec);
  if (ec) throw std::runtime_error("not an IP address: '" + ip + "'");
  return tcp::endpoint(addr, port);
}

tcp::acceptor Listen(asio::io_context& io, const tcp::endpoint& at, int backlog) {
  auto where = [&] {
    return "listen " + at.address().to_string() + ":" + std::to_string(at.port());
  };
  tcp::acceptor acceptor(io);
  ErrorCode ec;
  acceptor.open(at.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) {
    int one = 1;
    if (::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
      ec = ErrorCode(errno, boost::system::system_category());
  }
  if (!ec) acceptor.bind(at, ec);
  if (!ec) acceptor.listen(backlog, ec);
  if (ec) throw std::system_error(ec.value(), std::generic_category(), where());
  acceptor.non_blocking(true);
  return acceptor;
}

void PrepareSocket(tcp::socket& socket) {
  ErrorCode ignored;
  socket.non_blocking(true, ignored);
  socket.set_option(tcp::no_delay(true), ignored);
}

Task<ReadResult> ReadSome(tcp::socket& socket, std::span<char> into) {
  ReadResult r;
  r.bytes = co_await socket.async_read_some(asio::buffer(into.data(), into.size()),
                                            asio::redirect_error(asio::use_awaitable, r.ec));
  if (r.ec == asio::error::eof) {
    r.ec = {};
    r.bytes = 0;
  }
  co_return r;
}

Task<ErrorCode> WriteAll(tcp::socket& socket, iovec* iov, int count) {
  const int fd = socket.native_handle();
  while (count > 0) {
    ssize_t n = ::writev(fd, iov, count);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return ErrorCode(errno, boost::system::system_category());
      ErrorCode ec;
      co_await socket.async_wait(tcp::socket::wait_write,
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return ec;
      continue;
    }
    // Drop the fully written buffers, trim the partially written one.
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

Task<ErrorCode> WriteAll(tcp::socket& socket, std::string_view bytes) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  co_return co_await WriteAll(socket, &iov, 1);
}

size_t PeerAddress(const tcp::socket& socket, char* out, size_t size) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (::getpeername(const_cast<tcp::socket&>(socket).native_handle(),
                    reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return 0;
  const char* p = nullptr;
  if (ss.ss_family == AF_INET) {
    p = ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, out, size);
  } else if (ss.ss_family == AF_INET6) {
    p = ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, out, size);
  }
  return p ? std::char_traits<char>::length(out) : 0;
}

void TimeoutList::Add(Entry* e) {
  e->prev_ = nullptr;
  e->next_ = head_;
  if (head_) head_->prev_ = e;
  head_ = e;
  ++size_;
}

void TimeoutList::Remove(Entry* e) {
  if (e->prev_) e->prev_->next_ = e->next_;
  else head_ = e->next_;
  if (e->next_) e->next_->prev_ = e->prev_;
  e->prev_ = e->next_ = nullptr;
  --size_;
}

void TimeoutList::Sweep(int64_t now_ms) {
  for (Entry* e = head_; e != nullptr;) {
    Entry* next = e->next_;  // OnTimeout only cancels I/O; it never unlinks synchronously
    if (e->deadline_ms_ <= now_ms) {
      e->deadline_ms_ = Entry::kNone;
      e->OnTimeout();
    }
    e = next;
  }
}

}  // namespace ficus::net
