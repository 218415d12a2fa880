// `ficus slo rules`: the engine's SLIs, burn rates and alerts as Prometheus recording and
// alerting rules over the metrics ficus exports (src/observe's Prometheus render).
#include <charconv>
#include <cstdio>

#include "observe/observe.h"
#include "slo/slo.h"

namespace ficus::slo {

namespace {

// The standard `le` bounds of ficus's duration histograms as observe renders them (µs). A copy
// (the render's table is internal to observe); tests/slo renders a registry and compares.
constexpr uint64_t kLeMicros[] = {
    500,     1'000,   2'500,     5'000,     10'000,    25'000,     50'000,     100'000,
    250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000, 30'000'000, 60'000'000,
};

// Shortest text that reads back as the same double (PromQL parses it the same way).
std::string Num(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

// A PromQL regex matching exactly these route names (names are [A-Za-z0-9_.-]: only '.' is
// special). Written inside a PromQL double-quoted string, so the backslash is doubled.
std::string RouteRegex(const std::vector<std::string>& routes) {
  std::string out;
  for (size_t i = 0; i < routes.size(); ++i) {
    if (i) out += "|";
    for (char c : routes[i]) {
      if (c == '.') {
        out += "\\\\.";
      } else {
        out.push_back(c);
      }
    }
  }
  return out;
}

// A YAML single-quoted scalar: nothing is special inside but the quote itself.
std::string Yq(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else
      out.push_back(c);
  }
  return out + "'";
}

// "30d", "1d12h": PromQL accepts the config's duration syntax for whole seconds and above.
std::string PromDuration(Seconds s) {
  if (s.count() % 86400 == 0) return std::to_string(s.count() / 86400) + "d";
  return config::FormatDuration(std::chrono::duration_cast<config::Duration>(s));
}

// A selector `{...}` with the route matcher (if any) and `extra` matchers.
std::string Selector(const Objective& o, std::string_view extra) {
  std::string inner;
  if (!o.routes.empty()) inner = "route=~\"" + RouteRegex(o.routes) + "\"";
  if (!extra.empty()) {
    if (!inner.empty()) inner += ",";
    inner.append(extra);
  }
  return inner.empty() ? std::string() : "{" + inner + "}";
}

struct Exprs {
  std::string requests;     // events over a range: {W} is replaced by the window
  std::string error_ratio;  // bad / total over a range
};

Exprs ExprsFor(const Objective& o, std::string_view le) {
  Exprs e;
  if (o.sli == Sli::kAvailability) {
    const std::string all = "ficus_route_responses_total" + Selector(o, "");
    const std::string bad = "ficus_route_responses_total" + Selector(o, "class=\"5xx\"");
    e.requests = "sum(increase(" + all + "[{W}]))";
    e.error_ratio = "sum(rate(" + bad + "[{W}])) / sum(rate(" + all + "[{W}]))";
  } else {
    const std::string count = "ficus_route_request_duration_seconds_count" + Selector(o, "");
    const std::string good = "ficus_route_request_duration_seconds_bucket" +
                             Selector(o, "le=\"" + std::string(le) + "\"");
    e.requests = "sum(increase(" + count + "[{W}]))";
    e.error_ratio = "1 - sum(rate(" + good + "[{W}])) / sum(rate(" + count + "[{W}]))";
  }
  return e;
}

std::string WithWindow(std::string expr, std::string_view window) {
  for (size_t pos; (pos = expr.find("{W}")) != std::string::npos;) {
    expr.replace(pos, 3, window);
  }
  return expr;
}

std::string Labels(const Objective& o) {
  return "slo=\"" + o.slo + "\",sli=\"" + std::string(SliName(o.sli)) + "\"";
}

// The `le` bound a latency objective counts within: its threshold, an exact bucket edge that
// /metrics exports for every route (Registry::SetRouteLatencyBounds), written as observe writes
// it. The same edge the SLO engine's CountWithin stops at.
std::string LeOf(const Objective& o) {
  return observe::PrometheusLe(static_cast<uint64_t>(EffectiveThreshold(o.threshold).count()));
}

}  // namespace

std::span<const uint64_t> ExportedLeMicros() { return kLeMicros; }

std::string PrometheusRules(const config::Config& config, std::vector<std::string>* notes) {
  std::string out =
      "# Prometheus rules for the SLOs in " + config.source +
      ", written by `ficus slo rules`.\n"
      "# Recording rules: ficus_slo:requests:increase<W> and ficus_slo:error_ratio:rate<W> for\n"
      "# W in 5m, 30m, 1h, 6h, 1d, 3d, and the SLO window; ficus_slo:error_budget_remaining.\n"
      "# Alerts: multiwindow multi-burn-rate (SRE workbook): page when the error ratio exceeds\n"
      "# 14.4x the budget over 1h and 5m, or 6x over 6h and 30m; ticket at 1x over 3d and 6h.\n"
      "# A window with fewer requests than the SLO's min_requests never alerts.\n";
  std::vector<std::string> local_notes;
  for (const Objective& o : ObjectivesOf(config)) {
    if (o.sli != Sli::kLatency || EffectiveThreshold(o.threshold) == o.threshold) continue;
    // The config reader accepts only bucket edges; a config built in code may hold another.
    const std::string threshold = config::FormatDuration(o.threshold);
    local_notes.push_back("slo '" + o.slo + "' latency: threshold " + threshold +
                          " is not a bucket edge; the rules count requests within le=\"" + LeOf(o) +
                          "\" as good, as ficus's own SLO engine does");
  }
  for (const std::string& n : local_notes) out += "# NOTE: " + n + "\n";
  if (notes) *notes = local_notes;

  out += "groups:\n";
  if (config.slos.empty()) {
    out.resize(out.size() - 1);
    out += " []\n";
    return out;
  }
  for (const config::Slo& slo : config.slos) {
    out += "  - name: " + Yq("ficus-slo-" + slo.name) + "\n    rules:\n";
    config::Config one;
    one.slos.push_back(slo);
    for (const Objective& o : ObjectivesOf(one)) {
      const std::string le = LeOf(o);
      const Exprs e = ExprsFor(o, le);
      std::vector<std::string> windows(kWindowNames.begin(), kWindowNames.end());
      const std::string slo_window = PromDuration(o.window);
      windows.push_back(slo_window);
      const std::string labels_block =
          "        labels: { slo: " + Yq(o.slo) + ", sli: " + Yq(SliName(o.sli)) + " }\n";
      for (const std::string& w : windows) {
        out += "      - record: ficus_slo:requests:increase" + w + "\n";
        out += "        expr: " + Yq(WithWindow(e.requests, w)) + "\n" + labels_block;
        out += "      - record: ficus_slo:error_ratio:rate" + w + "\n";
        out += "        expr: " + Yq(WithWindow(e.error_ratio, w)) + "\n" + labels_block;
      }
      const std::string sel = "{" + Labels(o) + "}";
      const std::string budget = "(1 - " + Num(o.target) + ")";
      out += "      - record: ficus_slo:error_budget_remaining\n";
      out += "        expr: " +
             Yq("1 - ficus_slo:error_ratio:rate" + slo_window + sel + " / " + budget) + "\n" +
             labels_block;
      for (Severity sev : {Severity::kPage, Severity::kTicket}) {
        std::string expr;
        std::string windows_text;
        for (const AlertRule& r : kAlertRules) {
          if (r.severity != sev) continue;
          const std::string lw(kWindowNames[r.long_window]), sw(kWindowNames[r.short_window]);
          const std::string limit = "(" + Num(r.factor) + " * " + budget + ")";
          if (!expr.empty()) {
            expr += " or ";
            windows_text += ", or ";
          }
          expr += "(ficus_slo:error_ratio:rate" + lw + sel + " > " + limit +
                  " and ficus_slo:error_ratio:rate" + sw + sel + " > " + limit +
                  " and ficus_slo:requests:increase" + lw + sel +
                  " >= " + std::to_string(o.min_requests) + " and ficus_slo:requests:increase" +
                  sw + sel + " >= " + std::to_string(o.min_requests) + ")";
          windows_text += "over " + Num(r.factor) + "x the budget in " + lw + " and " + sw;
        }
        out += "      - alert: FicusSloErrorBudgetBurn\n";
        out += "        expr: " + Yq(expr) + "\n";
        out += "        labels: { severity: " + Yq(SeverityName(sev)) + ", slo: " + Yq(o.slo) +
               ", sli: " + Yq(SliName(o.sli)) + " }\n";
        std::string what =
            o.sli == Sli::kAvailability
                ? std::string("non-5xx responses")
                : "requests within " + config::FormatDuration(o.threshold) + " (le=" + le + ")";
        out += "        annotations:\n";
        out += "          summary: " +
               Yq("SLO " + o.slo + " (" + std::string(SliName(o.sli)) +
                  ") is burning its error budget") +
               "\n";
        out += "          description: " +
               Yq("objective " + Num(o.target) + " of " + what + " over " + slo_window +
                  "; error ratio " + windows_text + "; now {{ $value | humanizePercentage }}") +
               "\n";
      }
    }
  }
  return out;
}

}  // namespace ficus::slo
