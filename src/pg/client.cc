// A client connection: the client-to-server direction (statement tracking, session state
// detection, attaching a server per transaction or per session). Login is in client_login.cc.

#include "base/log.h"
#include "pg/internal/explain.h"
#include "pg/internal/session.h"

namespace ficus::pg::internal {

namespace {

std::string Hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}

// `body` with its first NUL-terminated string (after `skip` bytes) replaced by `name`.
std::string ReplaceName(std::string_view body, size_t skip, std::string_view old_name,
                        std::string_view name) {
  std::string r(body.substr(0, skip));
  r += name;
  r += body.substr(skip + old_name.size());
  return r;
}

}  // namespace

ClientSession::ClientSession(Service::Impl& impl, WorkerState& w, int fd)
    : impl_(impl), w_(w), sock_(*w.loop, fd) {
  w_.clients.push_back(&sock_);
  impl_.stats.clients_active.fetch_add(1, std::memory_order_relaxed);
}

ClientSession::~ClientSession() {
  std::erase(w_.clients, &sock_);
  impl_.stats.clients_active.fetch_sub(1, std::memory_order_relaxed);
  if (pool_) pool_->clients.fetch_sub(1, std::memory_order_relaxed);
  if (cancel_) {
    std::lock_guard lock(impl_.mu);
    impl_.cancels.erase(cancel_id_);
  }
}

net::Task<void> ClientSession::SendError(const char* sqlstate, std::string_view message) {
  std::string out;
  AppendErrorResponse(out, "FATAL", sqlstate, message);
  (void)co_await tls_.WriteAll(sock_, out);
}

net::Task<std::string_view> ClientSession::ReadClientFrame(bool startup) {
  for (;;) {
    Frame f = startup ? ScanStartupFrame(in_.View()) : in_.Peek(max_message_, true);
    if (f.status == Frame::Status::kComplete) co_return in_.View().substr(0, f.size);
    if (f.status == Frame::Status::kError) {
      impl_.stats.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      if (pump_running_) {
        closing_ = true;
        broken_ = true;
        server_->sock.Cancel();
        while (pump_running_) co_await PumpStep{this};
      }
      co_await SendError(f.error.sqlstate, f.error.message);
      co_return std::string_view();
    }
    const size_t have = in_.View().size();
    const size_t want = f.size ? f.size - have : (startup ? 8 : 5) - std::min<size_t>(have, 4);
    if (co_await in_.Fill(sock_, tls_, want) == 0) co_return std::string_view();
  }
}

net::Task<bool> ClientSession::Attach(bool start_pump, Pool* target, bool unit_error) {
  while (impl_.paused.load(std::memory_order_relaxed) && !closing_ && !w_.stopping) {
    co_await w_.loop->Sleep(std::chrono::milliseconds(50));
  }
  Acquired a;
  for (;;) {
    a = co_await Acquire(impl_, w_, *target, params_);
    if (a.conn || !a.sqlstate || std::string_view(a.sqlstate) != "08006") break;
    // The server cannot be reached: seen down until the checker finds it up again. A read
    // then goes to another replica or the primary (nothing was sent: safe to redirect).
    target->backend->MarkDown(a.error);
    if (!target->is_replica) break;
    Pool* next = PickReplica(*pool_, last_write_ms_, &turn_);
    target = next ? next : pool_.get();
  }
  if (!a.conn) {
    routed_ = false;
    if (unit_error && a.sqlstate && std::string_view(a.sqlstate) == "08006") {
      unit_error_ = a.error;
      co_return false;
    }
    co_await SendError(a.sqlstate, a.error);
    co_return false;
  }
  server_ = std::move(a.conn);
  if (std::exchange(routed_, false)) {
    Backend& b = *server_->pool->backend;
    (route_write_ ? b.writes : b.reads).fetch_add(1, std::memory_order_relaxed);
  }
  if (cancel_) {
    cancel_->server.store(server_->pool->server_index, std::memory_order_relaxed);
    cancel_->key = (uint64_t{server_->backend_pid} << 32) | server_->backend_key;
  }
  outstanding_ = 0;
  since_sync_ = false;
  used_ = false;
  status_ = 'I';
  broken_ = false;
  if (transaction_mode_ && server_->prepared.size() > 256) {
    // Statements of clients long gone pile up on a shared connection: start over.
    if (!co_await RunQuietly(*server_, "DEALLOCATE ALL", max_message_)) {
      Detach(false);
      co_await SendError("08006", "the server connection failed");
      co_return false;
    }
    server_->prepared.clear();
  }
  if (start_pump) net::Spawn(Pump());
  co_return true;
}

