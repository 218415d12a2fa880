// The report's renderings: terminal text, Markdown, JSON and a self-contained HTML page.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "advisor/advisor.h"
#include "advisor/internal/proof.h"
#include "base/text.h"

namespace ficus::advisor {
namespace {

std::string Time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

// One line on an assessment window for the SLO section of every format.
std::string SyntheticNote(const Report::SyntheticWindow& w) {
  if (w.synthetic_requests > 0)
    return Format("assessment %s %s to %s: synthetic; its %llu requests are kept out of the SLOs",
                  w.target.c_str(), Time(w.from_ms).c_str(), Time(w.to_ms).c_str(),
                  static_cast<unsigned long long>(w.synthetic_requests));
  return Format(
      "assessment %s %s to %s: synthetic, but counted in the SLOs (assess could not "
      "register its key: set admin.token, or it was a scenario)",
      w.target.c_str(), Time(w.from_ms).c_str(), Time(w.to_ms).c_str());
}

// Finite numbers only: JSON has no NaN or infinity.
std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return Format("%.6g", v);
}

const char* Level(int v) { return v >= 3 ? "high" : v == 2 ? "medium" : "low"; }

std::string Money(double v) { return v >= 100 ? Format("%.0f", v) : Format("%.2f", v); }

}  // namespace

std::optional<double> ParsePrice(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(v >= 0) || !std::isfinite(v)) return std::nullopt;
  std::string unit(end);
  if (unit.empty() || unit == "/month" || unit == "/mo") return v;
  if (unit == "/hour" || unit == "/h") return v * 730;
  if (unit == "/day") return v * 730.0 / 24.0;
  return std::nullopt;
}

std::string FormatText(const Report& r) {
  std::string o;
  o += Format("ficus report: %s .. %s (%s)\n", Time(r.from_ms).c_str(), Time(r.to_ms).c_str(),
              r.period.c_str());
  o += Format(
      "%llu requests, %.2f%% 5xx, ~%.0f distinct clients, peak %.1f req/s",
      static_cast<unsigned long long>(r.requests),
      r.requests ? 100.0 * static_cast<double>(r.errors) / static_cast<double>(r.requests) : 0.0,
      r.clients, r.peak_rps);
  if (r.capacity_rps) o += Format(", measured capacity %.1f req/s per instance", *r.capacity_rps);
  o += "\n\nTraffic and latency per route\n";
  o += Format("  %-14s %9s %6s %6s %8s %8s %8s %7s %9s\n", "route", "requests", "share", "time",
              "p50 ms", "p99 ms", "target", "5xx", "peak r/s");
  for (const auto& rr : r.routes) {
    o += Format("  %-14s %9llu %5.1f%% %5.1f%% %8.1f %8.1f %8.0f %6.2f%% %9.1f\n", rr.name.c_str(),
                static_cast<unsigned long long>(rr.requests), rr.share * 100, rr.time_share * 100,
                rr.p50_ms, rr.p99_ms, rr.threshold_ms,
                100.0 * static_cast<double>(rr.errors) /
                    static_cast<double>(std::max<uint64_t>(rr.requests, 1)),
                rr.peak_rps);
  }
  if (!r.slos.empty()) {
    o += "\nSLOs\n";
    for (const auto& s : r.slos) {
      o += Format("  %-24s target %.2f%%  SLI %s  budget left %.0f%%  burn 1h %.1fx  %s\n",
                  s.id.c_str(), s.target * 100,
                  s.sli ? Format("%.3f%%", *s.sli * 100).c_str() : "n/a", s.budget_remaining * 100,
                  s.burn_1h, s.severity.c_str());
    }
  }
  for (const auto& w : r.synthetic_windows) o += "  " + SyntheticNote(w) + "\n";
  o += "\nFindings (most severe first)\n";
  if (r.findings.empty()) o += "  none: no trigger point crossed\n";
  for (const auto& f : r.findings) {
    o += Format("  [%s] %s: %s\n      remedy: %s\n", f.kind.c_str(), f.route.c_str(),
                f.summary.c_str(), f.remedy.c_str());
  }
  if (!r.noisy.empty()) {
    o += "\nNoisy clients\n";
    for (const auto& n : r.noisy)
      o += Format("  %-28s %5.1f%% of requests, %.1f req/s; suggested limit %.0f req/s\n",
                  n.key.c_str(), n.share * 100, n.rps, n.suggested_rate);
  }
  o += "\nCapacity and growth (70% target utilisation";
  o += Format(", %s/month per instance)\n", Money(r.price_month).c_str());
  if (!r.capacity_rps) {
    o += "  no capacity measured: run `ficus assess`\n";
  } else {
    for (const auto& g : r.growth)
      o += Format("  %5.0fx peak %9.1f req/s: %4d instance(s), %s/month, %s per active user\n",
                  g.multiple, g.peak_rps, g.instances, Money(g.cost_month).c_str(),
                  g.cost_per_user > 0 ? Format("%.4f", g.cost_per_user).c_str() : "n/a");
  }
  o += internal::ProofsText(r);
  return o;
}

