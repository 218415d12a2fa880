// The report as a self-contained HTML page: its charts (bars, lines over time, the risk
// matrix) and FormatHtml. The other formats are in format.cc.
#include <algorithm>
#include <cmath>

#include "advisor/advisor.h"
#include "advisor/internal/format_common.h"
#include "advisor/internal/proof.h"
#include "advisor/internal/queues.h"
#include "advisor/internal/section_cache.h"
#include "advisor/internal/section_db.h"
#include "base/text.h"

namespace ficus::advisor {

using namespace internal;  // the helpers the formats share

namespace {

// A horizontal bar chart: one bar per (label, value, text).
std::string BarChart(const std::string& id,
                     const std::vector<std::tuple<std::string, double, std::string>>& bars) {
  const int row = 22, label_w = 150, w = 640;
  const int h = static_cast<int>(bars.size()) * row + 10;
  double max = 0;
  for (const auto& b : bars) max = std::max(max, std::get<1>(b));
  std::string o = Format(
      "<svg id=\"%s\" class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "role=\"img\">",
      id.c_str(), w, h, w, h);
  for (size_t i = 0; i < bars.size(); ++i) {
    const auto& [label, v, text] = bars[i];
    const double bw = max > 0 ? (w - label_w - 120) * v / max : 0;
    const int y = static_cast<int>(i) * row + 5;
    o += Format("<text x=\"0\" y=\"%d\" class=\"l\">%s</text>", y + 14, HtmlEscape(label).c_str());
    o += Format("<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"16\"/>", label_w, y,
                bw);
    o += Format("<text x=\"%.1f\" y=\"%d\" class=\"v\">%s</text>", label_w + bw + 6, y + 14,
                HtmlEscape(text).c_str());
  }
  return o + "</svg>";
}

// One value over time, one line per route, on a linear axis. The time axis spans the data
// (first to last point, not the whole period, so a short burst is not a sliver at one edge),
// labelled at both ends; the legend has its own column right of the plot, one row per route,
// so labels never overlap the lines or each other.
std::string TimeChart(const Report& r, const char* id, const char* unit,
                      double (*value)(const RouteReport::Point&)) {
  const int legend_w = 130, plot_w = 560, left = 60, bottom = 22;
  int series = 0;
  for (const auto& rr : r.routes) series += rr.trend.empty() ? 0 : 1;
  const int h = std::max(200, 16 * series + 30), w = left + plot_w + legend_w;
  double max_v = 0;
  int64_t t0 = INT64_MAX, t1 = INT64_MIN;
  for (const auto& rr : r.routes) {
    for (const auto& p : rr.trend) {
      max_v = std::max(max_v, value(p));
      t0 = std::min(t0, p.ts_ms);
      t1 = std::max(t1, p.ts_ms);
    }
  }
  if (t0 == INT64_MAX) t0 = r.from_ms, t1 = r.to_ms;
  if (t1 <= t0) t1 = t0 + 1;
  if (max_v <= 0) max_v = 1;
  std::string o = Format(
      "<svg id=\"%s\" class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" "
      "height=\"%d\" role=\"img\">",
      id, w, h, w, h);
  const int x1 = left + plot_w, y0 = h - bottom;
  o += Format("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", left, y0, x1, y0);
  o += Format("<line x1=\"%d\" y1=\"0\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left, y0);
  o += Format(
      "<text x=\"0\" y=\"12\" class=\"l\">%s %s</text><text x=\"0\" y=\"%d\" "
      "class=\"l\">0</text>",
      Format(max_v >= 10 ? "%.0f" : "%.2g", max_v).c_str(), unit, y0);
  // Time labels at both ends, anchored inside the plot so they cannot run into each other.
  o += Format("<text x=\"%d\" y=\"%d\" class=\"s\">%s</text>", left, h - 6,
              HtmlEscape(Time(t0)).c_str());
  o += Format("<text x=\"%d\" y=\"%d\" class=\"s\" text-anchor=\"end\">%s</text>", x1, h - 6,
              HtmlEscape(Time(t1)).c_str());
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                  "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"};
  int ci = 0;
  for (const auto& rr : r.routes) {
    if (rr.trend.empty()) continue;
    std::string pts;
    for (const auto& p : rr.trend) {
      const double x =
          left + plot_w * static_cast<double>(p.ts_ms - t0) / static_cast<double>(t1 - t0);
      const double y = (y0 - 4) * (1 - value(p) / max_v) + 4;
      pts += Format("%.1f,%.1f ", x, y);
    }
    const char* color = kColors[ci % 8];
    o += Format(
        "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
        "points=\"%s\"/>",
        color, pts.c_str());
    o += Format("<text x=\"%d\" y=\"%d\" fill=\"%s\" class=\"l legend\">%s</text>", x1 + 10,
                14 + 16 * ci, color, HtmlEscape(rr.name).c_str());
    ++ci;
  }
  return o + "</svg>";
}

double P99Of(const RouteReport::Point& p) { return p.p99_ms; }
double ErrorPercentOf(const RouteReport::Point& p) {
  return p.requests ? 100.0 * static_cast<double>(p.errors) / static_cast<double>(p.requests) : 0;
}

// Impact (rows) x likelihood (columns), the findings' routes in their cells.
std::string RiskMatrix(const Report& r) {
  const int cell = 150, pad = 90;
  std::string o = Format(
      "<svg id=\"chart-risk\" class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
      "role=\"img\">",
      pad + 3 * cell, 3 * cell + 40, pad + 3 * cell, 3 * cell + 40);
  for (int imp = 3; imp >= 1; --imp) {
    for (int lik = 1; lik <= 3; ++lik) {
      const int x = pad + (lik - 1) * cell, y = (3 - imp) * cell;
      const int score = imp * lik;
      const char* fill = score >= 6 ? "#f4a6a6" : score >= 3 ? "#f7d79a" : "#c8e6c9";
      o +=
          Format("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"#fff\"/>",
                 x, y, cell, cell, fill);
      int line = 0;
      for (const auto& f : r.findings) {
        if (f.impact != imp || f.likelihood != lik || line >= 8) continue;
        o += Format("<text x=\"%d\" y=\"%d\" class=\"s\">%s %s</text>", x + 4, y + 16 + 16 * line++,
                    HtmlEscape(f.route).c_str(), HtmlEscape(f.kind).c_str());
      }
    }
    o += Format("<text x=\"0\" y=\"%d\" class=\"l\">impact %s</text>", (3 - imp) * cell + cell / 2,
                Level(imp));
  }
  for (int lik = 1; lik <= 3; ++lik)
    o += Format("<text x=\"%d\" y=\"%d\" class=\"l\">likelihood %s</text>",
                pad + (lik - 1) * cell + 20, 3 * cell + 20, Level(lik));
  return o + "</svg>";
}

}  // namespace

std::string FormatHtml(const Report& r) {
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>ficus report</title>"
      "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}"
      "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
      "text-align:right}td:first-child,th:first-child{text-align:left}"
      ".chart{display:block;margin:.5em 0}.bar{fill:#4a7bb7}.l,.v,.s{font:12px sans-serif}"
      ".s{font-size:11px}.axis{stroke:#888}pre{background:#f5f5f5;padding:.6em}"
      ".f{border-left:4px solid #d62728;padding-left:.6em;margin:.8em 0}</style></head><body>\n";
  o += Format(
      "<h1>ficus report</h1><p id=\"summary\">%s to %s (%s): %llu requests, %.2f%% 5xx, "
      "peak %.1f req/s, ~%.0f distinct clients.</p>\n",
      Time(r.from_ms).c_str(), Time(r.to_ms).c_str(), HtmlEscape(r.period).c_str(),
      static_cast<unsigned long long>(r.requests),
      r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests) : 0.0,
      r.peak_rps, r.clients);

