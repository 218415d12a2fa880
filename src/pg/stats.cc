// What the queries say: per-fingerprint counts and latency per worker, slow-query samples
// (normalised text: literals and parameters are never kept), per-trace query groups for the
// N+1 view, and their export (Prometheus ficus_pg_*, the JSON of GET /pg).
#include <algorithm>
#include <ctime>

#include "base/json.h"
#include "pg/internal/trace_join.h"

namespace ficus::pg::internal {

namespace {
constexpr size_t kMaxFingerprints = 5000;     // per worker; more are counted as dropped
constexpr size_t kMaxSlow = 100;              // slow-query samples kept per worker
constexpr size_t kExportedFingerprints = 50;  // /metrics: the top by total time

uint64_t Quantile(const observe::HistogramTotals& h, double q) {
  const uint64_t n = h.Count();
  if (n == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n - 1)) + 1;
  uint64_t seen = 0;
  for (int i = 0; i < observe::Histogram::kBuckets; ++i) {
    seen += h.buckets[i];
    if (seen >= rank) return observe::Histogram::UpperBoundMicros(i);
  }
  return 0;
}

}  // namespace

std::string Hex(uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof(b), "%016llx", static_cast<unsigned long long>(v));
  return b;
}

std::vector<std::pair<uint64_t, MergedQuery>> MergeQueries(const Service::Impl& impl) {
  std::unordered_map<uint64_t, MergedQuery> all;
  for (const auto& w : impl.workers) {
    std::lock_guard lock(w->stats_mu);
    for (const auto& [fp, q] : w->queries) {
      MergedQuery& m = all[fp];
      if (m.text.empty()) m.text = q->text;
      m.calls += q->calls;
      m.errors += q->errors;
      m.rows += q->rows;
      m.total_us += q->total_us;
      m.latency.Add(q->latency);
    }
  }
  std::vector<std::pair<uint64_t, MergedQuery>> v(all.begin(), all.end());
  std::sort(v.begin(), v.end(),
            [](const auto& a, const auto& b) { return a.second.total_us > b.second.total_us; });
  return v;
}

void WorkerState::Learn(uint64_t fp, const std::string& normalized) {
  if (queries.count(fp)) return;  // read on the owner thread: no lock needed
  std::lock_guard lock(stats_mu);
  if (queries.size() >= kMaxFingerprints) {
    ++dropped_fingerprints;
    return;
  }
  auto q = std::make_unique<QueryStats>();
  q->text = normalized;
  queries.emplace(fp, std::move(q));
}

void WorkerState::RecordQuery(const Pending& p, uint64_t micros, std::string_view db,
                              std::string_view user, Service::Impl& impl) {
  auto it = queries.find(p.fingerprint);
  if (it == queries.end()) return;
  QueryStats& q = *it->second;
  const int64_t slow_us = impl.Config()->postgres.slow_query.count() * 1000;
  {
    std::lock_guard lock(stats_mu);
    ++q.calls;
    q.errors += p.error;
    q.rows += p.rows;
    q.total_us += micros;
    if (micros >= static_cast<uint64_t>(slow_us)) {
      if (slow.size() >= kMaxSlow) slow.pop_front();
      slow.push_back({static_cast<int64_t>(std::time(nullptr)) * 1000, micros, std::string(db),
                      std::string(user), q.text, p.trace});
    }
  }
  // The trace's queries go to the join with the HTTP routes (a ring: no lock, no allocation).
  if (p.trace.size() == 32) impl.join->Note(id, p.trace, p.fingerprint, micros);
  q.latency.Record(micros);
}

}  // namespace ficus::pg::internal