std::string FormatMarkdown(const Report& r) {
  std::string o = Format(
      "# ficus report\n\n%s to %s (%s): %llu requests, peak %.1f req/s, ~%.0f "
      "distinct clients.\n\n",
      Time(r.from_ms).c_str(), Time(r.to_ms).c_str(), r.period.c_str(),
      static_cast<unsigned long long>(r.requests), r.peak_rps, r.clients);
  o += "## Traffic and latency\n\n| route | requests | share | time share | p50 ms | p90 ms | "
       "p99 ms | target ms | 5xx | peak req/s "
       "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& rr : r.routes)
    o += Format("| %s | %llu | %.1f%% | %.1f%% | %.1f | %.1f | %.1f | %.0f | %.2f%% | %.1f |\n",
                rr.name.c_str(), static_cast<unsigned long long>(rr.requests), rr.share * 100,
                rr.time_share * 100, rr.p50_ms, rr.p90_ms, rr.p99_ms, rr.threshold_ms,
                100.0 * static_cast<double>(rr.errors) /
                    static_cast<double>(std::max<uint64_t>(rr.requests, 1)),
                rr.peak_rps);
  o += "\n## SLOs\n\n";
  if (r.slos.empty()) o += "No SLOs configured.\n";
  for (const auto& s : r.slos)
    o += Format(
        "- **%s**: target %.2f%%, SLI %s, budget left %.0f%%, burn 1h %.1fx / 6h %.1fx, "
        "state %s\n",
        s.id.c_str(), s.target * 100, s.sli ? Format("%.3f%%", *s.sli * 100).c_str() : "n/a",
        s.budget_remaining * 100, s.burn_1h, s.burn_6h, s.severity.c_str());
  if (!r.synthetic_windows.empty()) o += "\n";
  for (const auto& w : r.synthetic_windows) o += "- " + SyntheticNote(w) + "\n";
  o += "\n## Risk matrix\n\n| route | finding | impact | likelihood | remedy "
       "|\n|---|---|---|---|---|\n";
  for (const auto& f : r.findings)
    o += Format("| %s | %s: %s | %s | %s | %s |\n", f.route.c_str(), f.kind.c_str(),
                f.summary.c_str(), Level(f.impact), Level(f.likelihood), f.remedy.c_str());
  for (const auto& f : r.findings) {
    if (f.snippet.empty()) continue;
    o += Format("\n### %s on %s\n\n", f.kind.c_str(), f.route.c_str());
    if (!f.in_ficus) o += "(planned config shape: this ficus does not have the key yet)\n\n";
    o += "```yaml\n" + f.snippet + "```\n";
  }
  o += "\n## Capacity and growth\n\n";
  if (!r.capacity_rps) {
    o += "No capacity measured: run `ficus assess`.\n";
  } else {
    o += Format(
        "Measured capacity: %.1f req/s per instance; sized for 70%% utilisation at %s/month "
        "per instance.\n\n| growth | peak req/s | instances | cost/month | per active user |\n"
        "|---:|---:|---:|---:|---:|\n",
        *r.capacity_rps, Money(r.price_month).c_str());
    for (const auto& g : r.growth)
      o += Format("| %.0fx | %.1f | %d | %s | %.4f |\n", g.multiple, g.peak_rps, g.instances,
                  Money(g.cost_month).c_str(), g.cost_per_user);
  }
  o += internal::ProofsMarkdown(r);
  return o;
}

