// TLS of the PostgreSQL proxy: the contexts (loaded at startup and on reload, off the workers)
// and the server side's SSLRequest and handshake, as libpq's sslmode says. The client side's
// SSLRequest is answered in client.cc (Login).
#include "base/log.h"
#include "pg/internal/service.h"

namespace ficus::pg::internal {

namespace {

tls::Verify VerifyOf(config::PgSslMode m) {
  switch (m) {
    case config::PgSslMode::kVerifyFull:
      return tls::Verify::kFull;
    case config::PgSslMode::kVerifyCa:
      return tls::Verify::kCa;
    default:
      return tls::Verify::kNone;
  }
}

}  // namespace

void LoadTls(Service::Impl& impl, const config::Config& config) {
  const config::Postgres& pg = config.postgres;
  std::shared_ptr<const tls::Context> client_tls;
  bool client_failed = false;
  if (pg.tls.enabled()) {
    auto ctx = tls::Context::Server(pg.tls.cert, pg.tls.key);
    if (ctx) {
      client_tls = *ctx;
    } else {
      client_failed = true;
      log::error("pg: postgres.tls: {}; keeping the certificate loaded before", ctx.message());
    }
  }
  std::map<std::string, std::shared_ptr<const tls::Context>> server_tls;
  std::map<std::string, std::string> errors;
  for (const config::PgDatabase& d : pg.databases) {
    if (d.sslmode == config::PgSslMode::kDisable) continue;
    tls::ClientOptions o;
    o.verify = VerifyOf(d.sslmode);
    o.ca_file = d.sslrootcert;
    o.cert_file = d.sslcert;
    o.key_file = d.sslkey;
    auto ctx = tls::Context::Client(o);
    if (ctx) {
      server_tls[d.name] = *ctx;
    } else {
      errors[d.name] = ctx.message();
      log::error("pg: database {}: TLS: {}; keeping the files loaded before", d.name,
                 ctx.message());
    }
  }
  std::lock_guard lock(impl.mu);
  if (!client_failed) impl.client_tls = std::move(client_tls);
  for (auto& [name, why] : errors) {
    if (auto it = impl.server_tls.find(name); it != impl.server_tls.end()) {
      server_tls[name] = it->second;
    } else {
      impl.server_tls_errors[name] = why;
    }
  }
  for (auto& [name, ctx] : server_tls) impl.server_tls_errors.erase(name);
  impl.server_tls = std::move(server_tls);
  for (auto& [key, pool] : impl.pools) AttachTlsLocked(impl, *pool);
}

void AttachTls(Service::Impl& impl, Pool& pool) {
  std::lock_guard lock(impl.mu);
  AttachTlsLocked(impl, pool);
}

void AttachTlsLocked(Service::Impl& impl, Pool& pool) {
  std::shared_ptr<const tls::Context> ctx;
  std::string why;
  if (auto it = impl.server_tls.find(pool.db.name); it != impl.server_tls.end()) ctx = it->second;
  if (auto it = impl.server_tls_errors.find(pool.db.name); it != impl.server_tls_errors.end())
    why = it->second;
  std::lock_guard lock(pool.mu);
  pool.tls = std::move(ctx);
  pool.tls_error = std::move(why);
}

net::Task<bool> StartServerTls(ServerConn& c, Pool& pool, bool allow_retry, std::string* error) {
  const config::PgSslMode mode = pool.db.sslmode;
  if (mode == config::PgSslMode::kDisable) co_return true;
  if (mode == config::PgSslMode::kAllow && !allow_retry) co_return true;  // plain text first
  std::shared_ptr<const tls::Context> ctx;
  {
    std::lock_guard lock(pool.mu);
    ctx = pool.tls;
    if (!ctx)
      *error = "TLS (sslmode " + std::string(config::PgSslModeName(mode)) + "): " + pool.tls_error;
  }
  if (!ctx) co_return false;
  std::string request;
  AppendInt32(request, 8);
  AppendInt32(request, kSslRequestCode);
  if (co_await c.sock.WriteAll(request)) {
    *error = "connection lost while asking for TLS";
    co_return false;
  }
  // One byte: 'S' or 'N'. Read alone, so nothing the server sent before the handshake can be
  // taken for encrypted data (CVE-2021-23222); anything more is fed to the handshake and fails it.
  char answer = 0;
  net::ReadResult r = co_await c.sock.ReadSome({&answer, 1});
  if (r.ec || r.bytes == 0) {
    *error = "connection closed while asking for TLS";
    co_return false;
  }
  if (answer == 'N') {
    if (mode == config::PgSslMode::kPrefer || mode == config::PgSslMode::kAllow) co_return true;
    *error = "the server does not accept TLS (sslmode " + std::string(config::PgSslModeName(mode)) +
             " requires it)";
    co_return false;
  }
  if (answer != 'S') {
    *error = "the server answered the SSLRequest with '" + std::string(1, answer) +
             "' (expected S or N)";
    co_return false;
  }
  c.tls = tls::Stream(*ctx, pool.peer_name);
  Outcome<void> hs = co_await c.tls.Handshake(c.sock);
  if (!hs) {
    *error = "TLS handshake with the server failed: " + hs.message();
    co_return false;
  }
  co_return true;
}

}  // namespace ficus::pg::internal
