// The health checker (worker 0's loop): each server of each database (its primary, its
// replicas) is checked by its own coroutine, every health_check_interval, so that a server that
// hangs (its check waits up to health_check_timeout) never delays the checks of the others. A
// primary's check samples its WAL insert position into its database's history; a replica's check
// places its replay position against that history (replicas.cc: ReplayPosition). All of them
// run on one thread: the history and the set of checks need no lock.
//
// A supervisor compares the running checks with the config every 100 ms: a server added (or
// whose database or check user changed) gets a new check, a removed one's check ends.
#include <algorithm>
#include <charconv>
#include <deque>
#include <map>

#include "base/log.h"
#include "pg/internal/service.h"

namespace ficus::pg::internal {

namespace {

// One server the checker watches, with its own connection (not from any pool).
struct Probe {
  std::shared_ptr<Backend> backend;
  std::unique_ptr<Pool> login;  // database, user, password and address to log in with
  std::unique_ptr<ServerConn> conn;
};

struct CheckDeadline : net::TimeoutList::Entry {
  net::Socket* sock = nullptr;
  bool fired = false;
  void OnTimeout() override {
    fired = true;
    if (sock) sock->Cancel();
  }
};

// In recovery, replay position, receive position, seconds since the last replayed commit.
constexpr std::string_view kProbeSql =
    "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() "
    "ELSE pg_current_wal_insert_lsn() END, CASE WHEN pg_is_in_recovery() THEN "
    "pg_last_wal_receive_lsn() END, extract(epoch from now() - pg_last_xact_replay_timestamp())";

struct ProbeResult {
  bool ok = false;
  bool in_recovery = false;
  uint64_t lsn = 0;          // the primary's insert position or a replica's replay position
  uint64_t received = 0;     // a replica's received position (0: none)
  double replay_age_s = -1;  // since the last replayed commit (replicas; -1: unknown)
  std::string error;
};

net::Task<ProbeResult> RunProbe(WorkerState& w, Probe& p, const config::Postgres& pg) {
  ProbeResult r;
  const int64_t timeout = pg.health_check_timeout.count();
  if (!p.conn) {
    std::vector<std::pair<std::string, std::string>> params = {
        {"application_name", "ficus health check"}};
    p.conn = co_await ConnectServer(w, *p.login, params, &r.error, timeout);
    if (!p.conn) co_return r;
  }
  CheckDeadline deadline;
  deadline.sock = &p.conn->sock;
  deadline.SetDeadline(w.loop->NowMs() + timeout);
  w.timeouts.Add(&deadline);
  std::vector<std::optional<std::string>> row;
  const bool ok = co_await RunQueryRow(*p.conn, kProbeSql, 1u << 20, &row, &r.error);
  w.timeouts.Remove(&deadline);
  if (!ok || row.size() != 4 || !row[0] || !row[1] || !ParseLsn(*row[1], &r.lsn)) {
    if (deadline.fired) {
      r.error = "no answer within health_check_timeout " +
                config::FormatDuration(pg.health_check_timeout);
    } else if (ok) {
      r.error = "unexpected answer to the health check";
    }
    p.conn.reset();
    co_return r;
  }
  r.ok = true;
  r.in_recovery = *row[0] == "t";
  r.lsn = NormalizeLsn(r.lsn);
  if (row[2] && ParseLsn(*row[2], &r.received)) r.received = NormalizeLsn(r.received);
  if (row[3]) {
    double v = -1;
    std::from_chars(row[3]->data(), row[3]->data() + row[3]->size(), v);
    r.replay_age_s = v;
  }
  co_return r;
}

void Fail(Backend& b, const std::string& error) {
  b.checks.fetch_add(1, std::memory_order_relaxed);
  b.checks_failed.fetch_add(1, std::memory_order_relaxed);
  if (b.up.load(std::memory_order_relaxed) || !b.checked.load(std::memory_order_relaxed)) {
    log::warn("pg: database {}: {} {} is down: {}", b.database, b.primary ? "primary" : "replica",
              b.server, error);
  }
  b.MarkDown(error);
  b.checked.store(true, std::memory_order_relaxed);
}

void Up(Backend& b, bool in_recovery) {
  b.checks.fetch_add(1, std::memory_order_relaxed);
  if (!b.up.load(std::memory_order_relaxed) && b.checked.load(std::memory_order_relaxed))
    log::info("pg: database {}: {} {} is up", b.database, b.primary ? "primary" : "replica",
              b.server);
  b.in_recovery.store(in_recovery, std::memory_order_relaxed);
  b.up.store(true, std::memory_order_relaxed);
  b.checked.store(true, std::memory_order_relaxed);
}

// One server's check: what it logs in with, and the coroutine's stop flag.
struct ServerCheck {
  config::PgDatabase db;
  std::string user;
  bool primary = true;
  std::shared_ptr<Backend> primary_backend;  // its database's primary (a replica's lag needs it)
  Probe probe;
  bool stop = false;  // the supervisor dropped it (config changed): ends after its round
};

// Shared by the checks of worker 0 (one thread).
struct CheckState {
  std::map<std::string, std::deque<LsnSample>> history;  // the primary's, by database
};

void CheckPrimary(CheckState& st, ServerCheck& c, int64_t sampled, const ProbeResult& pr) {
  Backend& b = *c.probe.backend;
  if (!pr.ok) {
    Fail(b, pr.error);
    return;
  }
  Up(b, pr.in_recovery);
  if (pr.in_recovery) {
    b.MarkDown("the primary is in recovery (a standby): writes fail there");
    b.up.store(true, std::memory_order_relaxed);
    return;
  }
  std::deque<LsnSample>& h = st.history[c.db.name];
  if (!h.empty() && h.back().lsn == pr.lsn) {
    h.back().last_ms = sampled;
  } else if (h.empty() || pr.lsn > h.back().lsn) {
    h.push_back({sampled, sampled, pr.lsn});
  } else {  // the position went back: a different server now (restored, failed over)
    h.clear();
    h.push_back({sampled, sampled, pr.lsn});
  }
  // Enough history to tell a lag past max_replica_lag (and a minute at least).
  const int64_t keep = std::max<int64_t>(60'000, 2 * c.db.max_replica_lag.count());
  while (h.size() > 1 && (sampled - h[1].first_ms > keep || h.size() > 4096)) h.pop_front();
}

void CheckReplica(CheckState& st, ServerCheck& c, const ProbeResult& rr) {
  Backend& b = *c.probe.backend;
  if (!rr.ok) {
    Fail(b, rr.error);
    return;
  }
  Up(b, rr.in_recovery);
  if (!rr.in_recovery) {  // promoted, or never a standby: not a replica of this primary
    b.lag_ms.store(-1, std::memory_order_relaxed);
    std::lock_guard lock(b.mu);
    b.last_error = "not in recovery (promoted?): no reads routed to it";
    return;
  }
  const Backend& p = *c.primary_backend;
  const bool primary_ok = p.checked.load(std::memory_order_relaxed) &&
                          p.up.load(std::memory_order_relaxed) &&
                          !p.in_recovery.load(std::memory_order_relaxed);
  const auto h = st.history.find(c.db.name);
  if (primary_ok && h != st.history.end() && !h->second.empty()) {
    // A history sample taken after this replay position was read still holds: the replica
    // had reached that position, so every commit acknowledged before the sample is there.
    const ReplayState s = ReplayPosition(h->second, rr.lsn, SteadyMs());
    b.caught_up_ms.store(s.caught_up_ms, std::memory_order_relaxed);
    b.lag_ms.store(s.lag_ms, std::memory_order_relaxed);
  } else {
    // No primary to compare with: no write can happen either. A replica that replayed all it
    // received is as fresh as the data that exists; otherwise the age of its last replayed
    // commit (the server's clock) bounds its lag.
    const bool drained = rr.received != 0 && rr.lsn >= rr.received;
    b.lag_ms.store(drained                ? 0
                   : rr.replay_age_s >= 0 ? static_cast<int64_t>(rr.replay_age_s * 1000)
                                          : -1,
                   std::memory_order_relaxed);
  }
}

// Sleeps until `until` (the loop's clock) in steps a stop does not wait long for.
net::Task<void> SleepUntil(WorkerState& w, int64_t until, const bool* stop) {
  while (!w.stopping && !*stop && w.loop->NowMs() < until) {
    co_await w.loop->Sleep(std::chrono::milliseconds(
        std::min<int64_t>(100, std::max<int64_t>(1, until - w.loop->NowMs()))));
  }
}

net::Task<void> CheckLoop(Service::Impl& impl, WorkerState& w, std::shared_ptr<CheckState> st,
                          std::shared_ptr<ServerCheck> c) {
  ++w.running;
  while (!w.stopping && !c->stop) {
    const std::shared_ptr<const config::Config> config = impl.Config();
    const config::Postgres& pg = config->postgres;
    const int64_t next = w.loop->NowMs() + pg.health_check_interval.count();
    const int64_t sampled = SteadyMs();  // before the query: the position covers commits
    ProbeResult r = co_await RunProbe(w, c->probe, pg);  // acknowledged before this time
    if (c->stop || w.stopping) break;  // a newer check of this server reports from now on
    if (c->primary) {
      CheckPrimary(*st, *c, sampled, r);
    } else {
      CheckReplica(*st, *c, r);
    }
    co_await SleepUntil(w, next, &c->stop);
  }
  c->probe.conn.reset();
  --w.running;
}

}  // namespace

net::Task<void> CheckServers(Service::Impl& impl, WorkerState& w) {
  ++w.running;
  auto st = std::make_shared<CheckState>();
  std::map<std::string, std::shared_ptr<ServerCheck>> checks;  // by "database|host:port"
  while (!w.stopping) {
    const std::shared_ptr<const config::Config> config = impl.Config();
    const config::Postgres& pg = config->postgres;
    const config::PgUser* user = nullptr;
    for (const config::PgUser& u : pg.users) {
      if (!user && (pg.health_check_user.empty() || u.name == pg.health_check_user)) user = &u;
    }
    std::map<std::string, std::shared_ptr<ServerCheck>> wanted;
    for (const config::PgDatabase& d : pg.databases) {
      if (!user) break;
      const std::string primary_address = config::PgServer{d.host, "", d.port}.Address();
      std::shared_ptr<Backend> primary_backend;
      auto add = [&](const config::PgServer* server) {
        const std::string address = server ? server->Address() : primary_address;
        const std::string key = d.name + "|" + address;
        auto it = checks.find(key);
        if (it != checks.end() && it->second->db == d && it->second->user == user->name) {
          wanted[key] = it->second;
          if (!server) primary_backend = it->second->probe.backend;
          return;
        }
        auto c = std::make_shared<ServerCheck>();
        c->db = d;
        c->user = user->name;
        c->primary = server == nullptr;
        {
          std::lock_guard lock(impl.mu);
          c->probe.backend = impl.BackendFor(d.name, address, server == nullptr);
        }
        c->probe.login = std::make_unique<Pool>(d, *user, 1, server, c->probe.backend);
        AttachTls(impl, *c->probe.login);  // checks connect with the database's sslmode too
        if (!server) primary_backend = c->probe.backend;
        c->primary_backend = primary_backend;
        wanted[key] = c;
        net::Spawn(CheckLoop(impl, w, st, c), LogIfThrew);
      };
      add(nullptr);
      for (const config::PgServer& r : d.replicas) add(&r);
    }
    for (auto& [key, c] : checks)
      if (!wanted.contains(key) || wanted[key] != c) c->stop = true;
    checks = std::move(wanted);
    static constexpr bool kNever = false;
    co_await SleepUntil(w, w.loop->NowMs() + 100, &kNever);
  }
  for (auto& [key, c] : checks) c->stop = true;
  --w.running;
}

}  // namespace ficus::pg::internal
