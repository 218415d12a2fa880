// The report's database section: the PostgreSQL proxy's minute rows for the period, the
// findings they support (N+1 per route, the database's share of a route, pool saturation) and
// their renderings.
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

std::string Cut(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

void Findings(const Db& db, std::vector<Finding>& out) {
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
        n.fingerprint.c_str(), Cut(n.text, 80).c_str(), n.mean_repeats,
        static_cast<unsigned long long>(n.max_repeats));
    f.remedy = Format(
        "batch query %s on route %s: fetch the rows for all the keys in one query (`WHERE id = "
        "ANY($1)` or `IN (...)`) before the loop, or eager-load the association in the ORM (a "
        "JOIN or a preload) instead of one query per item",
        n.fingerprint.c_str(), n.route.c_str());
    f.impact = n.mean_repeats >= 20 ? 3 : 2;
    f.likelihood = 3;
    out.push_back(std::move(f));
  }
  for (const Db::Route& r : db.routes) {
    if (r.requests < kMinRequests || r.db_share < kDbShareTrigger) continue;
    Finding f;
    f.kind = "db.share";
    f.route = r.route;
    f.summary = Format(
        "the database takes %.0f%% of the time answering this route (%.1f queries per "
        "request)",
        r.db_share * 100, r.queries_per_request);
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
  std::vector<Finding> found;
  Findings(db, found);
  if (found.empty()) return;
  r.findings.insert(r.findings.end(), found.begin(), found.end());
  std::stable_sort(r.findings.begin(), r.findings.end(), [](const Finding& a, const Finding& b) {
    return a.impact * a.likelihood > b.impact * b.likelihood;
  });
}

std::string DatabaseText(const Report& r) {
  const Db& db = r.database;
  if (db.empty()) return "";
  std::string o = "\nDatabase (PostgreSQL through ficus)\n";
  o += "  Queries by total time\n";
  o += Format("    %-16s %9s %10s %8s %8s %6s  %s\n", "fingerprint", "calls", "total ms", "mean ms",
              "p99 ms", "share", "query");
  for (const auto& q : db.top)
    o += Format("    %-16s %9llu %10.1f %8.2f %8.1f %5.1f%%  %s\n", q.fingerprint.c_str(),
                static_cast<unsigned long long>(q.calls), q.total_ms, q.mean_ms, q.p99_ms,
                q.time_share * 100, Cut(q.text, 70).c_str());
  if (!db.routes.empty()) {
    o += "  Per HTTP route (queries joined by their sqlcommenter trace id)\n";
    o += Format("    %-16s %9s %8s %10s %9s\n", "route", "requests", "q/req", "p90 q/req",
                "db share");
    for (const auto& x : db.routes)
      o += Format("    %-16s %9llu %8.1f %10.0f %8.1f%%\n", x.route.c_str(),
                  static_cast<unsigned long long>(x.requests), x.queries_per_request, x.p90_queries,
                  x.db_share * 100);
  }
  for (const auto& n : db.n_plus_one)
    o += Format("  N+1: route %s ran %s %.1f times per request in %llu of %llu requests: %s\n",
                n.route.c_str(), n.fingerprint.c_str(), n.mean_repeats,
                static_cast<unsigned long long>(n.requests),
                static_cast<unsigned long long>(n.of_requests), Cut(n.text, 70).c_str());
  if (!db.pools.empty()) {
    o += "  Pools\n";
    o += Format("    %-22s %5s %9s %8s %8s %8s %12s\n", "pool", "size", "peak open", "waits",
                "timeouts", "refused", "mean wait ms");
    for (const auto& p : db.pools)
      o += Format("    %-22s %5lld %9lld %8llu %8llu %8llu %12.1f\n", p.pool.c_str(),
                  static_cast<long long>(p.pool_size), static_cast<long long>(p.peak_open),
                  static_cast<unsigned long long>(p.waits),
                  static_cast<unsigned long long>(p.wait_timeouts),
                  static_cast<unsigned long long>(p.wait_rejected), p.mean_wait_ms);
  }
  return o;
}