void ClientSession::Pin(const char* reason) {
  if (!transaction_mode_ || pinned_) return;
  pinned_ = reason;
  pool_->pinned.fetch_add(1, std::memory_order_relaxed);
  impl_.AddPinned(reason);
}

bool ClientSession::EnsurePrepared(std::string_view client_name) {
  auto it = statements_.find(std::string(client_name));
  if (it == statements_.end()) return true;  // the server says it does not exist
  const Statement& st = it->second;
  for (const std::string& n : server_->prepared)
    if (n == st.server_name) return true;
  // Its Parse went to this connection in the same batch and its ParseComplete is not back yet
  // (node-postgres sends Parse, Bind, Describe, Execute, Sync at once).
  for (const Pending& p : pending_)
    if (p.kind == Pending::Kind::kParse && p.name == st.server_name) return true;
  // Prepared on another server connection: prepare it here first, and keep its
  // ParseComplete from the client.
  ParseMessage pm;
  (void)ParseParse(st.parse, &pm);
  AppendMessage(out_, 'P', ReplaceName(st.parse, 0, pm.statement, st.server_name));
  Pending p{Pending::Kind::kParse};
  p.injected = true;
  p.name = st.server_name;
  pending_.push_back(std::move(p));
  return true;
}

bool ClientSession::Translate(std::string_view msg) {
  const char type = msg[0];
  std::string_view body = msg.substr(5);
  if (ProtocolError e = CheckFrontendMessage(type, body)) return false;
  const int64_t now = NowMicros();
  used_ = true;
  switch (type) {
    case 'Q': {
      std::string_view sql;
      (void)ParseQuery(body, &sql);
      Pending p{Pending::Kind::kQuery};
      const std::string norm = Normalize(sql);
      p.fingerprint = Fingerprint(norm);
      w_.Learn(p.fingerprint, norm);
      impl_.explain->OnQuery(w_.id, p.fingerprint, sql, database_, user_, w_.loop->NowMs());
      p.start_us = now;
      p.trace = std::string(TraceIdOf(sql));
      pending_.push_back(std::move(p));
      ++outstanding_;
      if (transaction_mode_) {
        if (const char* why = SessionStateOf(sql)) Pin(why);
        if (norm.starts_with("discard ") || norm.starts_with("deallocate "))
          server_->prepared.clear();
      }
      out_.append(msg);
      return true;
    }
    case 'P': {
      ParseMessage pm;
      (void)ParseParse(body, &pm);
      const std::string norm = Normalize(pm.query);
      const uint64_t fp = Fingerprint(norm);
      w_.Learn(fp, norm);
      impl_.explain->OnParse(w_.id, fp, body, database_, user_, w_.loop->NowMs());
      if (transaction_mode_)
        if (const char* why = SessionStateOf(pm.query)) Pin(why);
      since_sync_ = true;
      const StatementKind kind =
          pool_->replicas.empty() ? StatementKind::kWrite : KindOfOne(pm.query);
      if (pm.statement.empty()) {
        unnamed_kind_ = kind;
        unnamed_fp_ = fp;
        unnamed_trace_ = std::string(TraceIdOf(pm.query));
        out_.append(msg);
        return true;
      }
      if (!transaction_mode_) {
        statements_[std::string(pm.statement)] = {std::string(), std::string(pm.statement), fp};
        out_.append(msg);
        return true;
      }
      if (statements_.size() >= 10000 && !statements_.count(std::string(pm.statement)))
        return false;
      Statement& st = statements_[std::string(pm.statement)];
      // A fresh server-side name for every Parse: a name is never bound to two queries, so a
      // connection that has it prepared has the right one.
      st.server_name = "ficus_" + Hex(cancel_id_) + "_" + std::to_string(++next_statement_);
      st.parse = std::string(body);
      st.fingerprint = fp;
      st.kind = kind;
      AppendMessage(out_, 'P', ReplaceName(body, 0, pm.statement, st.server_name));
      Pending p{Pending::Kind::kParse};
      p.name = st.server_name;
      pending_.push_back(std::move(p));
      return true;
    }
    case 'B': {
      BindMessage bm;
      (void)ParseBind(body, &bm);
      since_sync_ = true;
      uint64_t fp = unnamed_fp_;
      if (!bm.statement.empty()) {
        auto it = statements_.find(std::string(bm.statement));
        fp = it == statements_.end() ? 0 : it->second.fingerprint;
      }
      impl_.explain->OnBind(w_.id, fp, body);
      portals_[std::string(bm.portal)] = fp;
      if (transaction_mode_ && !bm.statement.empty()) {
        EnsurePrepared(bm.statement);
        auto it = statements_.find(std::string(bm.statement));
        if (it != statements_.end()) {
          AppendMessage(
              out_, 'B',
              ReplaceName(body, bm.portal.size() + 1, bm.statement, it->second.server_name));
          return true;
        }
      }
      out_.append(msg);
      return true;
    }
    case 'D':
    case 'C': {
      TargetMessage tm;
      (void)ParseTarget(body, &tm);
      since_sync_ = true;
      if (transaction_mode_ && tm.what == 'S' && !tm.name.empty()) {
        auto it = statements_.find(std::string(tm.name));
        if (it != statements_.end()) {
          const std::string server_name = it->second.server_name;
          if (type == 'D') {
            EnsurePrepared(tm.name);
          } else {
            std::erase(server_->prepared, server_name);
            statements_.erase(it);
          }
          AppendMessage(out_, type, ReplaceName(body, 1, tm.name, server_name));
          return true;
        }
      }
      out_.append(msg);
      return true;
    }
    case 'E': {
      std::string_view portal;
      (void)ParseExecute(body, &portal);
      since_sync_ = true;
      Pending p{Pending::Kind::kExecute};
      auto it = portals_.find(std::string(portal));
      p.fingerprint = it == portals_.end() ? 0 : it->second;
      p.start_us = now;
      p.trace = unnamed_trace_;
      pending_.push_back(std::move(p));
      out_.append(msg);
      return true;
    }
    case 'S':
      pending_.push_back(Pending{Pending::Kind::kSync});
      ++outstanding_;
      since_sync_ = false;
      out_.append(msg);
      return true;
    case 'F': {
      Pending p{Pending::Kind::kQuery};
      p.start_us = now;
      pending_.push_back(std::move(p));
      ++outstanding_;
      out_.append(msg);
      return true;
    }
    case 'd':
    case 'c':
    case 'f':
      if (outstanding_ == 0) since_sync_ = true;  // outside a COPY: the server ignores it
      out_.append(msg);
      return true;
    default:  // 'H' Flush; 'p' outside authentication (the server rejects it)
      since_sync_ = true;
      out_.append(msg);
      return true;
  }
}

