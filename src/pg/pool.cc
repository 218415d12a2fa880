// Server connection pools: bounded per (database, user) across workers, an idle list per
// worker (no lock on the fast path), and a FIFO of waiting clients with a deadline.
//
// A connection a client gives back goes to the oldest waiter: handed over as it is when the
// waiter runs on the same worker; otherwise it is closed and its slot granted, and the waiter
// connects anew on its own worker (a socket belongs to one worker's event loop).
#include "base/log.h"
#include "pg/internal/service.h"

namespace ficus::pg::internal {

Pool::Pool(const config::PgDatabase& d, const config::PgUser& u, int nworkers,
           const config::PgServer* server, std::shared_ptr<Backend> b)
    : name(d.name + "/" + u.name),
      db(d),
      user(u.name),
      server_password(u.server_password.empty() ? u.password : u.server_password),
      address(server ? net::MakeAddress(server->host, server->port)
                     : net::MakeAddress(d.host, d.port)),
      backend(std::move(b)),
      is_replica(server != nullptr),
      workers(static_cast<size_t>(nworkers)) {
  if (server) name += "@" + server->Address();
  peer_name = server ? (server->hostname.empty() ? server->host : server->hostname)
                     : (d.hostname.empty() ? d.host : d.hostname);
}

const std::string* ServerConn::Param(std::string_view name) const {
  for (const auto& [k, v] : params)
    if (k == name) return &v;
  return nullptr;
}

void ServerConn::SetParam(std::string_view name, std::string_view value) {
  for (auto& [k, v] : params) {
    if (k == name) {
      v = value;
      return;
    }
  }
  params.emplace_back(std::string(name), std::string(value));
}

void Waiter::OnTimeout() {
  {
    std::lock_guard lock(pool->mu);
    for (auto it = pool->waiters.begin(); it != pool->waiters.end(); ++it) {
      if (*it == this) {
        pool->waiters.erase(it);
        pool->waiting.fetch_sub(1, std::memory_order_relaxed);
        result = Result::kTimeout;
        break;
      }
    }
  }
  if (result == Result::kTimeout) wake.Signal();
}

namespace {

// How long the oldest waiter may be passed over for a waiter on the worker that gives a
// connection back (a handover across workers costs a new server connection).
constexpr int64_t kHandoverGraceMs = 50;

// The parameters a client set in its startup packet that a shared server connection must carry
// while it serves that client (the rest are the server's defaults).
constexpr const char* kTrackedParams[] = {"client_encoding", "DateStyle", "TimeZone",
                                          "IntervalStyle", "application_name"};

// Brings a server connection's tracked parameters to the client's values (one round trip when
// any differs).
net::Task<bool> SyncParams(ServerConn& s,
                           const std::vector<std::pair<std::string, std::string>>& client,
                           uint32_t max_message) {
  std::string sql;
  for (const char* name : kTrackedParams) {
    for (const auto& [k, v] : client) {
      if (k != name) continue;
      const std::string* have = s.Param(name);
      if (have && *have == v) break;
      std::string quoted = "'";
      for (char c : v) {
        if (c == '\'') quoted += '\'';
        quoted += c;
      }
      quoted += "'";
      sql += "SET " + std::string(name) + " = " + quoted + ";";
      if (std::string_view(name) == "application_name") s.SetParam(name, v);
    }
  }
  if (sql.empty()) co_return true;
  co_return co_await RunQuietly(s, sql, max_message);
}

// Gives a slot (a server connection's place under pool_size) to the oldest waiter, or frees it.
void PassSlot(Pool& pool) {
  Waiter* w = nullptr;
  if (pool.waiting.load(std::memory_order_relaxed) > 0) {
    std::lock_guard lock(pool.mu);
    if (!pool.waiters.empty()) {
      w = pool.waiters.front();
      pool.waiters.pop_front();
      pool.waiting.fetch_sub(1, std::memory_order_relaxed);
      w->result = Waiter::Result::kSlot;
    }
  }
  if (w) {
    w->wake.Signal();
  } else {
    pool.open.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Close(std::unique_ptr<ServerConn> conn) {
  Pool& pool = *conn->pool;
  conn.reset();
  PassSlot(pool);
}

}  // namespace

void Release(WorkerState& w, std::unique_ptr<ServerConn> conn, bool clean) {
  Pool& pool = *conn->pool;
  pool.servers_active.fetch_sub(1, std::memory_order_relaxed);
  if (!clean || pool.retired.load(std::memory_order_relaxed) || !conn->sock.is_open()) {
    Close(std::move(conn));
    return;
  }
  Waiter* waiter = nullptr;
  if (pool.waiting.load(std::memory_order_relaxed) > 0) {
    std::lock_guard lock(pool.mu);
    if (!pool.waiters.empty()) {
      // The oldest waiter, unless it is on another worker and a waiter of this one is there
      // too: that one takes the connection as it is (no new server connection), as long as the
      // oldest has waited under kHandoverGrace (so no worker's clients starve).
      auto pick = pool.waiters.begin();
      if ((*pick)->worker != w.id && w.loop->NowMs() - (*pick)->since_ms < kHandoverGraceMs) {
        for (auto it = pool.waiters.begin(); it != pool.waiters.end(); ++it) {
          if ((*it)->worker == w.id) {
            pick = it;
            break;
          }
        }
      }
      waiter = *pick;
      pool.waiters.erase(pick);
      pool.waiting.fetch_sub(1, std::memory_order_relaxed);
      // Handed over as it is; to another worker, its descriptor moves to that worker's loop
      // (the waiter adopts it), so no new server connection is needed either way.
      if (waiter->worker != w.id) waiter->moved_fd = conn->sock.Release();
      waiter->result = Waiter::Result::kConn;
      waiter->conn = std::move(conn);
    }
  }
  if (waiter) {
    waiter->wake.Signal();
    return;
  }
  conn->idle_since_ms = w.loop->NowMs();
  pool.servers_idle.fetch_add(1, std::memory_order_relaxed);
  pool.workers[w.id].idle.push_back(std::move(conn));
}

void SweepIdle(WorkerState& w, Service::Impl& impl, int64_t now_ms) {
  std::vector<std::shared_ptr<Pool>> pools;
  {
    std::lock_guard lock(impl.mu);
    for (auto& [k, p] : impl.pools) pools.push_back(p);
    for (auto& p : impl.retired) pools.push_back(p);
  }
  for (auto& p : pools) {
    auto& idle = p->workers[w.id].idle;
    std::vector<std::unique_ptr<ServerConn>> wanted;
    for (size_t i = 0; i < idle.size();) {
      ServerConn& c = *idle[i];
      // Closed by the server, retired by a reload or idle for 10 minutes: closed (its slot
      // passed on). Wanted by a client waiting on another worker: handed over to it.
      const bool dead = !c.sock.IsQuiet() || p->retired.load(std::memory_order_relaxed) ||
                        now_ms - c.idle_since_ms > 600'000;
      if (dead || p->waiting.load(std::memory_order_relaxed) > 0) {
        std::unique_ptr<ServerConn> taken = std::move(idle[i]);
        idle.erase(idle.begin() + static_cast<ptrdiff_t>(i));
        p->servers_idle.fetch_sub(1, std::memory_order_relaxed);
        if (dead) {
          Close(std::move(taken));
        } else {
          wanted.push_back(std::move(taken));
        }
        continue;
      }
      ++i;
    }
    for (auto& c : wanted) {
      p->servers_active.fetch_add(1, std::memory_order_relaxed);
      Release(w, std::move(c), /*clean=*/true);  // to the oldest waiter, or back to idle
    }
  }
}

net::Task<Acquired> Acquire(Service::Impl& impl, WorkerState& w, Pool& pool,
                            const std::vector<std::pair<std::string, std::string>>& client_params) {
  const uint32_t max_message = impl.Config()->postgres.max_message;
  const int64_t connect_ms = impl.Config()->postgres.connect_timeout.count();
  Acquired a;
  for (int attempt = 0; attempt < 3; ++attempt) {
    // 1. An idle connection of this worker (newest first: its cache is warm).
    auto& idle = pool.workers[w.id].idle;
    while (!idle.empty()) {
      std::unique_ptr<ServerConn> c = std::move(idle.back());
      idle.pop_back();
      pool.servers_idle.fetch_sub(1, std::memory_order_relaxed);
      if (!c->sock.IsQuiet()) {  // the server closed it (or sent something unasked)
        Close(std::move(c));
        continue;
      }
      pool.servers_active.fetch_add(1, std::memory_order_relaxed);
      if (!co_await SyncParams(*c, client_params, max_message)) {
        pool.servers_active.fetch_sub(1, std::memory_order_relaxed);
        Close(std::move(c));
        continue;
      }
      a.conn = std::move(c);
      co_return a;
    }
    // 2. A free slot: connect. 3. Otherwise wait in line.
    bool have_slot = false;
    int open = pool.open.load(std::memory_order_relaxed);
    while (open < static_cast<int>(pool.db.pool_size)) {
      if (pool.open.compare_exchange_weak(open, open + 1, std::memory_order_relaxed)) {
        have_slot = true;
        break;
      }
    }
    if (!have_slot) {
      if (pool.waiting.load(std::memory_order_relaxed) >= static_cast<int>(pool.db.max_waiting)) {
        pool.wait_full.fetch_add(1, std::memory_order_relaxed);
        a.sqlstate = "53300";
        a.error = "too many clients waiting for a server connection of pool \"" + pool.name +
                  "\" (pool_size " + std::to_string(pool.db.pool_size) + ", max_waiting " +
                  std::to_string(pool.db.max_waiting) + ")";
        co_return a;
      }
      Waiter waiter(*w.loop);
      waiter.pool = &pool;
      waiter.worker = w.id;
      waiter.since_ms = w.loop->NowMs();
      const int64_t start = NowMicros();
      {
        std::lock_guard lock(pool.mu);
        pool.waiters.push_back(&waiter);
        pool.waiting.fetch_add(1, std::memory_order_relaxed);
      }
      pool.waits.fetch_add(1, std::memory_order_relaxed);
      // Idle connections on other workers come here (their descriptors move to this loop).
      for (auto& other : impl.workers) {
        if (other->id == w.id || !other->loop) continue;
        WorkerState* o = other.get();
        Service::Impl* ip = &impl;
        o->loop->Post([o, ip] { SweepIdle(*o, *ip, o->loop->NowMs()); });
      }
      waiter.SetDeadline(w.loop->NowMs() + pool.db.wait_timeout.count());
      w.timeouts.Add(&waiter);
      co_await waiter.wake;
      w.timeouts.Remove(&waiter);
      pool.wait_micros.fetch_add(static_cast<uint64_t>(NowMicros() - start),
                                 std::memory_order_relaxed);
      if (waiter.result == Waiter::Result::kTimeout) {
        pool.wait_timeouts.fetch_add(1, std::memory_order_relaxed);
        a.sqlstate = "57014";
        a.error = "timed out after " + config::FormatDuration(pool.db.wait_timeout) +
                  " waiting for a server connection of pool \"" + pool.name + "\" (pool_size " +
                  std::to_string(pool.db.pool_size) + ", all in use)";
        co_return a;
      }
      if (waiter.result == Waiter::Result::kConn) {
        if (waiter.moved_fd >= 0) waiter.conn->sock = net::Socket(*w.loop, waiter.moved_fd);
        pool.servers_active.fetch_add(1, std::memory_order_relaxed);
        if (!co_await SyncParams(*waiter.conn, client_params, max_message)) {
          pool.servers_active.fetch_sub(1, std::memory_order_relaxed);
          Close(std::move(waiter.conn));
          continue;
        }
        a.conn = std::move(waiter.conn);
        co_return a;
      }
      // kSlot: a slot was passed to us; connect with it.
    }
    std::string error;
    pool.server_connects.fetch_add(1, std::memory_order_relaxed);
    std::unique_ptr<ServerConn> c =
        co_await ConnectServer(w, pool, client_params, &error, connect_ms);
    if (!c) {
      pool.connect_failures.fetch_add(1, std::memory_order_relaxed);
      PassSlot(pool);
      log::warn("pg: pool {}: cannot connect to {}: {}", pool.name, pool.address.ToString(), error);
      a.sqlstate = "08006";
      a.error = "cannot connect to the server of pool \"" + pool.name + "\": " + error;
      co_return a;
    }
    {
      std::lock_guard lock(pool.mu);
      if (pool.params.empty()) pool.params = c->params;
    }
    pool.servers_active.fetch_add(1, std::memory_order_relaxed);
    a.conn = std::move(c);
    co_return a;
  }
  a.sqlstate = "08006";
  a.error = "no usable server connection in pool \"" + pool.name + "\"";
  co_return a;
}

}  // namespace ficus::pg::internal
