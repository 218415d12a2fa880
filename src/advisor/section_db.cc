// The report's database section: the PostgreSQL proxy's minute rows for the period and the
// findings they support (N+1 per route with its remedies, a heavy query whose plan lacks an
// index, the database's share of a route, pool saturation). Renderings: section_db_format.cc.
#include "advisor/internal/section_db.h"

#include <algorithm>

#include "advisor/internal/rules.h"
#include "base/json.h"
#include "base/text.h"

namespace ficus::advisor::internal {
namespace {

using Db = DatabaseReport;

std::string Hex(uint64_t v) { return Format("%016llx", static_cast<unsigned long long>(v)); }

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

// The bound of the bucket that holds the q-quantile of the queries per request.
double QuantileBound(const std::vector<uint64_t>& buckets, double q) {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  if (n == 0) return 0;
  const double rank = q * static_cast<double>(n);
  uint64_t seen = 0;
  const auto& bounds = telemetry::kQueriesPerRequest;
  for (size_t i = 0; i < buckets.size(); ++i) {
    seen += buckets[i];
    if (static_cast<double>(seen) >= rank) return i < bounds.size() ? bounds[i] : 1000;
  }
  return 1000;
}

// The index advice of a plan as a remedy: each statement with why.
std::string IndexRemedy(const Db::Plan& p) {
  std::string o;
  for (const Db::Index& i : p.indexes) {
    if (!o.empty()) o += "; ";
    o += "`" + i.statement + "` (" + i.reason + ")";
  }
  return o;
}

// The route answers GETs whose bodies repeat (the cache finding's test): a cache in front of it
// runs its queries once per freshness period.
const RouteReport* CacheableRoute(const Report& r, const std::string& route) {
  for (const RouteReport& rr : r.routes) {
    if (rr.name != route) continue;
    if (!rr.reads || !rr.repeat_ratio || *rr.repeat_ratio < kCacheableRepeat) return nullptr;
    for (const CacheReport& c : r.caches)
      if (c.route == route) return nullptr;  // cached already
    return &rr;
  }
  return nullptr;
}

// The databases with a replica (their provably read-only transactions can go there).
std::string DatabasesWithReplicas(const Db& db) {
  std::string o;
  for (const Db::Server& s : db.servers) {
    if (s.primary || o.find(s.database) != std::string::npos) continue;
    o += (o.empty() ? "" : ", ") + s.database;
  }
  return o;
}

void Findings(const Report& r, std::vector<Finding>& out) {
  const Db& db = r.database;
  const std::string replicated = DatabasesWithReplicas(db);
  for (const Db::NPlusOne& n : db.n_plus_one) {
    if (n.requests < kNPlusOneMinRequests ||
        Ratio(static_cast<double>(n.requests), static_cast<double>(n.of_requests)) <
            kNPlusOneMinShare)
      continue;
    Finding f;
    f.kind = "db.n_plus_one";
    f.route = n.route;
    f.summary = Format(
        "%llu of %llu requests ran the query %s (`%s`) %.1f times each on average (at most "
        "%llu): an N+1 pattern",
        static_cast<unsigned long long>(n.requests), static_cast<unsigned long long>(n.of_requests),
        n.fingerprint.c_str(), CutText(n.text, 80).c_str(), n.mean_repeats,
        static_cast<unsigned long long>(n.max_repeats));
    f.remedy = Format(
        "batch query %s on route %s: fetch the rows for all the keys in one query (`WHERE id = "
        "ANY($1)` or `IN (...)`) before the loop, or eager-load the association in the ORM (a "
        "JOIN or a preload) instead of one query per item",
        n.fingerprint.c_str(), n.route.c_str());
    if (const Db::Plan* p = db.PlanOf(n.fingerprint); p && !p->indexes.empty())
      f.remedy += "; each run reads the table without an index, add it: " + IndexRemedy(*p);
    if (const RouteReport* rr = CacheableRoute(r, n.route))
      f.remedy += Format(
          "; the route is a GET whose answers repeat (%.0f%% of sampled responses): cache its "
          "result (`cache:` on route %s) and these queries run once per freshness period",
          *rr->repeat_ratio * 100, n.route.c_str());
    if (!replicated.empty() && (n.text.starts_with("select ") || n.text.starts_with("with ")))
      f.remedy +=
          "; it is a read: with transaction pooling its read-only transactions go to a "
          "replica of " +
          replicated + " (or declare them BEGIN READ ONLY)";
    f.impact = n.mean_repeats >= 20 ? 3 : 2;
    f.likelihood = 3;
    out.push_back(std::move(f));
  }
  for (const Db::Query& q : db.top) {
    const Db::Plan* p = db.PlanOf(q.fingerprint);
    if (!p || p->indexes.empty() || q.time_share < kIndexTimeShare) continue;
    if (std::any_of(db.n_plus_one.begin(), db.n_plus_one.end(),
                    [&](const Db::NPlusOne& n) { return n.fingerprint == q.fingerprint; }))
      continue;  // its N+1 finding names the index
    Finding f;
    f.kind = "db.index";
    f.route = q.fingerprint;
    f.summary = Format(
        "query %s (`%s`) took %.0f%% of the database's time (%llu calls, %.2f ms on average) "
        "and its plan reads a table without an index",
        q.fingerprint.c_str(), CutText(q.text, 80).c_str(), q.time_share * 100,
        static_cast<unsigned long long>(q.calls), q.mean_ms);
    f.remedy = "add the index (CONCURRENTLY builds it without blocking writes): " + IndexRemedy(*p);
    f.impact = q.time_share >= 0.3 ? 3 : 2;
    f.likelihood = 3;
    out.push_back(std::move(f));
  }
  for (const Db::Route& x : db.routes) {
    if (x.requests < kMinRequests || x.db_share < kDbShareTrigger) continue;
    Finding f;
    f.kind = "db.share";
    f.route = x.route;
    f.summary = Format(
        "the database takes %.0f%% of the time answering this route (%.1f queries per "
        "request)",
        x.db_share * 100, x.queries_per_request);
    f.remedy =
        "the route waits on its queries: cache its result if it is a read (`cache:` on the "
        "route), send its reads to a replica, and look at the plan of its slowest query "
        "(EXPLAIN: a missing index on the filtered columns is the usual cause)";
    f.impact = 2;
    f.likelihood = 2;
    out.push_back(std::move(f));
  }
  for (const Db::Pool& p : db.pools) {
    const bool refused = p.wait_timeouts + p.wait_rejected > 0;
    if (!refused && !(p.waits > 0 && p.mean_wait_ms >= kPoolWaitTriggerMs)) continue;
    Finding f;
    f.kind = "db.pool";
    f.route = p.pool;
    f.summary = Format(
        "%llu clients waited for a server connection (%.1f ms on average), %llu timed out and "
        "%llu were refused; at peak %lld waited with %lld of %lld server connections open",
        static_cast<unsigned long long>(p.waits), p.mean_wait_ms,
        static_cast<unsigned long long>(p.wait_timeouts),
        static_cast<unsigned long long>(p.wait_rejected), static_cast<long long>(p.peak_waiting),
        static_cast<long long>(p.peak_open), static_cast<long long>(p.pool_size));
    f.remedy =
        "the pool is saturated: keep transactions short (transaction mode gives the server "
        "connection back at each commit), raise the pool's pool_size within the server's "
        "max_connections, or move reads to a replica";
    const std::string db_name = p.pool.substr(0, p.pool.find('/'));
    f.snippet =
        Format("postgres:\n  databases:\n    - name: %s\n      pool_size: %lld", db_name.c_str(),
               static_cast<long long>(std::max<int64_t>(2, p.pool_size * 2)));
    f.in_ficus = true;
    f.impact = refused ? 3 : 2;
    f.likelihood = refused ? 3 : 2;
    out.push_back(std::move(f));
  }
}

}  // namespace

std::string CutText(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

void AnalyzeDatabase(telemetry::Store& store, int64_t from_ms, int64_t to_ms, Report& r) {
  const telemetry::DbRollup rows = store.Db(from_ms, to_ms);
  Db& db = r.database;
  double all_us = 0;
  for (const auto& q : rows.queries) all_us += static_cast<double>(q.total_us);
  std::vector<const telemetry::DbQuery*> by_time;
  for (const auto& q : rows.queries) by_time.push_back(&q);
  std::sort(by_time.begin(), by_time.end(),
            [](const auto* a, const auto* b) { return a->total_us > b->total_us; });
  for (const auto* q : by_time) {
    if (db.top.size() >= 10) break;
    Db::Query x;
    x.fingerprint = Hex(q->fingerprint);
    x.text = q->text;
    x.calls = q->calls;
    x.errors = q->errors;
    x.rows = q->rows;
    x.total_ms = static_cast<double>(q->total_us) / 1000;
    x.mean_ms = Ratio(x.total_ms, static_cast<double>(q->calls));
    x.p99_ms = q->latency.PercentileMicros(0.99) / 1000;
    x.time_share = Ratio(static_cast<double>(q->total_us), all_us);
    db.top.push_back(std::move(x));
  }
  for (const auto& rt : rows.routes) {
    Db::Route x;
    x.route = rt.route;
    x.requests = rt.requests;
    x.with_queries = rt.with_queries;
    x.queries = rt.queries;
    x.queries_per_request =
        Ratio(static_cast<double>(rt.queries), static_cast<double>(rt.requests));
    x.queries_per_request_buckets.assign(rt.queries_per_request.begin(),
                                         rt.queries_per_request.end());
    x.p90_queries = QuantileBound(x.queries_per_request_buckets, 0.9);
    x.db_share = Ratio(static_cast<double>(rt.db_us), static_cast<double>(rt.request_us));
    db.routes.push_back(std::move(x));
  }
  std::sort(db.routes.begin(), db.routes.end(),
            [](const auto& a, const auto& b) { return a.queries > b.queries; });
  for (const auto& rp : rows.repeats) {
    Db::NPlusOne x;
    x.route = rp.route;
    x.fingerprint = Hex(rp.fingerprint);
    x.text = rp.text;
    x.requests = rp.requests;
    for (const auto& rt : rows.routes)
      if (rt.route == rp.route) x.of_requests = rt.requests;
    x.mean_repeats = Ratio(static_cast<double>(rp.repeats), static_cast<double>(rp.requests));
    x.max_repeats = rp.max_repeats;
    db.n_plus_one.push_back(std::move(x));
  }
  std::sort(db.n_plus_one.begin(), db.n_plus_one.end(),
            [](const auto& a, const auto& b) { return a.requests > b.requests; });
  for (const auto& p : rows.pools) {
    db.pools.push_back(Db::Pool{
        p.pool, p.pool_size, p.peak_waiting, p.peak_open, p.waits, p.wait_timeouts, p.wait_rejected,
        Ratio(static_cast<double>(p.wait_us) / 1000, static_cast<double>(p.waits))});
  }
  for (const telemetry::DbPlan& p : store.DbPlans(from_ms, to_ms)) {
    Db::Plan x;
    x.fingerprint = Hex(p.fingerprint);
    x.text = p.text;
    x.total_cost = p.total_cost;
    x.at_ms = p.ts_ms;
    for (const auto& i : p.indexes)
      x.indexes.push_back({i.table, i.columns, i.statement, i.reason});
    db.plans.push_back(std::move(x));
  }
  for (const auto& s : rows.servers) {
    Db::Server x;
    x.database = s.database;
    x.server = s.server;
    x.primary = s.primary;
    x.down_share = Ratio(static_cast<double>(s.down), static_cast<double>(s.samples));
    x.max_lag_ms = s.max_lag_ms;
    x.mean_lag_ms =
        s.lag_samples ? static_cast<double>(s.lag_sum_ms) / static_cast<double>(s.lag_samples) : -1;
    x.checks_failed = s.checks_failed;
    db.servers.push_back(std::move(x));
  }
  std::vector<Finding> found;
  Findings(r, found);
  if (found.empty()) return;
  r.findings.insert(r.findings.end(), found.begin(), found.end());
  std::stable_sort(r.findings.begin(), r.findings.end(), [](const Finding& a, const Finding& b) {
    return a.impact * a.likelihood > b.impact * b.likelihood;
  });
}

}  // namespace ficus::advisor::internal
