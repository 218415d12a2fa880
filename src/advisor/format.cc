// The report's renderings: terminal text, Markdown, JSON and a self-contained HTML page.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "advisor/advisor.h"
#include "advisor/internal/proof.h"
#include "advisor/internal/queues.h"
#include "advisor/internal/section_cache.h"
#include "advisor/internal/section_db.h"
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

// One line on ficus's own load in the period (empty when there was none), for the traffic
// section of every format.
std::string SyntheticLoadNote(const Report& r) {
  if (r.synthetic_requests == 0) return "";
  std::string per_route;
  for (const auto& s : r.synthetic)
    per_route += Format("%s%s %llu", per_route.empty() ? "" : ", ", s.route.c_str(),
                        static_cast<unsigned long long>(s.requests));
  return Format(
      "ficus's own load (assess, scenario assessments, load and replay runs with the admin "
      "token): %llu requests (%s), kept out of every figure above",
      static_cast<unsigned long long>(r.synthetic_requests), per_route.c_str());
}

// A deploy or reload and what changed around it (text and Markdown).
std::string CorrelationLine(const Correlation& c) {
  return Format("%s %s %s %s: p99 %.0f -> %.0f ms, errors %.2f%% -> %.2f%%%s",
                Time(c.event.ts_ms).c_str(), c.event.kind.c_str(), c.event.service.c_str(),
                c.event.version.c_str(), c.p99_before_ms, c.p99_after_ms, c.errors_before * 100,
                c.errors_after * 100, c.shifted ? " (shift)" : "");
}

// Finite numbers only: JSON has no NaN or infinity.
std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return Format("%.6g", v);
}

const char* Level(int v) { return v >= 3 ? "high" : v == 2 ? "medium" : "low"; }

std::string Money(double v) { return v >= 100 ? Format("%.0f", v) : Format("%.2f", v); }

}  // namespace

std::string CapacityText(const RouteReport& rr) {
  if (rr.assessed == "not_assessed") return "not assessed (mostly 4xx)";
  if (rr.assessed == "skipped") return "skipped (regex or header match)";
  if (rr.assessed == "failed_first")
    return rr.capacity_rps ? Format("< %.1f (failed at its first rate)", *rr.capacity_rps)
                           : "failed at its first rate";
  if (!rr.capacity_rps) return "-";
  return Format(rr.assessed == "lower_bound" ? "≥ %.1f" : "%.1f", *rr.capacity_rps);
}

namespace {

// The mix's capacity per instance as a phrase: "120.0" or "≥ 120.0" (a lower bound).
std::string MixCapacity(const Report& r) {
  return Format(r.capacity_lower_bound ? "≥ %.1f" : "%.1f", r.capacity_rps.value_or(0));
}

// "3" or "≤ 3" (instances from a lower-bound capacity).
std::string Instances(const Growth& g) {
  return Format(g.instances_at_most ? "≤ %d" : "%d", g.instances);
}

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
  if (r.capacity_rps) o += ", measured capacity " + MixCapacity(r) + " req/s per instance";
  o += "\n\nTraffic and latency per route\n";
  o += Format("  %-14s %9s %6s %6s %8s %8s %8s %7s %9s  %s\n", "route", "requests", "share", "time",
              "p50 ms", "p99 ms", "target", "5xx", "peak r/s", "capacity r/s");
  for (const auto& rr : r.routes) {
    o += Format("  %-14s %9llu %5.1f%% %5.1f%% %8.1f %8.1f %8.0f %6.2f%% %9.1f  %s\n",
                rr.name.c_str(), static_cast<unsigned long long>(rr.requests), rr.share * 100,
                rr.time_share * 100, rr.p50_ms, rr.p99_ms, rr.threshold_ms,
                100.0 * static_cast<double>(rr.errors) /
                    static_cast<double>(std::max<uint64_t>(rr.requests, 1)),
                rr.peak_rps, CapacityText(rr).c_str());
  }
  if (const std::string note = SyntheticLoadNote(r); !note.empty()) o += "  " + note + "\n";
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
    o += Format("  [%s] %s: %s (impact %s, likelihood %s)\n      remedy: %s\n", f.kind.c_str(),
                f.route.c_str(), f.summary.c_str(), Level(f.impact), Level(f.likelihood),
                f.remedy.c_str());
    // The config that applies it, indented under the finding.
    size_t at = 0;
    while (at < f.snippet.size()) {
      size_t nl = f.snippet.find('\n', at);
      if (nl == std::string::npos) nl = f.snippet.size();
      o += "        " + f.snippet.substr(at, nl - at) + "\n";
      at = nl + 1;
    }
  }
  o += "\nNoisy clients\n";
  if (r.noisy.empty()) o += "  none: no client key with an outsized share\n";
  for (const auto& n : r.noisy)
    o += Format("  %-28s %5.1f%% of requests, %.1f req/s; suggested limit %.0f req/s\n",
                n.key.c_str(), n.share * 100, n.rps, n.suggested_rate);
  o += "\nEvent correlation\n";
  if (r.correlations.empty()) o += "  no deploy markers or reloads in the period\n";
  for (const auto& c : r.correlations) o += "  " + CorrelationLine(c) + "\n";
  o += internal::QueuesText(r);
  o += "\nCapacity and growth (70% target utilisation";
  o += Format(", %s/month per instance)\n", Money(r.price_month).c_str());
  if (!r.capacity_rps) {
    o += "  no capacity measured: run `ficus assess`\n";
  } else {
    if (r.capacity_lower_bound)
      o += "  capacity " + MixCapacity(r) +
           " req/s is a lower bound (the step load stopped before a knee): instance counts are "
           "at most\n";
    for (const auto& g : r.growth)
      o += Format("  %5.0fx peak %9.1f req/s: %6s instance(s), %s/month, %s per active user\n",
                  g.multiple, g.peak_rps, Instances(g).c_str(), Money(g.cost_month).c_str(),
                  g.cost_per_user > 0 ? Format("%.4f", g.cost_per_user).c_str() : "n/a");
  }
  o += internal::ProofsText(r);
  o += internal::CachesText(r);
  o += internal::DatabaseText(r);
  return o;
}

