// ficus::net — the I/O primitives of a worker's event loop (Boost.Asio, one io_context per
// thread, C++20 coroutines). The syscall pattern matters more than anything else here
// (measured, see shared/DESIGN.md "Quality bar"):
//   - reads use async_read_some, whose edge-triggered speculation issues a recv() only when
//     data is likely there (after an epoll event or a full previous read): no EAGAIN reads,
//     and no epoll_ctl per wait (async_wait would re-arm the descriptor every time);
//   - writes are inline non-blocking writev() (head and body in one call), falling back to an
//     asynchronous wait only when the socket buffer is full.
#pragma once

#include <sys/uio.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>

#include "base/base.h"

namespace ficus::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
template <class T>
using Task = asio::awaitable<T>;
using ErrorCode = boost::system::error_code;

// Parses an IP literal and port into an endpoint. Throws std::runtime_error on a bad address.
tcp::endpoint MakeEndpoint(const std::string& ip, uint16_t port);

// Opens a listening socket with SO_REUSEADDR and SO_REUSEPORT, so every worker can bind its
// own socket to the same address and the kernel spreads connections over them.
// Throws std::system_error with "listen ADDRESS:PORT: reason" (startup only).
tcp::acceptor Listen(asio::io_context& io, const tcp::endpoint& at, int backlog = 4096);

// Prepares an accepted or connected socket for the hot path: non-blocking, TCP_NODELAY.
void PrepareSocket(tcp::socket& socket);

// Reads whatever is available (at least one byte) into `into`. Returns 0 bytes with no error
// on orderly EOF. operation_aborted means the socket was cancelled (a timeout fired).
struct ReadResult {
  size_t bytes = 0;
  ErrorCode ec;
};
Task<ReadResult> ReadSome(tcp::socket& socket, std::span<char> into);

// Writes every byte of `iov` (modified in place as it progresses). Tries writev() inline and
// waits for writability only when the kernel buffer is full.
// REQUIRES: the socket is non-blocking (PrepareSocket); count <= IOV_MAX.
Task<ErrorCode> WriteAll(tcp::socket& socket, iovec* iov, int count);
Task<ErrorCode> WriteAll(tcp::socket& socket, std::string_view bytes);

// Formats the peer's IP address (no port) into `out`; returns its length (0 on failure).
size_t PeerAddress(const tcp::socket& socket, char* out, size_t size);

// Coarse per-worker timeouts. Each connection is an Entry with a deadline in coarse
// milliseconds; a periodic Sweep (every ~100 ms) fires the expired ones. Setting a deadline is
// a store, not a timer operation: no syscall and no heap work per request. Single-threaded:
// owned by one worker, used only on its thread.
class TimeoutList {
 public:
  class Entry {
   public:
    virtual ~Entry() = default;
    // Called once when the deadline passes; the deadline is reset to "none" first.
    virtual void OnTimeout() = 0;
    void SetDeadline(int64_t at_ms) { deadline_ms_ = at_ms; }
    void ClearDeadline() { deadline_ms_ = kNone; }
    int64_t deadline_ms() const { return deadline_ms_; }

   private:
    friend class TimeoutList;
    static constexpr int64_t kNone = INT64_MAX;
    int64_t deadline_ms_ = kNone;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
  };

  void Add(Entry* e);
  void Remove(Entry* e);
  void Sweep(int64_t now_ms);
  size_t size() const { return size_; }
  // Calls f(Entry*) for each entry; f must not add or remove entries.
  template <class F>
  void ForEach(F&& f) {
    for (Entry* e = head_; e != nullptr;) {
      Entry* next = e->next_;
      f(e);
      e = next;
    }
  }

 private:
  Entry* head_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ficus::net
