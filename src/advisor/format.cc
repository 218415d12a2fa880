// The report's renderings: terminal text, Markdown and JSON (the HTML page: format_html.cc),
// and the helpers every format shares (internal/format_common.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "advisor/advisor.h"
#include "advisor/internal/format_common.h"
#include "advisor/internal/proof.h"
#include "advisor/internal/queues.h"
#include "advisor/internal/section_cache.h"
#include "advisor/internal/section_db.h"
#include "base/text.h"

namespace ficus::advisor {
namespace internal {

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

// The mix's capacity per instance as a phrase: "120.0" or "≥ 120.0" (a lower bound).
std::string MixCapacity(const Report& r) {
  return Format(r.capacity_lower_bound ? "≥ %.1f" : "%.1f", r.capacity_rps.value_or(0));
}

// "3" or "≤ 3" (instances from a lower-bound capacity).
std::string Instances(const Growth& g) {
  return Format(g.instances_at_most ? "≤ %d" : "%d", g.instances);
}

}  // namespace internal

using namespace internal;  // the helpers the formats share (internal/format_common.h)

std::string CapacityText(const RouteReport& rr) {
  if (rr.assessed == "not_assessed") return "not assessed (mostly 4xx)";
  if (rr.assessed == "skipped") return "skipped (regex or header match)";
  if (rr.assessed == "failed_first")
    return rr.capacity_rps ? Format("< %.1f (failed at its first rate)", *rr.capacity_rps)
                           : "failed at its first rate";
  if (!rr.capacity_rps) return "-";
  return Format(rr.assessed == "lower_bound" ? "≥ %.1f" : "%.1f", *rr.capacity_rps);
}

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

}  // namespace ficus::advisor