std::string DatabaseMarkdown(const Report& r) {
  const Db& db = r.database;
  if (db.empty()) return "";
  auto md = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (c == '|') o += '\\';
      o += c == '`' ? '\'' : c;
    }
    return o;
  };
  std::string o =
      "\n## Database\n\n### Queries by total time\n\n"
      "| fingerprint | calls | total ms | mean ms | p99 ms | share | query |\n"
      "| --- | ---: | ---: | ---: | ---: | ---: | --- |\n";
  for (const auto& q : db.top)
    o += Format("| %s | %llu | %.1f | %.2f | %.1f | %.1f%% | `%s` |\n", q.fingerprint.c_str(),
                static_cast<unsigned long long>(q.calls), q.total_ms, q.mean_ms, q.p99_ms,
                q.time_share * 100, md(Cut(q.text, 100)).c_str());
  if (!db.routes.empty()) {
    o += "\n### Per HTTP route\n\n| route | requests | queries/request | p90 | database share |\n"
         "| --- | ---: | ---: | ---: | ---: |\n";
    for (const auto& x : db.routes)
      o += Format("| %s | %llu | %.1f | %.0f | %.1f%% |\n", md(x.route).c_str(),
                  static_cast<unsigned long long>(x.requests), x.queries_per_request, x.p90_queries,
                  x.db_share * 100);
  }
  if (!db.n_plus_one.empty()) {
    o += "\n### N+1\n\n| route | fingerprint | requests | times per request | query |\n"
         "| --- | --- | ---: | ---: | --- |\n";
    for (const auto& n : db.n_plus_one)
      o += Format("| %s | %s | %llu of %llu | %.1f (max %llu) | `%s` |\n", md(n.route).c_str(),
                  n.fingerprint.c_str(), static_cast<unsigned long long>(n.requests),
                  static_cast<unsigned long long>(n.of_requests), n.mean_repeats,
                  static_cast<unsigned long long>(n.max_repeats), md(Cut(n.text, 100)).c_str());
  }
  if (!db.pools.empty()) {
    o += "\n### Pools\n\n| pool | size | peak open | waits | timeouts | refused | mean wait ms |\n"
         "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for (const auto& p : db.pools)
      o += Format("| %s | %lld | %lld | %llu | %llu | %llu | %.1f |\n", md(p.pool).c_str(),
                  static_cast<long long>(p.pool_size), static_cast<long long>(p.peak_open),
                  static_cast<unsigned long long>(p.waits),
                  static_cast<unsigned long long>(p.wait_timeouts),
                  static_cast<unsigned long long>(p.wait_rejected), p.mean_wait_ms);
  }
  return o;
}

