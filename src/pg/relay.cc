// The server-to-client direction of a client session: relays the server's messages, learns
// from them (ParseComplete, CommandComplete, ErrorResponse, ReadyForQuery, ParameterStatus),
// records each query's time, and gives the server back at a transaction's end.
#include <charconv>

#include "base/log.h"
#include "pg/internal/session.h"

namespace ficus::pg::internal {

namespace {

// The row count of a CommandComplete tag ("SELECT 5", "INSERT 0 1", "UPDATE 3"): its last word.
uint64_t RowsOf(std::string_view body) {
  if (!body.empty() && body.back() == '\0') body.remove_suffix(1);
  const size_t sp = body.rfind(' ');
  if (sp == std::string_view::npos) return 0;
  uint64_t n = 0;
  std::from_chars(body.data() + sp + 1, body.data() + body.size(), n);
  return n;
}

}  // namespace

bool ClientSession::CanDetach() const {
  return transaction_mode_ && used_ && !pinned_ && !closing_ && outstanding_ == 0 && !since_sync_ &&
         status_ == 'I' && server_ && server_->in.empty() && out_.empty();
}

void ClientSession::Detach(bool clean) {
  if (!server_) return;
  if (cancel_) cancel_->key.store(0, std::memory_order_relaxed);
  server_->pool->transactions.fetch_add(1, std::memory_order_relaxed);
  // Read-your-writes: reads wait for a replica that has replayed past this moment.
  if (route_write_) last_write_ms_ = SteadyMs();
  pending_.clear();
  portals_.clear();
  Release(w_, std::move(server_), clean);
}

bool ClientSession::OnServerMessage(std::string_view m) {
  const char type = m[0];
  std::string_view body = m.substr(5);
  auto finish = [&](Pending& p) {
    if (p.fingerprint != 0 && !p.injected)
      w_.RecordQuery(p, static_cast<uint64_t>(NowMicros() - p.start_us), database_, user_, impl_);
  };
  switch (type) {
    case '1':
      if (!pending_.empty() && pending_.front().kind == Pending::Kind::kParse) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        if (transaction_mode_ && !p.name.empty()) server_->prepared.push_back(p.name);
        return !p.injected;
      }
      return true;
    case 'C':
    case 'I':
    case 's':
      if (!pending_.empty()) {
        Pending& front = pending_.front();
        front.rows += type == 'C' ? RowsOf(body) : 0;
        if (front.kind == Pending::Kind::kExecute) {
          finish(front);
          pending_.pop_front();
        }
      }
      return true;
    case 'E':
      if (!pending_.empty()) {
        Pending& front = pending_.front();
        if (front.kind == Pending::Kind::kQuery) {
          front.error = true;
        } else if (front.kind != Pending::Kind::kSync) {
          // Extended protocol: the server skips everything up to the next Sync.
          front.error = true;
          if (front.kind == Pending::Kind::kExecute) finish(front);
          while (!pending_.empty() && pending_.front().kind != Pending::Kind::kSync)
            pending_.pop_front();
        }
      }
      return true;
    case 'Z':
      status_ = body.empty() ? 'I' : body[0];
      while (!pending_.empty()) {
        Pending p = std::move(pending_.front());
        pending_.pop_front();
        if (p.kind == Pending::Kind::kQuery) finish(p);
        if (p.kind == Pending::Kind::kQuery || p.kind == Pending::Kind::kSync) break;
      }
      if (outstanding_ > 0) --outstanding_;
      return true;
    case 'S': {
      const size_t nul = body.find('\0');
      if (nul != std::string_view::npos && body.size() > nul + 1) {
        std::string_view name = body.substr(0, nul);
        server_->SetParam(name, body.substr(nul + 1, body.size() - nul - 2));
        if (name == "session_authorization" || name == "is_superuser") Pin("set_role");
      }
      return true;
    }
    default:
      return true;
  }
}

net::Task<void> ClientSession::Pump() {
  pump_running_ = true;
  ServerConn* s = server_.get();
  bool lost = false;
  for (;;) {
    Frame f = s->in.Peek(max_message_ > (1u << 26) ? max_message_ : (1u << 26), false);
    if (f.status == Frame::Status::kComplete) {
      std::string_view m = s->in.View().substr(0, f.size);
      if (OnServerMessage(m)) client_out_.append(m);
      s->in.Consume(f.size);
      continue;
    }
    if (f.status == Frame::Status::kError) {
      log::warn("pg: pool {}: the server sent a malformed message: {}", pool_->name,
                f.error.message);
      lost = true;
      break;
    }
    if (!client_out_.empty()) {
      std::string batch;
      batch.swap(client_out_);
      if (co_await tls_.WriteAll(sock_, batch)) {  // the client went away
        closing_ = true;
        sock_.Cancel();
        break;
      }
    }
    if (CanDetach()) {
      Detach(true);
      break;
    }
    if (pump_waiter_) {  // a step done: the client direction may be waiting for it
      std::coroutine_handle<> h = std::exchange(pump_waiter_, {});
      w_.loop->Ready(h);
    }
    const size_t have = s->in.View().size();
    const size_t want = f.size ? f.size - have : 5 - std::min<size_t>(have, 4);
    if (co_await s->in.Fill(s->sock, s->tls, want) == 0) {
      if (!closing_) lost = true;
      break;
    }
  }
  if (lost) {
    broken_ = true;
    closing_ = true;
    std::string out;
    out.swap(client_out_);
    AppendErrorResponse(out, "FATAL", "08006",
                        "the server connection of pool \"" + pool_->name + "\" was lost");
    (void)co_await tls_.WriteAll(sock_, out);
    sock_.Cancel();
  }
  pump_running_ = false;
  if (pump_waiter_) {
    std::coroutine_handle<> h = std::exchange(pump_waiter_, {});
    w_.loop->Ready(h);
  }
}

net::Task<void> ClientSession::Finish() {
  closing_ = true;
  if (pump_running_) {
    if (server_) server_->sock.Cancel();
    while (pump_running_) co_await PumpStep{this};
  }
  if (!server_) co_return;
  bool clean = !broken_ && outstanding_ == 0 && !since_sync_ && status_ == 'I' &&
               server_->in.empty() && server_->sock.IsQuiet();
  if (clean && (!transaction_mode_ || pinned_)) {
    // A session (or a pinned client) may have left state behind: reset before reuse.
    clean = co_await RunQuietly(*server_, config_->postgres.server_reset_query, max_message_);
    if (clean) server_->prepared.clear();
  }
  Detach(clean);
}

}  // namespace ficus::pg::internal