namespace ficus::pg {

using internal::Pool;

void Service::Collect(observe::MetricWriter& w) const {
  Impl& impl = *impl_;
  std::vector<std::shared_ptr<Pool>> pools;
  {
    std::lock_guard lock(impl.mu);
    for (const auto& [k, p] : impl.pools) pools.push_back(p);
  }
  const auto& s = impl.stats;
  w.Family("ficus_pg_clients_active", "gauge", "PostgreSQL clients connected to ficus.");
  w.GaugeSample("ficus_pg_clients_active", {}, s.clients_active.load());
  w.Family("ficus_pg_clients_accepted_total", "counter", "PostgreSQL client connections accepted.");
  w.Sample("ficus_pg_clients_accepted_total", {}, s.clients_accepted.load());
  w.Family("ficus_pg_tls_clients_total", "counter",
           "PostgreSQL clients that logged in over TLS (handshake done).");
  w.Sample("ficus_pg_tls_clients_total", {}, s.tls_clients.load());
  w.Family("ficus_pg_tls_handshake_failures_total", "counter",
           "TLS handshakes with PostgreSQL clients that failed.");
  w.Sample("ficus_pg_tls_handshake_failures_total", {}, s.tls_handshake_failures.load());
  w.Family("ficus_pg_login_failures_total", "counter",
           "Client logins refused (authentication, unknown database).");
  w.Sample("ficus_pg_login_failures_total", {}, s.login_failures.load());
  w.Family("ficus_pg_protocol_errors_total", "counter",
           "Malformed or oversized client messages (answered with an error, then closed).");
  w.Sample("ficus_pg_protocol_errors_total", {}, s.protocol_errors.load());
  w.Family("ficus_pg_cancels_total", "counter", "Cancel requests received, and forwarded.");
  w.Sample("ficus_pg_cancels_total", {{"result", "received"}}, s.cancels.load());
  w.Sample("ficus_pg_cancels_total", {{"result", "forwarded"}}, s.cancels_forwarded.load());
  w.Family("ficus_pg_paused", "gauge", "1 while the proxy is paused (ficus pg pause).");
  w.GaugeSample("ficus_pg_paused", {}, impl.paused.load() ? 1 : 0);
  {
    std::lock_guard lock(impl.stats.pinned_mu);
    w.Family("ficus_pg_pinned_total", "counter",
             "Transaction-mode clients pinned to their server for the session, by the session "
             "state they set.");
    for (const auto& [reason, n] : s.pinned)
      w.Sample("ficus_pg_pinned_total", {{"reason", reason}}, n);
  }
  auto gauge = [&](const char* name, const char* help, auto get) {
    w.Family(name, "gauge", help);
    for (const auto& p : pools) w.GaugeSample(name, {{"pool", p->name}}, get(*p));
  };
  auto counter = [&](const char* name, const char* help, auto get) {
    w.Family(name, "counter", help);
    for (const auto& p : pools) w.Sample(name, {{"pool", p->name}}, get(*p));
  };
  gauge("ficus_pg_pool_clients", "Clients logged in to the pool.",
        [](const Pool& p) { return p.clients.load(); });
  gauge("ficus_pg_pool_clients_waiting", "Clients waiting for a server connection.",
        [](const Pool& p) { return int64_t{p.waiting.load()}; });
  gauge("ficus_pg_pool_servers_open", "Server connections open or opening (bounded by pool_size).",
        [](const Pool& p) { return int64_t{p.open.load()}; });
  gauge("ficus_pg_pool_servers_active", "Server connections serving a client.",
        [](const Pool& p) { return p.servers_active.load(); });
  gauge("ficus_pg_pool_servers_idle", "Server connections idle in the pool.",
        [](const Pool& p) { return p.servers_idle.load(); });
  gauge("ficus_pg_pool_size", "The pool's configured size.",
        [](const Pool& p) { return int64_t{p.db.pool_size}; });
  counter("ficus_pg_pool_waits_total", "Clients that had to wait for a server connection.",
          [](const Pool& p) { return p.waits.load(); });
  counter("ficus_pg_pool_wait_timeouts_total", "Waits that ended at wait_timeout (57014).",
          [](const Pool& p) { return p.wait_timeouts.load(); });
  counter("ficus_pg_pool_wait_rejected_total",
          "Clients refused because max_waiting were waiting (53300).",
          [](const Pool& p) { return p.wait_full.load(); });
  w.Family("ficus_pg_pool_wait_seconds_total", "counter", "Time clients spent waiting.");
  for (const auto& p : pools)
    w.DoubleSample("ficus_pg_pool_wait_seconds_total", {{"pool", p->name}},
                   static_cast<double>(p->wait_micros.load()) / 1e6);
  counter("ficus_pg_pool_transactions_total",
          "Server connections given back (transactions in transaction mode, sessions otherwise).",
          [](const Pool& p) { return p.transactions.load(); });
  counter("ficus_pg_pool_server_connects_total", "Server connections opened.",
          [](const Pool& p) { return p.server_connects.load(); });
  counter("ficus_pg_pool_server_connect_failures_total", "Server connections that failed.",
          [](const Pool& p) { return p.connect_failures.load(); });
  internal::CollectServers(impl, w);  // replicas.cc: ficus_pg_server_*

  auto merged = internal::MergeQueries(impl);
  if (merged.size() > internal::kExportedFingerprints)
    merged.resize(internal::kExportedFingerprints);
  w.Family("ficus_pg_query_calls_total", "counter",
           "Queries by normalised fingerprint (the top 50 by total time; GET /pg has them all).");
  for (const auto& [fp, m] : merged)
    w.Sample("ficus_pg_query_calls_total", {{"fingerprint", internal::Hex(fp)}}, m.calls);
  w.Family("ficus_pg_query_errors_total", "counter", "Queries that ended in an error.");
  for (const auto& [fp, m] : merged)
    w.Sample("ficus_pg_query_errors_total", {{"fingerprint", internal::Hex(fp)}}, m.errors);
  w.Family("ficus_pg_query_rows_total", "counter", "Rows returned or affected.");
  for (const auto& [fp, m] : merged)
    w.Sample("ficus_pg_query_rows_total", {{"fingerprint", internal::Hex(fp)}}, m.rows);
  w.Family("ficus_pg_query_duration_seconds", "histogram",
           "Query time through ficus (request sent to the server to its completion).");
  for (const auto& [fp, m] : merged)
    w.HistogramSeries("ficus_pg_query_duration_seconds", {{"fingerprint", internal::Hex(fp)}},
                      m.latency);
  impl.join->Collect(w);
}

std::string Service::StatusJson() const {
  Impl& impl = *impl_;
  JsonWriter j;
  j.BeginObject();
  j.Key("paused").Bool(impl.paused.load());
  j.Key("pools").BeginArray();
  {
    std::lock_guard lock(impl.mu);
    for (const auto& [k, p] : impl.pools) {
      j.BeginObject();
      j.Key("pool").String(p->name);
      j.Key("mode").String(p->db.pool_mode == config::PgPoolMode::kSession ? "session"
                                                                           : "transaction");
      j.Key("pool_size").Uint(p->db.pool_size);
      j.Key("clients").Int(p->clients.load());
      j.Key("waiting").Int(p->waiting.load());
      j.Key("servers_open").Int(p->open.load());
      j.Key("servers_active").Int(p->servers_active.load());
      j.Key("servers_idle").Int(p->servers_idle.load());
      j.Key("wait_timeouts").Uint(p->wait_timeouts.load());
      j.Key("pinned").Uint(p->pinned.load());
      j.EndObject();
    }
  }
  j.EndArray();
  j.Key("servers");
  internal::WriteServersJson(impl, j);  // replicas.cc: health, lag, routed transactions
  j.Key("queries").BeginArray();
  const auto merged = internal::MergeQueries(impl);
  for (const auto& [fp, m] : merged) {
    j.BeginObject();
    j.Key("fingerprint").String(internal::Hex(fp));
    j.Key("query").String(m.text);
    j.Key("calls").Uint(m.calls);
    j.Key("errors").Uint(m.errors);
    j.Key("rows").Uint(m.rows);
    j.Key("total_ms").Number(static_cast<double>(m.total_us) / 1000, 3);
    j.Key("p50_ms").Number(static_cast<double>(internal::Quantile(m.latency, 0.5)) / 1000, 3);
    j.Key("p99_ms").Number(static_cast<double>(internal::Quantile(m.latency, 0.99)) / 1000, 3);
    j.EndObject();
  }
  j.EndArray();
  j.Key("slow").BeginArray();
  for (const auto& w : impl.workers) {
    std::lock_guard lock(w->stats_mu);
    for (const auto& s : w->slow) {
      j.BeginObject();
      j.Key("at_ms").Int(s.at_ms);
      j.Key("ms").Number(static_cast<double>(s.micros) / 1000, 3);
      j.Key("database").String(s.database);
      j.Key("user").String(s.user);
      j.Key("query").String(s.text);
      if (!s.trace.empty()) j.Key("trace_id").String(s.trace);
      j.EndObject();
    }
  }
  j.EndArray();
  // Per trace (the sqlcommenter traceparent of the queries) and per HTTP route they joined.
  impl.join->WriteJson(j);
  j.EndObject();
  return j.Take();
}

}  // namespace ficus::pg
