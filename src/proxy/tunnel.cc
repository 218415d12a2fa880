// Phase: relay, after a 101: bytes flow both ways until either side closes.
#include "proxy/internal/session.h"

namespace ficus::proxy {

using http::BodyFraming;

namespace {
// The tunnel's two directions run as two tasks; the session waits for the spawned one.
struct TunnelJoin {
  net::Loop* loop;
  bool spawned_done = false;
  std::coroutine_handle<> waiter;
  bool await_ready() const noexcept { return spawned_done; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  void await_resume() noexcept {}
};

net::Task<void> SignalWhenDone(net::Task<void> pump, TunnelJoin* join) {
  co_await pump;
  join->spawned_done = true;
  if (join->waiter) join->loop->Ready(std::exchange(join->waiter, nullptr));
}
}  // namespace

net::Task<void> Session::Tunnel(upstream::Connection& conn) {
  const size_t half = mem_.xfer_cap / 2;
  SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kTunnel);
  if (Pending() > 0) {
    // The client did not wait for the 101: what it sent after the upgrade request is the new
    // protocol's first bytes. Held until the upstream agreed to switch (had it refused, they
    // would have reached it as HTTP), now they go first.
    net::ErrorCode ec =
        co_await conn.socket.WriteAll(std::string_view(mem_.in + mem_.in_begin, Pending()));
    mem_.in_begin = mem_.in_end;
    if (ec) co_return;
  }
  TunnelJoin join{&worker_.loop(), false, nullptr};
  net::Spawn(SignalWhenDone(Pump(client_, conn.socket, {mem_.xfer, half}), &join));
  co_await Pump(conn.socket, client_, {mem_.xfer + half, half});
  co_await join;
}

net::Task<void> Session::Pump(net::Socket& from, net::Socket& to, std::span<char> buf) {
  for (;;) {
    auto r = co_await from.ReadSome(buf);
    if (r.ec || r.bytes == 0) {
      if (r.ec) {  // reset or idle timeout: tear down both directions
        from.Cancel();
        to.Cancel();
      }
      to.ShutdownWrite();
      co_return;
    }
    SetDeadline(snapshot_->config->timeouts.idle.count(), Wait::kTunnel);
    net::ErrorCode ec = co_await to.WriteAll(std::string_view(buf.data(), r.bytes));
    if (ec) {
      from.Cancel();
      to.Cancel();
      co_return;
    }
  }
}

}  // namespace ficus::proxy
