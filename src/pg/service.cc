// The service: the process's pools and users, each worker's listeners, accept loop and
// housekeeping, cancel routing, reload, pause and resume.
#include <unistd.h>

#include <charconv>

#include "base/log.h"
#include "pg/internal/explain.h"
#include "pg/internal/session.h"
#include "pg/internal/trace_join.h"

namespace ficus::pg {

using internal::Pool;
using internal::WorkerState;

bool Enabled(const config::Config& config) {
  for (const auto& l : config.listeners)
    if (l.kind == config::ListenerKind::kPostgres) return true;
  return false;
}

Service::Impl::Impl(std::shared_ptr<const config::Config> c, int nworkers) : config(std::move(c)) {
  for (int i = 0; i < nworkers; ++i) {
    auto w = std::make_unique<WorkerState>();
    w->id = i;
    workers.push_back(std::move(w));
  }
  UpdateVerifiers();
  internal::LoadTls(*this, *config);
  join = std::make_unique<internal::TraceJoin>(*this, nworkers);
  explain = std::make_unique<internal::Explainer>(nworkers);
  join->Start();
}

void Service::Impl::UpdateVerifiers() {
  for (const auto& u : config->postgres.users) {
    auto& [password, verifier] = verifiers[u.name];
    if (verifier && password == u.password) continue;
    password = u.password;
    if (auto v = internal::MakeVerifier(u.password)) {
      verifier = std::make_shared<const internal::ScramVerifier>(*v);
    } else {
      log::error("pg: user {}: the password is neither plain text nor a SCRAM-SHA-256 verifier",
                 u.name);
      verifier = nullptr;
    }
  }
  std::erase_if(verifiers, [this](const auto& kv) {
    for (const auto& u : config->postgres.users)
      if (u.name == kv.first) return false;
    return true;
  });
}

std::shared_ptr<const config::Config> Service::Impl::Config() const {
  std::lock_guard lock(mu);
  return config;
}

std::shared_ptr<const internal::ScramVerifier> Service::Impl::Verifier(const std::string& user) {
  std::lock_guard lock(mu);
  auto it = verifiers.find(user);
  return it == verifiers.end() ? nullptr : it->second.second;
}

std::shared_ptr<Pool> Service::Impl::FindPool(const std::string& db, const std::string& user,
                                              std::string* sqlstate, std::string* error) {
  std::lock_guard lock(mu);
  const std::string key = db + "/" + user;
  if (auto it = pools.find(key); it != pools.end()) return it->second;
  const config::PgDatabase* d = nullptr;
  for (const auto& x : config->postgres.databases)
    if (x.name == db) d = &x;
  const config::PgUser* u = nullptr;
  for (const auto& x : config->postgres.users)
    if (x.name == user) u = &x;
  if (!d) {
    *sqlstate = "3D000";
    *error = "database \"" + db + "\" does not exist (not in ficus's postgres.databases)";
    return nullptr;
  }
  if (!u) {
    *sqlstate = "28000";
    *error = "user \"" + user + "\" is not configured";
    return nullptr;
  }
  const int n = static_cast<int>(workers.size());
  auto p = std::make_shared<Pool>(
      *d, *u, n, nullptr,
      BackendFor(d->name, config::PgServer{d->host, "", d->port}.Address(), true));
  for (const config::PgServer& r : d->replicas) {
    const std::string server = r.Address();
    auto rp = std::make_shared<Pool>(*d, *u, n, &r, BackendFor(d->name, server, false));
    rp->server_index = static_cast<uint32_t>(p->replicas.size() + 1);
    pools.emplace(key + "@" + server, rp);  // listed for metrics, sweeps and reloads
    p->replicas.push_back(std::move(rp));
  }
  internal::AttachTlsLocked(*this, *p);
  for (const auto& rp : p->replicas) internal::AttachTlsLocked(*this, *rp);
  pools.emplace(key, p);
  return p;
}

std::shared_ptr<internal::Backend> Service::Impl::BackendFor(const std::string& db,
                                                             const std::string& server,
                                                             bool primary) {
  auto& b = backends[db + "|" + server];
  if (!b) {
    b = std::make_shared<internal::Backend>();
    b->database = db;
    b->server = server;
    b->primary = primary;
  }
  return b;
}

void Service::Impl::AddPinned(const char* reason) {
  std::lock_guard lock(stats.pinned_mu);
  ++stats.pinned[reason];
}

namespace internal {

void LogIfThrew(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log::error("pg: {}", ex.what());
  }
}

namespace {

net::Task<void> Serve(Service::Impl& impl, WorkerState& w, int fd) {
  ++w.running;
  {
    ClientSession session(impl, w, fd);
    co_await session.Run();
  }
  --w.running;
}

net::Task<void> AcceptLoop(Service::Impl& impl, WorkerState& w, net::Socket& listener) {
  ++w.running;
  while (!w.stopping) {
    Result<int> fd = co_await listener.Accept();
    if (w.stopping) {
      if (fd) ::close(*fd);
      break;
    }
    if (!fd) continue;
    net::SetNoDelay(*fd);
    impl.stats.clients_accepted.fetch_add(1, std::memory_order_relaxed);
    net::Spawn(Serve(impl, w, *fd), LogIfThrew);
  }
  --w.running;
}

// Every 100 ms: timeouts (logins, connects, waits) and the idle server connections.
net::Task<void> Housekeeping(Service::Impl& impl, WorkerState& w) {
  ++w.running;
  int ticks = 0;
  while (!w.stopping) {
    co_await w.loop->Sleep(std::chrono::milliseconds(100));
    w.timeouts.Sweep(w.loop->NowMs());
    if (++ticks % 10 == 0) SweepIdle(w, impl, w.loop->NowMs());
  }
  --w.running;
}

}  // namespace

net::Task<void> ForwardCancel(Service::Impl& impl, WorkerState& w, uint32_t pid, uint32_t key) {
  impl.stats.cancels.fetch_add(1, std::memory_order_relaxed);
  std::shared_ptr<CancelTarget> target;
  {
    std::lock_guard lock(impl.mu);
    auto it = impl.cancels.find((uint64_t{pid} << 32) | key);
    if (it != impl.cancels.end()) target = it->second;
  }
  if (!target) co_return;  // unknown key: ignored, as the server does
  const uint64_t server_key = target->key.load(std::memory_order_relaxed);
  if (server_key == 0) co_return;  // no query running on a server
  net::Socket s;
  const uint32_t index = target->server.load(std::memory_order_relaxed);
  if (index >= target->servers.size()) co_return;
  if (co_await s.Connect(*w.loop, target->servers[index])) co_return;
  std::string out;
  AppendInt32(out, 16);
  AppendInt32(out, kCancelRequestCode);
  AppendInt32(out, static_cast<uint32_t>(server_key >> 32));
  AppendInt32(out, static_cast<uint32_t>(server_key));
  if (!co_await s.WriteAll(out))
    impl.stats.cancels_forwarded.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace internal

Service::Service(std::shared_ptr<const config::Config> config, int workers)
    : impl_(std::make_unique<Impl>(std::move(config), workers)) {}

Service::~Service() { impl_->join->Stop(); }

void Service::AttachRoutes(std::shared_ptr<observe::RouteTraceLog> log) {
  impl_->join->AttachRoutes(std::move(log));
}
void Service::AttachTelemetry(telemetry::Store* store) { impl_->join->AttachStore(store); }

Service::ExplainResult Service::Explain(std::string_view fingerprint, bool analyze) const {
  ExplainResult r;
  uint64_t fp = 0;
  const auto [end, ec] =
      std::from_chars(fingerprint.data(), fingerprint.data() + fingerprint.size(), fp, 16);
  if (fingerprint.empty() || fingerprint.size() > 16 || ec != std::errc() ||
      end != fingerprint.data() + fingerprint.size()) {
    r.status = 400;
    r.error = "a fingerprint is 1 to 16 hex digits (GET /pg lists them)";
    return r;
  }
  internal::Explainer::Plan p =
      impl_->explain->Explain(*impl_, fp, analyze, internal::Explainer::kStatementTimeoutMs + 5000);
  r.status = p.ok ? 200 : p.status;
  r.error = std::move(p.error);
  r.plan = std::move(p.lines);
  for (internal::IndexAdvice& a : p.advice.indexes)
    r.indexes.push_back({a.table, a.columns, a.Statement(), std::move(a.reason)});
  return r;
}

void Service::StartWorker(int id, net::Loop& loop) {
  WorkerState& w = *impl_->workers.at(static_cast<size_t>(id));
  w.loop = &loop;
  for (const auto& l : impl_->Config()->listeners) {
    if (l.kind != config::ListenerKind::kPostgres) continue;
    w.listeners.push_back(net::Listen(loop, net::MakeAddress(l.address, l.port)));
  }
  for (net::Socket& s : w.listeners)
    net::Spawn(internal::AcceptLoop(*impl_, w, s), internal::LogIfThrew);
  net::Spawn(internal::Housekeeping(*impl_, w), internal::LogIfThrew);
  if (id == 0) net::Spawn(internal::CheckServers(*impl_, w), internal::LogIfThrew);
}

void Service::StopWorker(int id) {
  WorkerState& w = *impl_->workers.at(static_cast<size_t>(id));
  w.stopping = true;
  for (net::Socket& s : w.listeners) s.Cancel();
  for (net::Socket* c : std::vector<net::Socket*>(w.clients)) c->Cancel();
  w.timeouts.Sweep(INT64_MAX);  // waits for a server, connects and logins end now
}

void Service::Reconfigure(std::shared_ptr<const config::Config> config) {
  internal::LoadTls(*impl_, *config);  // before the lock: it reads files
  std::lock_guard lock(impl_->mu);
  impl_->config = config;
  impl_->UpdateVerifiers();
  // A pool whose database or user changed (or went away) drains: its connections close as they
  // come back, and the next login builds a pool from the new config.
  for (auto it = impl_->pools.begin(); it != impl_->pools.end();) {
    Pool& p = *it->second;
    bool same = false;
    for (const auto& d : config->postgres.databases) {
      if (d != p.db) continue;
      for (const auto& u : config->postgres.users) {
        const std::string& pw = u.server_password.empty() ? u.password : u.server_password;
        same |= u.name == p.user && pw == p.server_password;
      }
    }
    if (same) {
      ++it;
      continue;
    }
    p.retired = true;
    impl_->retired.push_back(it->second);
    it = impl_->pools.erase(it);
  }
  std::erase_if(impl_->retired, [](const std::shared_ptr<Pool>& p) { return p->open.load() == 0; });
}

bool Service::Stopped() const {
  for (const auto& w : impl_->workers)
    if (w->loop && w->running.load() > 0) return false;
  return true;
}

void Service::Pause() { impl_->paused = true; }
void Service::Resume() { impl_->paused = false; }
bool Service::paused() const { return impl_->paused.load(); }

}  // namespace ficus::pg
