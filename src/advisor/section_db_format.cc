// The report's database section rendered in each format (the facts: section_db.cc).
#include <algorithm>

#include "advisor/internal/section_db.h"
#include "base/json.h"
#include "base/text.h"

namespace ficus::advisor::internal {

namespace {
using Db = DatabaseReport;
std::string Cut(const std::string& s, size_t n) { return CutText(s, n); }
std::string Lag(int64_t ms) { return ms < 0 ? "-" : Format("%lld", static_cast<long long>(ms)); }
std::string MeanLag(double ms) { return ms < 0 ? "-" : Format("%.0f", ms); }
std::string Role(const Db::Server& s) { return s.primary ? "primary" : "replica"; }
}  // namespace

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
  for (const auto& p : db.plans)
    for (const auto& i : p.indexes)
      o += Format("  Index for %s (%s): %s\n    %s\n", p.fingerprint.c_str(),
                  Cut(p.text, 60).c_str(), i.statement.c_str(), i.reason.c_str());
  if (!db.servers.empty()) {
    o += "  Servers\n";
    o += Format("    %-12s %-22s %-8s %6s %12s %13s %8s\n", "database", "server", "role", "down",
                "max lag ms", "mean lag ms", "failed");
    for (const auto& s : db.servers)
      o += Format("    %-12s %-22s %-8s %5.1f%% %12s %13s %8llu\n", s.database.c_str(),
                  s.server.c_str(), Role(s).c_str(), s.down_share * 100, Lag(s.max_lag_ms).c_str(),
                  MeanLag(s.mean_lag_ms).c_str(), static_cast<unsigned long long>(s.checks_failed));
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
  bool any_index = false;
  for (const auto& p : db.plans) any_index = any_index || !p.indexes.empty();
  if (any_index) {
    o += "\n### Indexes the plans lack\n\n| fingerprint | query | index | why |\n"
         "| --- | --- | --- | --- |\n";
    for (const auto& p : db.plans)
      for (const auto& i : p.indexes)
        o += Format("| %s | `%s` | `%s` | %s |\n", p.fingerprint.c_str(),
                    md(Cut(p.text, 100)).c_str(), md(i.statement).c_str(), md(i.reason).c_str());
  }
  if (!db.servers.empty()) {
    o += "\n### Servers\n\n| database | server | role | down | max lag ms | mean lag ms | "
         "failed checks |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n";
    for (const auto& s : db.servers)
      o += Format("| %s | %s | %s | %.1f%% | %s | %s | %llu |\n", md(s.database).c_str(),
                  md(s.server).c_str(), Role(s).c_str(), s.down_share * 100,
                  Lag(s.max_lag_ms).c_str(), MeanLag(s.mean_lag_ms).c_str(),
                  static_cast<unsigned long long>(s.checks_failed));
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
  w.EndArray().Key("plans").BeginArray();
  for (const auto& p : db.plans) {
    w.BeginObject().Key("fingerprint").String(p.fingerprint).Key("query").String(p.text);
    w.Key("total_cost").Number(p.total_cost, 6).Key("captured_ms").Int(p.at_ms);
    w.Key("indexes").BeginArray();
    for (const auto& i : p.indexes) {
      w.BeginObject().Key("table").String(i.table).Key("columns").BeginArray();
      for (const std::string& c : i.columns) w.String(c);
      w.EndArray().Key("statement").String(i.statement).Key("reason").String(i.reason);
      w.EndObject();
    }
    w.EndArray().EndObject();
  }
  w.EndArray().Key("servers").BeginArray();
  for (const auto& s : db.servers) {
    w.BeginObject().Key("database").String(s.database).Key("server").String(s.server);
    w.Key("role").String(Role(s)).Key("down_share").Number(s.down_share, 4);
    w.Key("max_lag_ms");
    if (s.max_lag_ms < 0) {
      w.Null();
    } else {
      w.Int(s.max_lag_ms);
    }
    w.Key("mean_lag_ms");
    if (s.mean_lag_ms < 0) {
      w.Null();
    } else {
      w.Number(s.mean_lag_ms, 4);
    }
    w.Key("checks_failed").Uint(s.checks_failed).EndObject();
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
  bool any_index = false;
  for (const auto& p : db.plans) any_index = any_index || !p.indexes.empty();
  if (any_index) {
    o += "<h3>Indexes the plans lack</h3><table><tr><th>fingerprint</th><th>query</th>"
         "<th>index</th><th>why</th></tr>";
    for (const auto& p : db.plans)
      for (const auto& i : p.indexes)
        o += Format(
            "<tr><td>%s</td><td><code>%s</code></td><td><code>%s</code></td><td>%s</td>"
            "</tr>",
            p.fingerprint.c_str(), HtmlEscape(Cut(p.text, 160)).c_str(),
            HtmlEscape(i.statement).c_str(), HtmlEscape(i.reason).c_str());
    o += "</table>";
  }
  if (!db.servers.empty()) {
    o += "<h3>Servers</h3><table><tr><th>database</th><th>server</th><th>role</th><th>down</th>"
         "<th>max lag ms</th><th>mean lag ms</th><th>failed checks</th></tr>";
    for (const auto& s : db.servers)
      o += Format(
          "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.1f%%</td><td>%s</td><td>%s</td><td>%llu"
          "</td></tr>",
          HtmlEscape(s.database).c_str(), HtmlEscape(s.server).c_str(), Role(s).c_str(),
          s.down_share * 100, Lag(s.max_lag_ms).c_str(), MeanLag(s.mean_lag_ms).c_str(),
          static_cast<unsigned long long>(s.checks_failed));
    o += "</table>";
  }
  return o + "</section>\n";
}

}  // namespace ficus::advisor::internal
