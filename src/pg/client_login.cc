// A client connection's login: startup, SCRAM-SHA-256 (or TLS first), the server's parameters,
// and a backend key of ficus's own for cancels.
#include <openssl/rand.h>

#include "base/log.h"
#include "pg/internal/session.h"

namespace ficus::pg::internal {

net::Task<bool> ClientSession::Authenticate(const ScramVerifier& v) {
  std::string out;
  std::string mech;
  AppendInt32(mech, 10);
  mech += "SCRAM-SHA-256";
  mech += '\0';
  mech += '\0';
  AppendMessage(out, 'R', mech);
  if (co_await tls_.WriteAll(sock_, out)) co_return false;
  const std::string failed = "password authentication failed for user \"" + user_ + "\"";
  std::string_view m = co_await ReadClientFrame(false);
  if (m.empty()) co_return false;
  if (m[0] != 'p') {
    co_await SendError("08P01",
                       "expected a SASL response, got message type '" + std::string(1, m[0]) + "'");
    co_return false;
  }
  std::string_view body = m.substr(5);
  const size_t nul = body.find('\0');
  if (nul == std::string_view::npos || body.size() < nul + 5) {
    co_await SendError("08P01", "malformed SASLInitialResponse");
    co_return false;
  }
  if (body.substr(0, nul) != "SCRAM-SHA-256") {
    co_await SendError("28000", "unsupported SASL mechanism \"" + std::string(body.substr(0, nul)) +
                                    "\" (ficus offers SCRAM-SHA-256)");
    co_return false;
  }
  const uint32_t len = ReadInt32(body.data() + nul + 1);
  std::string_view data = body.substr(nul + 5);
  if (len != data.size()) {
    co_await SendError("08P01", "malformed SASLInitialResponse: wrong length");
    co_return false;
  }
  ScramServer scram(v);
  std::string reply, error;
  if (!scram.First(data, &reply, &error)) {
    co_await SendError("08P01", error);
    co_return false;
  }
  in_.Consume(m.size());
  out.clear();
  std::string cont;
  AppendInt32(cont, 11);
  cont += reply;
  AppendMessage(out, 'R', cont);
  if (co_await tls_.WriteAll(sock_, out)) co_return false;
  m = co_await ReadClientFrame(false);
  if (m.empty()) co_return false;
  if (m[0] != 'p') {
    co_await SendError("08P01", "expected a SASL response");
    co_return false;
  }
  if (!scram.Final(m.substr(5), &reply, &error)) {
    impl_.stats.login_failures.fetch_add(1, std::memory_order_relaxed);
    co_await SendError("28P01", failed);
    co_return false;
  }
  in_.Consume(m.size());
  out.clear();
  std::string fin;
  AppendInt32(fin, 12);
  fin += reply;
  AppendMessage(out, 'R', fin);
  std::string ok;
  AppendInt32(ok, 0);
  AppendMessage(out, 'R', ok);
  co_return !co_await tls_.WriteAll(sock_, out);
}

net::Task<bool> ClientSession::Login() {
  std::shared_ptr<const tls::Context> client_tls;
  {
    std::lock_guard lock(impl_.mu);
    client_tls = impl_.client_tls;
  }
  StartupPacket sp;
  for (int i = 0;; ++i) {
    std::string_view m = co_await ReadClientFrame(true);
    if (m.empty()) co_return false;
    sp = StartupPacket();
    ProtocolError err = ParseStartupPacket(m, &sp);
    in_.Consume(m.size());
    if (err) {
      impl_.stats.protocol_errors.fetch_add(1, std::memory_order_relaxed);
      co_await SendError(err.sqlstate, err.message);
      co_return false;
    }
    if (sp.kind == StartupPacket::Kind::kCancel) {
      co_await ForwardCancel(impl_, w_, sp.cancel_pid, sp.cancel_key);
      co_return false;
    }
    if (sp.kind == StartupPacket::Kind::kStartup) break;
    if (i >= 2 || !in_.empty() || tls_.active()) {
      // Bytes after an SSLRequest before our answer (CVE-2021-23214: they would pass for
      // encrypted), or a second encryption request: refuse, as PostgreSQL does.
      co_await SendError("08P01", "unexpected data after an encryption request");
      co_return false;
    }
    // GSSENCRequest: 'N' (no GSSAPI); libpq then asks for TLS or goes on in plain text.
    if (sp.kind == StartupPacket::Kind::kGssEnc || !client_tls) {
      if (co_await sock_.WriteAll("N")) co_return false;
      continue;
    }
    if (co_await sock_.WriteAll("S")) co_return false;
    tls_ = tls::Stream(*client_tls);
    Outcome<void> hs = co_await tls_.Handshake(sock_);  // within the login deadline
    if (!hs) {
      impl_.stats.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
      log::debug("pg: TLS handshake with a client failed: {}", hs.message());
      co_return false;
    }
    impl_.stats.tls_clients.fetch_add(1, std::memory_order_relaxed);
  }
  if (config_->postgres.tls_required && !tls_.active()) {
    // As PostgreSQL answers a client that pg_hba.conf's hostssl lines do not let in.
    impl_.stats.login_failures.fetch_add(1, std::memory_order_relaxed);
    co_await SendError("28000",
                       "ficus accepts only TLS connections (postgres.tls.required): connect with "
                       "sslmode=require or stricter");
    co_return false;
  }
  user_ = *sp.Get("user");
  database_ = sp.Get("database") ? *sp.Get("database") : user_;
  if (sp.Get("replication") && *sp.Get("replication") != "false" && *sp.Get("replication") != "0") {
    co_await SendError("08P01", "replication connections are not supported through ficus");
    co_return false;
  }
  std::string sqlstate, error;
  pool_ = impl_.FindPool(database_, user_, &sqlstate, &error);
  const std::shared_ptr<const ScramVerifier> verifier = impl_.Verifier(user_);
  if (!verifier) {
    impl_.stats.login_failures.fetch_add(1, std::memory_order_relaxed);
    co_await SendError("28P01", "password authentication failed for user \"" + user_ + "\"");
    co_return false;
  }
  if (!co_await Authenticate(*verifier)) co_return false;
  if (!pool_) {
    impl_.stats.login_failures.fetch_add(1, std::memory_order_relaxed);
    co_await SendError(sqlstate.c_str(), error);
    co_return false;
  }
  pool_->clients.fetch_add(1, std::memory_order_relaxed);
  transaction_mode_ = pool_->db.pool_mode == config::PgPoolMode::kTransaction;
  for (const auto& [k, v] : sp.params) {
    if (k == "user" || k == "database" || k == "replication") continue;
    if (k == "options" && !v.empty() && transaction_mode_) {
      co_await SendError("0A000",
                         "startup parameter \"options\" is not supported in transaction pooling");
      co_return false;
    }
    params_.emplace_back(k, v);
  }
  // The server's parameters: from the pool's first connection, or from one opened now.
  std::vector<std::pair<std::string, std::string>> server_params;
  {
    std::lock_guard lock(pool_->mu);
    server_params = pool_->params;
  }
  if (server_params.empty() || !transaction_mode_) {
    // A session of a read-only database reads from a replica; anything else logs in on the
    // primary (transaction mode: only to learn the server's parameters).
    Pool* target = pool_.get();
    if (!transaction_mode_ && pool_->db.read_only) {
      if (Pool* r = PickReplica(*pool_, 0, &turn_)) target = r;
    }
    if (!co_await Attach(/*start_pump=*/false, target)) co_return false;
    server_params = server_->params;
    if (transaction_mode_) Detach(true);
  }
  RAND_bytes(reinterpret_cast<unsigned char*>(&cancel_id_), sizeof(cancel_id_));
  cancel_ = std::make_shared<CancelTarget>();
  cancel_->servers.push_back(pool_->address);
  for (const auto& r : pool_->replicas) cancel_->servers.push_back(r->address);
  if (server_) {
    cancel_->server = server_->pool->server_index;
    cancel_->key = (uint64_t{server_->backend_pid} << 32) | server_->backend_key;
  }
  {
    std::lock_guard lock(impl_.mu);
    impl_.cancels[cancel_id_] = cancel_;
  }
  std::string out;
  for (auto [k, v] : server_params) {
    for (const auto& [ck, cv] : params_) {
      if (ck == k && (k == "client_encoding" || k == "DateStyle" || k == "TimeZone" ||
                      k == "IntervalStyle" || k == "application_name"))
        v = cv;
    }
    AppendParameterStatus(out, k, v);
  }
  std::string key;
  AppendInt32(key, static_cast<uint32_t>(cancel_id_ >> 32));
  AppendInt32(key, static_cast<uint32_t>(cancel_id_));
  AppendMessage(out, 'K', key);
  AppendReadyForQuery(out, 'I');
  if (co_await tls_.WriteAll(sock_, out)) co_return false;
  if (server_) net::Spawn(Pump());  // session mode: the server stays for the session
  co_return true;
}

}  // namespace ficus::pg::internal