std::string FormatJson(const Report& r) {
  std::string o = "{";
  o += Format("\"from_ms\":%lld,\"to_ms\":%lld,\"period\":", static_cast<long long>(r.from_ms),
              static_cast<long long>(r.to_ms)) +
       JsonString(r.period);
  o += Format(",\"requests\":%llu,\"errors\":%llu", static_cast<unsigned long long>(r.requests),
              static_cast<unsigned long long>(r.errors));
  o += ",\"clients\":" + Num(r.clients) + ",\"peak_rps\":" + Num(r.peak_rps) +
       ",\"capacity_rps\":" + (r.capacity_rps ? Num(*r.capacity_rps) : "null");
  o += ",\"routes\":[";
  for (size_t i = 0; i < r.routes.size(); ++i) {
    const auto& rr = r.routes[i];
    o += i ? "," : "";
    o += "{\"name\":" + JsonString(rr.name) +
         Format(",\"requests\":%llu,\"errors\":%llu", static_cast<unsigned long long>(rr.requests),
                static_cast<unsigned long long>(rr.errors));
    o += ",\"share\":" + Num(rr.share) + ",\"time_share\":" + Num(rr.time_share) +
         ",\"p50_ms\":" + Num(rr.p50_ms) + ",\"p90_ms\":" + Num(rr.p90_ms) +
         ",\"p99_ms\":" + Num(rr.p99_ms) + ",\"threshold_ms\":" + Num(rr.threshold_ms) +
         ",\"mean_bytes_out\":" + Num(rr.mean_bytes_out) + ",\"peak_rps\":" + Num(rr.peak_rps) +
         ",\"growth\":" + Num(rr.growth) +
         ",\"capacity_rps\":" + (rr.capacity_rps ? Num(*rr.capacity_rps) : "null") +
         ",\"repeat_ratio\":" + (rr.repeat_ratio ? Num(*rr.repeat_ratio) : "null") +
         Format(",\"repeat_samples\":%llu", static_cast<unsigned long long>(rr.repeat_samples)) +
         ",\"trend\":[";
    for (size_t j = 0; j < rr.trend.size(); ++j)
      o += (j ? "," : "") +
           Format("{\"ts_ms\":%lld,\"requests\":%llu,\"errors\":%llu,\"p99_ms\":",
                  static_cast<long long>(rr.trend[j].ts_ms),
                  static_cast<unsigned long long>(rr.trend[j].requests),
                  static_cast<unsigned long long>(rr.trend[j].errors)) +
           Num(rr.trend[j].p99_ms) + "}";
    o += "]}";
  }
  o += "],\"slos\":[";
  for (size_t i = 0; i < r.slos.size(); ++i) {
    const auto& s = r.slos[i];
    o += (i ? "," : "") + std::string("{\"id\":") + JsonString(s.id) +
         ",\"target\":" + Num(s.target) + ",\"sli\":" + (s.sli ? Num(*s.sli) : "null") +
         ",\"budget_remaining\":" + Num(s.budget_remaining) + ",\"burn_1h\":" + Num(s.burn_1h) +
         ",\"burn_6h\":" + Num(s.burn_6h) + ",\"state\":" + JsonString(s.severity) +
         Format(",\"requests\":%llu}", static_cast<unsigned long long>(s.requests));
  }
  o += "],\"findings\":[";
  for (size_t i = 0; i < r.findings.size(); ++i) {
    const auto& f = r.findings[i];
    o += (i ? "," : "") + std::string("{\"kind\":") + JsonString(f.kind) +
         ",\"route\":" + JsonString(f.route) + ",\"summary\":" + JsonString(f.summary) +
         ",\"remedy\":" + JsonString(f.remedy) + ",\"snippet\":" + JsonString(f.snippet) +
         ",\"in_ficus\":" + (f.in_ficus ? "true" : "false") +
         Format(",\"impact\":%d,\"likelihood\":%d}", f.impact, f.likelihood);
  }
  o += "],\"noisy_clients\":[";
  for (size_t i = 0; i < r.noisy.size(); ++i) {
    const auto& n = r.noisy[i];
    o += (i ? "," : "") + std::string("{\"key\":") + JsonString(n.key) +
         Format(",\"requests\":%llu", static_cast<unsigned long long>(n.requests)) +
         ",\"share\":" + Num(n.share) + ",\"rps\":" + Num(n.rps) +
         ",\"suggested_rate\":" + Num(n.suggested_rate) + "}";
  }
  o += "],\"correlations\":[";
  for (size_t i = 0; i < r.correlations.size(); ++i) {
    const auto& c = r.correlations[i];
    o += (i ? "," : "") + std::string("{\"kind\":") + JsonString(c.event.kind) +
         Format(",\"ts_ms\":%lld", static_cast<long long>(c.event.ts_ms)) +
         ",\"service\":" + JsonString(c.event.service) +
         ",\"version\":" + JsonString(c.event.version) +
         ",\"p99_before_ms\":" + Num(c.p99_before_ms) + ",\"p99_after_ms\":" + Num(c.p99_after_ms) +
         ",\"errors_before\":" + Num(c.errors_before) + ",\"errors_after\":" + Num(c.errors_after) +
         ",\"shifted\":" + (c.shifted ? "true" : "false") + "}";
  }
  o += "],\"assessments\":[";
  for (size_t i = 0; i < r.assessments.size(); ++i) {
    const auto& a = r.assessments[i];
    o += (i ? "," : "") + std::string("{\"target\":") + JsonString(a.target) +
         Format(",\"ts_ms\":%lld", static_cast<long long>(a.ts_ms)) +
         ",\"knee_rate\":" + Num(a.knee_rate) + ",\"p99_ms\":" + Num(a.p99_ms) +
         ",\"error_ratio\":" + Num(a.error_ratio) + Format(",\"steps\":%d", a.steps) +
         ",\"stop_reason\":" + JsonString(a.stop_reason) + "}";
  }
  o += "],\"synthetic_windows\":[";
  for (size_t i = 0; i < r.synthetic_windows.size(); ++i) {
    const auto& w = r.synthetic_windows[i];
    o += (i ? "," : "") + std::string("{\"target\":") + JsonString(w.target) +
         Format(",\"from_ms\":%lld,\"to_ms\":%lld,\"synthetic_requests\":%llu,\"slo_excluded\":%s}",
                static_cast<long long>(w.from_ms), static_cast<long long>(w.to_ms),
                static_cast<unsigned long long>(w.synthetic_requests),
                w.synthetic_requests > 0 ? "true" : "false");
  }
  o += "],\"growth\":[";
  for (size_t i = 0; i < r.growth.size(); ++i) {
    const auto& g = r.growth[i];
    o += (i ? "," : "") + std::string("{\"multiple\":") + Num(g.multiple) +
         ",\"peak_rps\":" + Num(g.peak_rps) + Format(",\"instances\":%d", g.instances) +
         ",\"cost_month\":" + Num(g.cost_month) + ",\"cost_per_user\":" + Num(g.cost_per_user) +
         "}";
  }
  o += "]," + internal::ProofsJson(r) + ",\"price_month\":" + Num(r.price_month) +
       ",\"active_users\":" + Num(r.active_users) + "}\n";
  return o;
}

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

