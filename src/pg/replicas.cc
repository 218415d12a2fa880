// Replicas: the checker (worker 0's loop) that measures each server's health and replay lag,
// the choice of a replica for a read, and their export (ficus_pg_server_*, GET /pg "servers").
//
// Lag is measured with ficus's own clock only: each check samples the primary's WAL insert
// position (pg_current_wal_insert_lsn(), at least the end of every acknowledged commit), then
// each replica's replay position (pg_last_wal_replay_lsn()). A replica that has replayed past a
// sample taken at time T holds every commit acknowledged before T: that is read-your-writes'
// exact test, and the interpolated time of its position is its lag.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <map>

#include "base/json.h"
#include "base/log.h"
#include "pg/internal/service.h"

namespace ficus::pg::internal {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Backend::MarkDown(std::string_view why) {
  up.store(false, std::memory_order_relaxed);
  lag_ms.store(-1, std::memory_order_relaxed);
  std::lock_guard lock(mu);
  last_error = why;
}

std::string Backend::LastError() const {
  std::lock_guard lock(mu);
  return last_error;
}

bool ParseLsn(std::string_view text, uint64_t* lsn) {
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= text.size()) return false;
  uint32_t hi = 0, lo = 0;
  auto a = std::from_chars(text.data(), text.data() + slash, hi, 16);
  auto b = std::from_chars(text.data() + slash + 1, text.data() + text.size(), lo, 16);
  if (a.ec != std::errc() || a.ptr != text.data() + slash || b.ec != std::errc() ||
      b.ptr != text.data() + text.size())
    return false;
  *lsn = (uint64_t{hi} << 32) | lo;
  return true;
}

uint64_t NormalizeLsn(uint64_t lsn) {
  constexpr uint64_t kPage = 8192, kLongHeader = 40;  // XLOG_BLCKSZ, SizeOfXLogLongPHD
  const uint64_t in_page = lsn % kPage;
  return in_page != 0 && in_page <= kLongHeader ? lsn - in_page : lsn;
}

ReplayState ReplayPosition(const std::deque<LsnSample>& h, uint64_t replay, int64_t now_ms) {
  ReplayState r;
  if (h.empty()) return r;
  // The last sample at or below `replay` (positions never decrease).
  auto it = std::upper_bound(h.begin(), h.end(), replay,
                             [](uint64_t v, const LsnSample& s) { return v < s.lsn; });
  if (it == h.begin()) {  // older than everything remembered
    r.lag_ms = std::max<int64_t>(0, now_ms - h.front().first_ms);
    return r;
  }
  const LsnSample& at = *std::prev(it);
  r.caught_up_ms = at.last_ms;
  if (it == h.end()) {
    r.lag_ms = 0;
    return r;
  }
  const LsnSample& next = *it;  // the first position the replica lacks, first seen then
  const double fraction =
      static_cast<double>(replay - at.lsn) / static_cast<double>(next.lsn - at.lsn);
  const double reached =
      static_cast<double>(at.last_ms) + fraction * static_cast<double>(next.first_ms - at.last_ms);
  r.lag_ms = std::max<int64_t>(0, now_ms - static_cast<int64_t>(reached));
  return r;
}

Pool* PickReplica(Pool& primary, int64_t last_write_ms, uint32_t* turn) {
  const size_t n = primary.replicas.size();
  if (n == 0) return nullptr;
  const int64_t max_lag = primary.db.max_replica_lag.count();
  const bool ryw = primary.db.read_your_writes && last_write_ms > 0;
  Pool* best = nullptr;
  int64_t best_load = 0;
  bool any_up = false, any_fresh = false;
  const size_t start = (*turn)++ % n;
  for (size_t k = 0; k < n; ++k) {
    Pool& r = *primary.replicas[(start + k) % n];
    const Backend& b = *r.backend;
    if (!b.up.load(std::memory_order_relaxed) || !b.in_recovery.load(std::memory_order_relaxed))
      continue;
    any_up = true;
    const int64_t lag = b.lag_ms.load(std::memory_order_relaxed);
    if (lag < 0 || lag > max_lag) continue;
    any_fresh = true;
    if (ryw && b.caught_up_ms.load(std::memory_order_relaxed) <= last_write_ms) continue;
    const int64_t load = r.servers_active.load(std::memory_order_relaxed) +
                         r.waiting.load(std::memory_order_relaxed);
    if (!best || load < best_load) {
      best = &r;
      best_load = load;
    }
  }
  if (!best) {
    Backend& p = *primary.backend;
    (any_fresh ? p.fallback_ryw
     : any_up  ? p.fallback_lag
               : p.fallback_down)
        .fetch_add(1, std::memory_order_relaxed);
  }
  return best;
}