std::string FormatMarkdown(const Report& r) {
  std::string o = Format(
      "# ficus report\n\n%s to %s (%s): %llu requests, peak %.1f req/s, ~%.0f "
      "distinct clients.\n\n",
      Time(r.from_ms).c_str(), Time(r.to_ms).c_str(), r.period.c_str(),
      static_cast<unsigned long long>(r.requests), r.peak_rps, r.clients);
  o += "## Traffic and latency\n\n| route | requests | share | time share | p50 ms | p90 ms | "
       "p99 ms | target ms | 5xx | peak req/s | capacity req/s "
       "|\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& rr : r.routes)
    o +=
        Format("| %s | %llu | %.1f%% | %.1f%% | %.1f | %.1f | %.1f | %.0f | %.2f%% | %.1f | %s |\n",
               rr.name.c_str(), static_cast<unsigned long long>(rr.requests), rr.share * 100,
               rr.time_share * 100, rr.p50_ms, rr.p90_ms, rr.p99_ms, rr.threshold_ms,
               100.0 * static_cast<double>(rr.errors) /
                   static_cast<double>(std::max<uint64_t>(rr.requests, 1)),
               rr.peak_rps, CapacityText(rr).c_str());
  if (const std::string note = SyntheticLoadNote(r); !note.empty()) o += "\n" + note + ".\n";
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
  o += "\n## Noisy clients\n\n";
  if (r.noisy.empty()) o += "No client key with an outsized share.\n";
  for (const auto& n : r.noisy)
    o += Format("- %s: %.1f%% of requests (%.1f req/s); suggested limit %.0f req/s\n",
                n.key.c_str(), n.share * 100, n.rps, n.suggested_rate);
  o += "\n## Event correlation\n\n";
  if (r.correlations.empty()) o += "No deploy markers or reloads in the period.\n";
  for (const auto& c : r.correlations) o += "- " + CorrelationLine(c) + "\n";
  o += internal::QueuesMarkdown(r);
  o += "\n## Risk matrix\n\n| route | finding | impact | likelihood | remedy "
       "|\n|---|---|---|---|---|\n";
  for (const auto& f : r.findings)
    o += Format("| %s | %s: %s | %s | %s | %s |\n", f.route.c_str(), f.kind.c_str(),
                f.summary.c_str(), Level(f.impact), Level(f.likelihood), f.remedy.c_str());
  for (const auto& f : r.findings) {
    if (f.snippet.empty()) continue;
    o += Format("\n### %s on %s\n\n", f.kind.c_str(), f.route.c_str());
    o += "```yaml\n" + f.snippet + "```\n";
  }
  o += "\n## Capacity and growth\n\n";
  if (!r.capacity_rps) {
    o += "No capacity measured: run `ficus assess`.\n";
  } else {
    o += Format(
        "Measured capacity: %s req/s per instance%s; sized for 70%% utilisation at %s/month "
        "per instance.\n\n| growth | peak req/s | instances | cost/month | per active user |\n"
        "|---:|---:|---:|---:|---:|\n",
        MixCapacity(r).c_str(),
        r.capacity_lower_bound
            ? " (a lower bound: the step load stopped before a knee; instance counts are at most)"
            : "",
        Money(r.price_month).c_str());
    for (const auto& g : r.growth)
      o += Format("| %.0fx | %.1f | %s | %s | %.4f |\n", g.multiple, g.peak_rps,
                  Instances(g).c_str(), Money(g.cost_month).c_str(), g.cost_per_user);
  }
  o += internal::ProofsMarkdown(r);
  o += internal::CachesMarkdown(r);
  o += internal::DatabaseMarkdown(r);
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
       ",\"capacity_rps\":" + (r.capacity_rps ? Num(*r.capacity_rps) : "null") +
       ",\"capacity_lower_bound\":" + (r.capacity_lower_bound ? "true" : "false");
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
         ",\"assessed\":" + JsonString(rr.assessed) +
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
  o += Format("],\"synthetic_requests\":%llu,\"synthetic\":[",
              static_cast<unsigned long long>(r.synthetic_requests));
  for (size_t i = 0; i < r.synthetic.size(); ++i)
    o += (i ? "," : "") + std::string("{\"route\":") + JsonString(r.synthetic[i].route) +
         Format(",\"requests\":%llu}", static_cast<unsigned long long>(r.synthetic[i].requests));
  o += "],\"growth\":[";
  for (size_t i = 0; i < r.growth.size(); ++i) {
    const auto& g = r.growth[i];
    o += (i ? "," : "") + std::string("{\"multiple\":") + Num(g.multiple) +
         ",\"peak_rps\":" + Num(g.peak_rps) + Format(",\"instances\":%d", g.instances) +
         ",\"instances_at_most\":" + (g.instances_at_most ? "true" : "false") +
         ",\"cost_month\":" + Num(g.cost_month) + ",\"cost_per_user\":" + Num(g.cost_per_user) +
         "}";
  }
  o += "]," + internal::ProofsJson(r) + "," + internal::CachesJson(r) + "," +
       internal::DatabaseJson(r) + "," + internal::QueuesJson(r) +
       ",\"price_month\":" + Num(r.price_month) + ",\"active_users\":" + Num(r.active_users) +
       "}\n";
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