// p99 over time, one line per route, on a log-free linear axis.
std::string TrendChart(const Report& r) {
  const int w = 640, h = 240, left = 50, bottom = 20;
  double max_ms = 1;
  int64_t t0 = r.from_ms, t1 = std::max(r.to_ms, r.from_ms + 1);
  for (const auto& rr : r.routes)
    for (const auto& p : rr.trend) max_ms = std::max(max_ms, p.p99_ms);
  std::string o = Format(
      "<svg id=\"chart-trend\" class=\"chart\" viewBox=\"0 0 %d %d\" width=\"%d\" "
      "height=\"%d\" role=\"img\">",
      w, h, w, h);
  o += Format("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", left, h - bottom, w,
              h - bottom);
  o += Format("<line x1=\"%d\" y1=\"0\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>", left, left,
              h - bottom);
  o += Format(
      "<text x=\"0\" y=\"12\" class=\"l\">%.0f ms</text><text x=\"0\" y=\"%d\" "
      "class=\"l\">0</text>",
      max_ms, h - bottom);
  static const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                  "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f"};
  int ci = 0;
  for (const auto& rr : r.routes) {
    if (rr.trend.empty()) continue;
    std::string pts;
    for (const auto& p : rr.trend) {
      const double x =
          left + (w - left) * static_cast<double>(p.ts_ms - t0) / static_cast<double>(t1 - t0);
      const double y = (h - bottom) * (1 - p.p99_ms / max_ms);
      pts += Format("%.1f,%.1f ", x, y);
    }
    const char* color = kColors[ci++ % 8];
    o += Format(
        "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"%s\"/>",
        color, pts.c_str());
    o += Format("<text x=\"%d\" y=\"%d\" fill=\"%s\" class=\"l\">%s</text>", w - 110,
                14 + 14 * (ci - 1), color, HtmlEscape(rr.name).c_str());
  }
  return o + "</svg>";
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
        rr.peak_rps, rr.capacity_rps ? Format("%.1f", *rr.capacity_rps).c_str() : "-");
  o += "</table></section>\n";

  o += "<section id=\"latency\"><h2>Latency and error trends</h2><h3>p99 over time</h3>" +
       TrendChart(r) + "</section>\n";

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
    if (!f.snippet.empty())
      o +=
          std::string(f.in_ficus ? "" : "<br><i>planned config shape (not in this ficus yet)</i>") +
          "<pre>" + HtmlEscape(f.snippet) + "</pre>";
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

  o += "<section id=\"risk\"><h2>Risk matrix</h2>" + RiskMatrix(r) + "</section>\n";

  o += "<section id=\"capacity\"><h2>Capacity and growth</h2>";
  if (!r.capacity_rps) {
    o += "<p>No capacity measured: run <code>ficus assess</code>.</p>";
  } else {
    o += Format(
        "<p>Measured capacity %.1f req/s per instance, sized for 70%% utilisation, %s per "
        "instance and month.</p>",
        *r.capacity_rps, Money(r.price_month).c_str());
    std::vector<std::tuple<std::string, double, std::string>> bars;
    o += "<table><tr><th>growth</th><th>peak req/s</th><th>instances</th><th>cost/month</th>"
         "<th>per active user</th></tr>";
    for (const auto& g : r.growth) {
      o +=
          Format("<tr><td>%.0fx</td><td>%.1f</td><td>%d</td><td>%s</td><td>%.4f</td></tr>",
                 g.multiple, g.peak_rps, g.instances, Money(g.cost_month).c_str(), g.cost_per_user);
      bars.emplace_back(Format("%.0fx", g.multiple), g.instances,
                        Format("%d instances", g.instances));
    }
    o += "</table>" + BarChart("chart-growth", bars);
  }
  o += "</section>\n" + internal::ProofsHtml(r) + "</body></html>\n";
  return o;
}

}  // namespace ficus::advisor