  o += "<section id=\"traffic\"><h2>Traffic and time share per route</h2>";
  std::vector<std::tuple<std::string, double, std::string>> req_bars, time_bars;
  for (const auto& rr : r.routes) {
    req_bars.emplace_back(rr.name, rr.share, Format("%.1f%%", rr.share * 100));
    time_bars.emplace_back(rr.name, rr.time_share, Format("%.1f%%", rr.time_share * 100));
  }
  o += "<h3>Requests</h3>" + BarChart("chart-requests", req_bars);
  o += "<h3>Where the time goes</h3>" + BarChart("chart-time", time_bars);
  o += "<table><tr><th>route</th><th>requests</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th>"
       "<th>target ms</th><th>5xx</th><th>peak req/s</th><th>capacity req/s</th></tr>";
  for (const auto& rr : r.routes)
    o += Format(
        "<tr><td>%s</td><td>%llu</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.0f</td>"
        "<td>%.2f%%</td><td>%.1f</td><td>%s</td></tr>",
        HtmlEscape(rr.name).c_str(), static_cast<unsigned long long>(rr.requests), rr.p50_ms,
        rr.p90_ms, rr.p99_ms, rr.threshold_ms,
        100.0 * static_cast<double>(rr.errors) /
            static_cast<double>(std::max<uint64_t>(rr.requests, 1)),
        rr.peak_rps, HtmlEscape(CapacityText(rr)).c_str());
  o += "</table>";
  if (const std::string note = SyntheticLoadNote(r); !note.empty())
    o += "<p id=\"synthetic-load\">" + HtmlEscape(note) + ".</p>";
  o += "</section>\n";