net::Task<bool> ClientSession::FailUnit(std::string_view m) {
  std::string out;
  AppendErrorResponse(out, "ERROR", "08006", unit_error_);
  unit_error_.clear();
  const bool simple = m[0] == 'Q' || m[0] == 'F';
  const bool sync = m[0] == 'S';
  in_.Consume(m.size());
  if (simple || sync) {
    AppendReadyForQuery(out, 'I');
  } else {
    skip_to_sync_ = true;
  }
  co_return !co_await tls_.WriteAll(sock_, out);
}

bool ClientSession::StartsUnit(std::string_view m) const {
  switch (m[0]) {
    case 'Q':
    case 'F':
      return true;
    case 'P':
    case 'B':
    case 'D':
    case 'E':
    case 'C':
    case 'H':
    case 'S':
      return !since_sync_;
    default:
      return false;
  }
}

Access ClientSession::ClassifyBuffered() const {
  AccessClassifier c;
  const std::string_view buf = in_.View();
  StatementKind unnamed = unnamed_kind_;
  // Statements parsed and portals bound earlier in this batch.
  std::vector<std::pair<std::string_view, StatementKind>> parsed, bound;
  auto find = [](const auto& v, std::string_view name, StatementKind* k) {
    for (auto it = v.rbegin(); it != v.rend(); ++it) {
      if (it->first == name) {
        *k = it->second;
        return true;
      }
    }
    return false;
  };
  size_t off = 0;
  while (off < buf.size()) {
    const Frame f = ScanMessageFrame(buf.substr(off), max_message_, /*frontend=*/true);
    if (f.status != Frame::Status::kComplete) break;
    const std::string_view body = buf.substr(off + 5, f.size - 5);
    off += f.size;
    switch (f.type) {
      case 'Q': {
        std::string_view sql;
        if (ParseQuery(body, &sql)) return Access::kWrite;
        c.AddSql(sql);
        return c.Result();
      }
      case 'P': {
        ParseMessage pm;
        if (ParseParse(body, &pm)) return Access::kWrite;
        const StatementKind k = KindOfOne(pm.query);
        if (pm.statement.empty()) {
          unnamed = k;
        } else {
          parsed.emplace_back(pm.statement, k);
        }
        break;
      }
      case 'B': {
        BindMessage bm;
        if (ParseBind(body, &bm)) return Access::kWrite;
        StatementKind k = unnamed;
        if (!bm.statement.empty() && !find(parsed, bm.statement, &k)) {
          auto it = statements_.find(std::string(bm.statement));
          k = it == statements_.end() ? StatementKind::kWrite : it->second.kind;
        }
        bound.emplace_back(bm.portal, k);
        break;
      }
      case 'E': {
        std::string_view portal;
        if (ParseExecute(body, &portal)) return Access::kWrite;
        StatementKind k = StatementKind::kWrite;  // a portal of an earlier batch: unknown
        find(bound, portal, &k);
        c.Add(k);
        break;
      }
      case 'S':
        return c.Result();
      case 'D':
      case 'C':
      case 'H':
        break;
      default:  // FunctionCall, COPY data: the primary
        return Access::kWrite;
    }
  }
  return Access::kWrite;  // the batch's Sync is not here yet: it cannot be told
}