namespace {

// One server the checker watches, with its own connection (not from any pool).
struct Probe {
  std::shared_ptr<Backend> backend;
  std::unique_ptr<Pool> login;  // database, user, password and address to log in with
  std::unique_ptr<ServerConn> conn;
  bool seen = false;  // in the current config (probes of removed servers are dropped)
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
  b.checks_failed.fetch_add(1, std::memory_order_relaxed);
  if (b.up.load(std::memory_order_relaxed) || !b.checked.load(std::memory_order_relaxed)) {
    log::warn("pg: database {}: {} {} is down: {}", b.database, b.primary ? "primary" : "replica",
              b.server, error);
  }
  b.MarkDown(error);
  b.checked.store(true, std::memory_order_relaxed);
}

void Up(Backend& b, bool in_recovery) {
  if (!b.up.load(std::memory_order_relaxed) && b.checked.load(std::memory_order_relaxed))
    log::info("pg: database {}: {} {} is up", b.database, b.primary ? "primary" : "replica",
              b.server);
  b.in_recovery.store(in_recovery, std::memory_order_relaxed);
  b.up.store(true, std::memory_order_relaxed);
  b.checked.store(true, std::memory_order_relaxed);
}

}  // namespace

net::Task<void> CheckServers(Service::Impl& impl, WorkerState& w) {
  ++w.running;
  std::map<std::string, Probe> probes;                   // by "database|host:port"
  std::map<std::string, std::deque<LsnSample>> history;  // the primary's, by database
  while (!w.stopping) {
    const std::shared_ptr<const config::Config> config = impl.Config();
    const config::Postgres& pg = config->postgres;
    const config::PgUser* user = nullptr;
    for (const config::PgUser& u : pg.users) {
      if (!user && (pg.health_check_user.empty() || u.name == pg.health_check_user)) user = &u;
    }
    for (auto& [k, p] : probes) p.seen = false;
    for (const config::PgDatabase& d : pg.databases) {
      if (!user || w.stopping) break;
      // The probe of each server: (re)made when its database or user changed.
      auto probe = [&](const config::PgServer* server) -> Probe& {
        const std::string address =
            server ? server->Address() : config::PgServer{d.host, "", d.port}.Address();
        Probe& p = probes[d.name + "|" + address];
        p.seen = true;
        if (!p.login || p.login->db != d || p.login->user != user->name) {
          std::shared_ptr<Backend> b;
          {
            std::lock_guard lock(impl.mu);
            b = impl.BackendFor(d.name, address, server == nullptr);
          }
          p.conn.reset();
          p.login = std::make_unique<Pool>(d, *user, 1, server, b);
          AttachTls(impl, *p.login);  // checks connect with the database's sslmode too
          p.backend = std::move(b);
        }
        return p;
      };
      Probe& primary = probe(nullptr);
      std::deque<LsnSample>& h = history[d.name];
      const int64_t sampled = SteadyMs();  // before the query: the position covers commits
      ProbeResult pr = co_await RunProbe(w, primary, pg);  // acknowledged before this time
      const bool primary_ok = pr.ok && !pr.in_recovery;
      if (!pr.ok) {
        Fail(*primary.backend, pr.error);
      } else {
        Up(*primary.backend, pr.in_recovery);
        if (pr.in_recovery) {
          primary.backend->MarkDown("the primary is in recovery (a standby): writes fail there");
          primary.backend->up.store(true, std::memory_order_relaxed);
        }
      }
      if (primary_ok) {
        if (!h.empty() && h.back().lsn == pr.lsn) {
          h.back().last_ms = sampled;
        } else if (h.empty() || pr.lsn > h.back().lsn) {
          h.push_back({sampled, sampled, pr.lsn});
        } else {  // the position went back: a different server now (restored, failed over)
          h.clear();
          h.push_back({sampled, sampled, pr.lsn});
        }
        // Enough history to tell a lag past max_replica_lag (and a minute at least).
        const int64_t keep = std::max<int64_t>(60'000, 2 * d.max_replica_lag.count());
        while (h.size() > 1 && (sampled - h[1].first_ms > keep || h.size() > 4096)) h.pop_front();
      }
      for (const config::PgServer& r : d.replicas) {
        if (w.stopping) break;
        Probe& rp = probe(&r);
        ProbeResult rr = co_await RunProbe(w, rp, pg);
        Backend& b = *rp.backend;
        if (!rr.ok) {
          Fail(b, rr.error);
          continue;
        }
        Up(b, rr.in_recovery);
        if (!rr.in_recovery) {  // promoted, or never a standby: not a replica of this primary
          b.lag_ms.store(-1, std::memory_order_relaxed);
          std::lock_guard lock(b.mu);
          b.last_error = "not in recovery (promoted?): no reads routed to it";
          continue;
        }
        if (primary_ok) {
          const ReplayState s = ReplayPosition(h, rr.lsn, SteadyMs());
          b.caught_up_ms.store(s.caught_up_ms, std::memory_order_relaxed);
          b.lag_ms.store(s.lag_ms, std::memory_order_relaxed);
        } else {
          // No primary to compare with: no write can happen either. A replica that replayed all
          // it received is as fresh as the data that exists; otherwise the age of its last
          // replayed commit (the server's clock) bounds its lag.
          const bool drained = rr.received != 0 && rr.lsn >= rr.received;
          b.lag_ms.store(drained                ? 0
                         : rr.replay_age_s >= 0 ? static_cast<int64_t>(rr.replay_age_s * 1000)
                                                : -1,
                         std::memory_order_relaxed);
        }
      }
    }
    std::erase_if(probes, [](const auto& kv) { return !kv.second.seen; });
    // The next round, in steps a stop does not wait long for.
    const int64_t next = w.loop->NowMs() + pg.health_check_interval.count();
    while (!w.stopping && w.loop->NowMs() < next) {
      co_await w.loop->Sleep(std::chrono::milliseconds(
          std::min<int64_t>(100, std::max<int64_t>(1, next - w.loop->NowMs()))));
    }
  }
  --w.running;
}

void CollectServers(const Service::Impl& impl, observe::MetricWriter& w) {
  std::vector<std::shared_ptr<Backend>> backends;
  {
    std::lock_guard lock(impl.mu);
    for (const config::PgDatabase& d : impl.config->postgres.databases) {
      auto add = [&](const std::string& server) {
        auto it = impl.backends.find(d.name + "|" + server);
        if (it != impl.backends.end()) backends.push_back(it->second);
      };
      add(config::PgServer{d.host, "", d.port}.Address());
      for (const config::PgServer& r : d.replicas) add(r.Address());
    }
  }
  auto role = [](const Backend& b) { return b.primary ? "primary" : "replica"; };
  w.Family("ficus_pg_server_up", "gauge",
           "1 when the server's last health check (or connect) succeeded.");
  for (const auto& b : backends)
    w.GaugeSample("ficus_pg_server_up",
                  {{"database", b->database}, {"server", b->server}, {"role", role(*b)}},
                  b->up.load() ? 1 : 0);
  w.Family("ficus_pg_server_lag_seconds", "gauge",
           "A replica's replay lag (ficus's clock against the primary's WAL position).");
  for (const auto& b : backends) {
    if (b->primary || b->lag_ms.load() < 0) continue;
    w.DoubleSample("ficus_pg_server_lag_seconds",
                   {{"database", b->database}, {"server", b->server}},
                   static_cast<double>(b->lag_ms.load()) / 1000);
  }
  w.Family("ficus_pg_server_transactions_total", "counter",
           "Transactions routed to the server, by access (read or write).");
  for (const auto& b : backends) {
    for (const char* access : {"read", "write"}) {
      w.Sample("ficus_pg_server_transactions_total",
               {{"database", b->database},
                {"server", b->server},
                {"role", role(*b)},
                {"access", access}},
               std::string_view(access) == "read" ? b->reads.load() : b->writes.load());
    }
  }
  w.Family("ficus_pg_reads_on_primary_total", "counter",
           "Read-only transactions of a database with replicas served by the primary, by why.");
  for (const auto& b : backends) {
    if (!b->primary) continue;
    w.Sample("ficus_pg_reads_on_primary_total",
             {{"database", b->database}, {"reason", "replica_down"}}, b->fallback_down.load());
    w.Sample("ficus_pg_reads_on_primary_total",
             {{"database", b->database}, {"reason", "replica_lag"}}, b->fallback_lag.load());
    w.Sample("ficus_pg_reads_on_primary_total",
             {{"database", b->database}, {"reason", "read_your_writes"}}, b->fallback_ryw.load());
  }
  w.Family("ficus_pg_server_checks_failed_total", "counter", "Failed health checks.");
  for (const auto& b : backends)
    w.Sample("ficus_pg_server_checks_failed_total",
             {{"database", b->database}, {"server", b->server}, {"role", role(*b)}},
             b->checks_failed.load());
}

void WriteServersJson(const Service::Impl& impl, JsonWriter& j) {
  std::vector<std::shared_ptr<Backend>> backends;
  {
    std::lock_guard lock(impl.mu);
    for (const auto& [k, b] : impl.backends) backends.push_back(b);
  }
  j.BeginArray();
  for (const auto& b : backends) {
    j.BeginObject();
    j.Key("database").String(b->database);
    j.Key("server").String(b->server);
    j.Key("role").String(b->primary ? "primary" : "replica");
    j.Key("checked").Bool(b->checked.load());
    j.Key("up").Bool(b->up.load());
    j.Key("in_recovery").Bool(b->in_recovery.load());
    if (b->lag_ms.load() >= 0) {
      j.Key("lag_ms").Int(b->lag_ms.load());
    } else {
      j.Key("lag_ms").Null();
    }
    j.Key("reads").Uint(b->reads.load());
    j.Key("writes").Uint(b->writes.load());
    j.Key("checks_failed").Uint(b->checks_failed.load());
    if (b->primary) {
      j.Key("reads_on_primary").BeginObject();
      j.Key("replica_down").Uint(b->fallback_down.load());
      j.Key("replica_lag").Uint(b->fallback_lag.load());
      j.Key("read_your_writes").Uint(b->fallback_ryw.load());
      j.EndObject();
    }
    const std::string error = b->LastError();
    if (!error.empty()) j.Key("last_error").String(error);
    j.EndObject();
  }
  j.EndArray();
}

}  // namespace ficus::pg::internal
