// The cache section of the report: per cached route, how many requests the cache answered
// without the origin (its hit ratio and the origin load it saved) and what else it did (stale
// answers, revalidations, coalesced waiters, bypasses).
#include "advisor/internal/section_cache.h"

#include <algorithm>

#include "base/json.h"
#include "base/text.h"

namespace ficus::advisor {
namespace internal {

std::vector<CacheReport> ReadCaches(telemetry::Store& store, int64_t from_ms, int64_t to_ms,
                                    const std::vector<RouteReport>& routes) {
  std::vector<CacheReport> out;
  const double seconds = std::max<double>(1, static_cast<double>(to_ms - from_ms) / 1000.0);
  for (telemetry::CacheCount& row : store.CacheCounts(from_ms, to_ms)) {
    CacheReport c;
    c.route = std::move(row.route);
    c.counts = row.counts;
    const telemetry::CacheCounters& n = c.counts;
    // stale-if-error answers were misses first (the origin was asked); the other stale answers
    // (stale-while-revalidate) were not, like the hits.
    const uint64_t swr = n.stale - std::min(n.stale_errors, n.stale);
    c.lookups = n.hits + swr + n.misses;
    const uint64_t coalesced = std::min(n.coalesced, n.misses);
    c.served = n.hits + swr + coalesced;
    c.origin_fetches = n.misses - coalesced;
    c.hit_ratio = c.lookups ? static_cast<double>(c.served) / static_cast<double>(c.lookups) : 0;
    c.saved_rps = static_cast<double>(c.served) / seconds;
    for (const RouteReport& rr : routes) {
      if (rr.name == c.route) c.route_requests = rr.requests;
    }
    out.push_back(std::move(c));
  }
  return out;
}

namespace {

double Pct(double ratio) { return ratio * 100.0; }

std::string U(uint64_t n) { return Format("%llu", static_cast<unsigned long long>(n)); }

}  // namespace

std::string CachesText(const Report& r) {
  if (r.caches.empty()) return "";
  std::string o =
      "\nCache (answered without the origin: fresh hits, stale-while-revalidate, coalesced)\n";
  o += Format("  %-24s %9s %10s %10s %10s %9s %8s %9s %9s %9s\n", "route", "hit ratio", "served",
              "origin", "saved r/s", "stale", "304s", "coalesced", "bypassed", "lookups");
  for (const CacheReport& c : r.caches) {
    o += Format("  %-24s %8.1f%% %10s %10s %10.2f %9s %8s %9s %9s %9s\n", c.route.c_str(),
                Pct(c.hit_ratio), U(c.served).c_str(), U(c.origin_fetches).c_str(), c.saved_rps,
                U(c.counts.stale).c_str(), U(c.counts.revalidated).c_str(),
                U(c.counts.coalesced).c_str(), U(c.counts.bypassed).c_str(), U(c.lookups).c_str());
  }
  return o;
}

std::string CachesMarkdown(const Report& r) {
  if (r.caches.empty()) return "";
  std::string o =
      "\n## Cache\n\nRequests each cached route answered without the origin (fresh hits, "
      "stale-while-revalidate, requests coalesced onto another's fetch) and the origin load that "
      "saved.\n\n| route | hit ratio | served from cache | origin fetches | origin req/s saved "
      "| stale | revalidated (304) | coalesced | bypassed | lookups |\n"
      "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const CacheReport& c : r.caches) {
    o += Format("| %s | %.1f%% | %s | %s | %.2f | %s | %s | %s | %s | %s |\n", c.route.c_str(),
                Pct(c.hit_ratio), U(c.served).c_str(), U(c.origin_fetches).c_str(), c.saved_rps,
                U(c.counts.stale).c_str(), U(c.counts.revalidated).c_str(),
                U(c.counts.coalesced).c_str(), U(c.counts.bypassed).c_str(), U(c.lookups).c_str());
  }
  return o;
}

std::string CachesJson(const Report& r) {
  JsonWriter w;
  w.BeginArray();
  for (const CacheReport& c : r.caches) {
    const telemetry::CacheCounters& n = c.counts;
    w.BeginObject().Key("route").String(c.route).Key("hit_ratio").Number(c.hit_ratio, 4);
    w.Key("served").Uint(c.served).Key("origin_fetches").Uint(c.origin_fetches);
    w.Key("saved_rps").Number(c.saved_rps, 4).Key("lookups").Uint(c.lookups);
    w.Key("route_requests").Uint(c.route_requests).Key("hits").Uint(n.hits);
    w.Key("misses").Uint(n.misses).Key("stale").Uint(n.stale);
    w.Key("stale_if_error").Uint(n.stale_errors).Key("revalidated").Uint(n.revalidated);
    w.Key("coalesced").Uint(n.coalesced).Key("bypassed").Uint(n.bypassed);
    w.EndObject();
  }
  w.EndArray();
  return "\"caches\":" + w.Take();
}

std::string CachesHtml(const Report& r) {
  if (r.caches.empty()) return "";
  std::string o =
      "<section id=\"cache\"><h2>Cache</h2><p>Requests each cached route answered without the "
      "origin (fresh hits, stale-while-revalidate, requests coalesced onto another's fetch) and "
      "the origin load that saved.</p><table><tr><th>route</th><th>hit ratio</th><th>served from "
      "cache</th><th>origin fetches</th><th>origin req/s saved</th><th>stale</th><th>revalidated "
      "(304)</th><th>coalesced</th><th>bypassed</th><th>lookups</th></tr>";
  for (const CacheReport& c : r.caches) {
    o += Format(
        "<tr><td>%s</td><td>%.1f%%</td><td>%s</td><td>%s</td><td>%.2f</td><td>%s</td><td>%s</td>"
        "<td>%s</td><td>%s</td><td>%s</td></tr>",
        HtmlEscape(c.route).c_str(), Pct(c.hit_ratio), U(c.served).c_str(),
        U(c.origin_fetches).c_str(), c.saved_rps, U(c.counts.stale).c_str(),
        U(c.counts.revalidated).c_str(), U(c.counts.coalesced).c_str(),
        U(c.counts.bypassed).c_str(), U(c.lookups).c_str());
  }
  o += "</table>";
  // Hit ratio per route: one bar a row on a 0-100 % axis.
  const int row = 24, label_w = 190, w = 640;
  const int h = static_cast<int>(r.caches.size()) * row + 8;
  o += Format(
      "<h3>Hit ratio</h3><svg id=\"chart-cache\" class=\"chart\" viewBox=\"0 0 %d %d\" "
      "width=\"%d\" height=\"%d\" role=\"img\">",
      w, h, w, h);
  for (size_t i = 0; i < r.caches.size(); ++i) {
    const CacheReport& c = r.caches[i];
    const int y = static_cast<int>(i) * row + 4;
    const double bw = c.hit_ratio * (w - label_w - 80);
    o += Format(
        "<text x=\"0\" y=\"%d\" class=\"l\">%s</text><rect class=\"bar\" x=\"%d\" "
        "y=\"%d\" width=\"%.1f\" height=\"15\"/><text x=\"%.1f\" y=\"%d\" "
        "class=\"v\">%.1f%%</text>",
        y + 12, HtmlEscape(c.route).c_str(), label_w, y, bw, label_w + bw + 6, y + 12,
        Pct(c.hit_ratio));
  }
  return o + "</svg></section>\n";
}

}  // namespace internal
}  // namespace ficus::advisor