Pool* ClientSession::Route() {
  Pool& primary = *pool_;
  if (primary.replicas.empty() || !transaction_mode_) return &primary;
  const Access access = primary.db.read_only ? Access::kReadOnlyTransaction : ClassifyBuffered();
  route_write_ = access == Access::kWrite;
  routed_ = true;  // Attach counts the transaction on the server it ends up on
  if (route_write_) return &primary;
  Pool* target = PickReplica(primary, last_write_ms_, &turn_);
  return target ? target : &primary;
}

net::Task<void> ClientSession::Run() {
  config_ = impl_.Config();
  max_message_ = config_->postgres.max_message;
  SetDeadline(w_.loop->NowMs() + config_->postgres.client_login_timeout.count());
  w_.timeouts.Add(this);
  const bool logged_in = co_await Login();
  w_.timeouts.Remove(this);
  ClearDeadline();
  if (!logged_in) {
    co_await Finish();
    co_return;
  }
  for (;;) {
    std::string_view m = co_await ReadClientFrame(false);
    if (m.empty() || m[0] == 'X' || closing_) break;
    if (skip_to_sync_) {  // the rest of a batch whose server could not be reached
      const bool sync = m[0] == 'S';
      in_.Consume(m.size());
      if (sync) {
        skip_to_sync_ = false;
        std::string z;
        AppendReadyForQuery(z, 'I');
        if (co_await tls_.WriteAll(sock_, z)) break;
      }
      continue;
    }
    // On a replica, a new unit of work waits for the last one to end: inside the client's READ
    // ONLY transaction it stays there; otherwise the replica goes back (the pump detaches at
    // ReadyForQuery 'I') and the unit is routed anew, so a write never follows a read there.
    while (OnReplica() && !pinned_ && pump_running_ && StartsUnit(m) &&
           (outstanding_ > 0 || status_ == 'I')) {
      if (!out_.empty()) {
        std::string batch;
        batch.swap(out_);
        if (co_await server_->Write(batch)) {
          broken_ = true;
          break;
        }
      }
      co_await PumpStep{this};
    }
    if (closing_ || broken_) break;
    if (!server_ && !co_await Attach(true, Route(), /*unit_error=*/true)) {
      // No server reachable for this unit (the primary down, for a write): the client gets an
      // error for it and may go on (its reads still reach the replicas).
      if (unit_error_.empty() || closing_ || !co_await FailUnit(m)) break;
      continue;
    }
    if (!Translate(m)) {
      impl_.stats.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      ProtocolError e = CheckFrontendMessage(m[0], m.substr(5));
      in_.Consume(m.size());
      closing_ = true;
      broken_ = true;
      co_await Finish();
      // Named, not a conditional temporary across co_await (g++ 12 destroyed that one twice).
      const char* sqlstate = e ? e.sqlstate : "54000";
      const std::string message = e ? e.message : "too many prepared statements on one connection";
      co_await SendError(sqlstate, message);
      co_return;
    }
    in_.Consume(m.size());
    // Forward once nothing more is complete in the buffer: one write per batch of messages.
    if (in_.Peek(max_message_, true).status != Frame::Status::kComplete || out_.size() > 65536) {
      std::string batch;
      batch.swap(out_);
      if (server_ && co_await server_->Write(batch)) {
        broken_ = true;
        co_await SendError("08006", "the server connection was lost");
        break;
      }
    }
  }
  closing_ = true;
  co_await Finish();
  co_await tls_.Shutdown(sock_);  // close_notify: the client sees an orderly end
}

}  // namespace ficus::pg::internal