  o += "<section id=\"latency\"><h2>Latency and error trends</h2><h3>p99 over time</h3>" +
       TimeChart(r, "chart-trend", "ms", P99Of) + "<h3>5xx ratio over time</h3>" +
       TimeChart(r, "chart-errors", "%", ErrorPercentOf) + "</section>\n";

  o += "<section id=\"slo\"><h2>SLO status and budget</h2>";
  if (r.slos.empty()) o += "<p>No SLOs configured.</p>";
  std::vector<std::tuple<std::string, double, std::string>> budget_bars;
  for (const auto& s : r.slos)
    budget_bars.emplace_back(
        s.id, std::max(0.0, s.budget_remaining),
        Format("%.0f%% left, %s", s.budget_remaining * 100, s.severity.c_str()));
  if (!r.slos.empty()) o += BarChart("chart-budget", budget_bars);
  for (const auto& w : r.synthetic_windows)
    o += "<p class=\"synthetic\">" + HtmlEscape(SyntheticNote(w)) + "</p>";
  o += "</section>\n";

  o += "<section id=\"findings\"><h2>Trigger points and findings</h2>";
  if (r.findings.empty()) o += "<p>None: no trigger point crossed.</p>";
  for (const auto& f : r.findings) {
    o += Format("<div class=\"f\" data-kind=\"%s\"><b>%s</b> on <b>%s</b>: %s<br>Remedy: %s",
                HtmlEscape(f.kind).c_str(), HtmlEscape(f.kind).c_str(), HtmlEscape(f.route).c_str(),
                HtmlEscape(f.summary).c_str(), HtmlEscape(f.remedy).c_str());
    if (!f.snippet.empty()) o += std::string("<pre>") + HtmlEscape(f.snippet) + "</pre>";
    o += "</div>";
  }
  o += "</section>\n";

  o += "<section id=\"noisy\"><h2>Noisy clients</h2>";
  if (r.noisy.empty()) o += "<p>No client key with an outsized share.</p>";
  for (const auto& n : r.noisy)
    o += Format("<p>%s: %.1f%% of requests (%.1f req/s); suggested limit %.0f req/s.</p>",
                HtmlEscape(n.key).c_str(), n.share * 100, n.rps, n.suggested_rate);
  o += "</section>\n";

  o += "<section id=\"events\"><h2>Event correlation</h2>";
  if (r.correlations.empty()) o += "<p>No deploy markers or reloads in the period.</p>";
  for (const auto& c : r.correlations)
    o += Format("<p>%s %s %s %s: p99 %.0f &rarr; %.0f ms, errors %.2f%% &rarr; %.2f%%%s</p>",
                Time(c.event.ts_ms).c_str(), HtmlEscape(c.event.kind).c_str(),
                HtmlEscape(c.event.service).c_str(), HtmlEscape(c.event.version).c_str(),
                c.p99_before_ms, c.p99_after_ms, c.errors_before * 100, c.errors_after * 100,
                c.shifted ? " <b>shift</b>" : "");
  o += "</section>\n";

  o += internal::QueuesHtml(r);
  o += "<section id=\"risk\"><h2>Risk matrix</h2>" + RiskMatrix(r) + "</section>\n";

  o += "<section id=\"capacity\"><h2>Capacity and growth</h2>";
  if (!r.capacity_rps) {
    o += "<p>No capacity measured: run <code>ficus assess</code>.</p>";
  } else {
    o += Format(
        "<p>Measured capacity %s req/s per instance%s, sized for 70%% utilisation, %s per "
        "instance and month.</p>",
        HtmlEscape(MixCapacity(r)).c_str(),
        r.capacity_lower_bound
            ? " (a lower bound: the step load stopped before a knee; instance counts are at most)"
            : "",
        Money(r.price_month).c_str());
    std::vector<std::tuple<std::string, double, std::string>> bars;
    o += "<table><tr><th>growth</th><th>peak req/s</th><th>instances</th><th>cost/month</th>"
         "<th>per active user</th></tr>";
    for (const auto& g : r.growth) {
      o += Format("<tr><td>%.0fx</td><td>%.1f</td><td>%s</td><td>%s</td><td>%.4f</td></tr>",
                  g.multiple, g.peak_rps, HtmlEscape(Instances(g)).c_str(),
                  Money(g.cost_month).c_str(), g.cost_per_user);
      bars.emplace_back(Format("%.0fx", g.multiple), g.instances, Instances(g) + " instances");
    }
    o += "</table>" + BarChart("chart-growth", bars);
  }
  o += "</section>\n" + internal::ProofsHtml(r) + internal::CachesHtml(r) +
       internal::DatabaseHtml(r) + "</body></html>\n";
  return o;
}

}  // namespace ficus::advisor