std::string DatabaseJson(const Report& r) {
  const Db& db = r.database;
  JsonWriter w;
  w.BeginObject();
  w.Key("queries").BeginArray();
  for (const auto& q : db.top) {
    w.BeginObject().Key("fingerprint").String(q.fingerprint).Key("query").String(q.text);
    w.Key("calls").Uint(q.calls).Key("errors").Uint(q.errors).Key("rows").Uint(q.rows);
    w.Key("total_ms").Number(q.total_ms, 3).Key("mean_ms").Number(q.mean_ms, 3);
    w.Key("p99_ms").Number(q.p99_ms, 3).Key("time_share").Number(q.time_share, 4);
    w.EndObject();
  }
  w.EndArray().Key("routes").BeginArray();
  for (const auto& x : db.routes) {
    w.BeginObject().Key("route").String(x.route).Key("requests").Uint(x.requests);
    w.Key("requests_with_queries").Uint(x.with_queries).Key("queries").Uint(x.queries);
    w.Key("queries_per_request").Number(x.queries_per_request, 3);
    w.Key("p90_queries_per_request").Number(x.p90_queries, 0);
    w.Key("db_share").Number(x.db_share, 4);
    w.Key("queries_per_request_buckets").BeginArray();
    for (size_t i = 0; i < x.queries_per_request_buckets.size(); ++i) {
      w.BeginObject();
      if (i < telemetry::kQueriesPerRequest.size()) {
        w.Key("le").Uint(telemetry::kQueriesPerRequest[i]);
      } else {
        w.Key("le").String("+Inf");
      }
      w.Key("requests").Uint(x.queries_per_request_buckets[i]).EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().Key("n_plus_one").BeginArray();
  for (const auto& n : db.n_plus_one) {
    w.BeginObject().Key("route").String(n.route).Key("fingerprint").String(n.fingerprint);
    w.Key("query").String(n.text).Key("requests").Uint(n.requests);
    w.Key("of_requests").Uint(n.of_requests).Key("mean_repeats").Number(n.mean_repeats, 2);
    w.Key("max_repeats").Uint(n.max_repeats).EndObject();
  }
  w.EndArray().Key("pools").BeginArray();
  for (const auto& p : db.pools) {
    w.BeginObject().Key("pool").String(p.pool).Key("pool_size").Int(p.pool_size);
    w.Key("peak_open").Int(p.peak_open).Key("peak_waiting").Int(p.peak_waiting);
    w.Key("waits").Uint(p.waits).Key("wait_timeouts").Uint(p.wait_timeouts);
    w.Key("wait_rejected").Uint(p.wait_rejected).Key("mean_wait_ms").Number(p.mean_wait_ms, 3);
    w.EndObject();
  }
  w.EndArray().EndObject();
  return "\"database\":" + w.Take();
}

std::string DatabaseHtml(const Report& r) {
  const Db& db = r.database;
  if (db.empty()) return "";
  std::string o =
      "<section id=\"database\"><h2>Database</h2><h3>Queries by total time</h3><table><tr>"
      "<th>fingerprint</th><th>calls</th><th>total ms</th><th>mean ms</th><th>p99 ms</th>"
      "<th>share</th><th>query</th></tr>";
  for (const auto& q : db.top)
    o += Format(
        "<tr><td>%s</td><td>%llu</td><td>%.1f</td><td>%.2f</td><td>%.1f</td><td>%.1f%%</td>"
        "<td><code>%s</code></td></tr>",
        q.fingerprint.c_str(), static_cast<unsigned long long>(q.calls), q.total_ms, q.mean_ms,
        q.p99_ms, q.time_share * 100, HtmlEscape(Cut(q.text, 160)).c_str());
  o += "</table>";
  if (!db.routes.empty()) {
    o += "<h3>Per HTTP route</h3><table><tr><th>route</th><th>requests</th><th>queries per "
         "request</th><th>p90</th><th>database share</th></tr>";
    for (const auto& x : db.routes)
      o += Format("<tr><td>%s</td><td>%llu</td><td>%.1f</td><td>%.0f</td><td>%.1f%%</td></tr>",
                  HtmlEscape(x.route).c_str(), static_cast<unsigned long long>(x.requests),
                  x.queries_per_request, x.p90_queries, x.db_share * 100);
    o += "</table>";
  }
  if (!db.n_plus_one.empty()) {
    o += "<h3>N+1</h3><table><tr><th>route</th><th>fingerprint</th><th>requests</th><th>times "
         "per request</th><th>query</th></tr>";
    for (const auto& n : db.n_plus_one)
      o += Format(
          "<tr><td>%s</td><td>%s</td><td>%llu of %llu</td><td>%.1f (max %llu)</td><td><code>%s"
          "</code></td></tr>",
          HtmlEscape(n.route).c_str(), n.fingerprint.c_str(),
          static_cast<unsigned long long>(n.requests),
          static_cast<unsigned long long>(n.of_requests), n.mean_repeats,
          static_cast<unsigned long long>(n.max_repeats), HtmlEscape(Cut(n.text, 160)).c_str());
    o += "</table>";
  }
  if (!db.pools.empty()) {
    o += "<h3>Pools</h3><table><tr><th>pool</th><th>size</th><th>peak open</th><th>waits</th>"
         "<th>timeouts</th><th>refused</th><th>mean wait ms</th></tr>";
    for (const auto& p : db.pools)
      o += Format(
          "<tr><td>%s</td><td>%lld</td><td>%lld</td><td>%llu</td><td>%llu</td><td>%llu</td>"
          "<td>%.1f</td></tr>",
          HtmlEscape(p.pool).c_str(), static_cast<long long>(p.pool_size),
          static_cast<long long>(p.peak_open), static_cast<unsigned long long>(p.waits),
          static_cast<unsigned long long>(p.wait_timeouts),
          static_cast<unsigned long long>(p.wait_rejected), p.mean_wait_ms);
    o += "</table>";
  }
  return o + "</section>\n";
}

}  // namespace ficus::advisor::internal
