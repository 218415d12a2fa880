// `ficus slo rules`: the engine's SLIs, burn rates and alerts as Prometheus recording and
// alerting rules over the metrics ficus exports (src/observe's Prometheus render).
#include <charconv>
#include <cstdio>

#include "slo/slo.h"

namespace ficus::slo {

namespace {

// The `le` bounds of ficus_route_request_duration_seconds as observe renders them. A copy (the
// render's table is internal to observe); tests/slo renders a registry and compares.
struct Le {
  uint64_t micros;
  std::string_view text;
};
constexpr Le kLe[] = {
    {500, "0.0005"},   {1'000, "0.001"},   {2'500, "0.0025"},  {5'000, "0.005"},
    {10'000, "0.01"},  {25'000, "0.025"},  {50'000, "0.05"},   {100'000, "0.1"},
    {250'000, "0.25"}, {500'000, "0.5"},   {1'000'000, "1"},   {2'500'000, "2.5"},
    {5'000'000, "5"},  {10'000'000, "10"}, {30'000'000, "30"}, {60'000'000, "60"},
};
constexpr auto kLeMicros = [] {
  std::array<uint64_t, std::size(kLe)> a{};
  for (size_t i = 0; i < std::size(kLe); ++i) a[i] = kLe[i].micros;
  return a;
}();

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

Exprs ExprsFor(const Objective& o, const Le* le) {
  Exprs e;
  if (o.sli == Sli::kAvailability) {
    const std::string all = "ficus_route_responses_total" + Selector(o, "");
    const std::string bad = "ficus_route_responses_total" + Selector(o, "class=\"5xx\"");
    e.requests = "sum(increase(" + all + "[{W}]))";
    e.error_ratio = "sum(rate(" + bad + "[{W}])) / sum(rate(" + all + "[{W}]))";
  } else {
    const std::string count = "ficus_route_request_duration_seconds_count" + Selector(o, "");
    const std::string good = "ficus_route_request_duration_seconds_bucket" +
                             Selector(o, "le=\"" + std::string(le->text) + "\"");
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
    if (o.sli != Sli::kLatency) continue;
    const Le* le = nullptr;
    for (const Le& b : kLe) {
      if (static_cast<int64_t>(b.micros) <= std::chrono::microseconds(o.threshold).count()) le = &b;
    }
    if (!le) le = &kLe[0];  // below every bound (the config allows >= 1ms: never)
    const std::string threshold = config::FormatDuration(o.threshold);
    if (std::chrono::microseconds(le->micros) == o.threshold) continue;
    std::string note =
        "slo '" + o.slo + "' latency: threshold " + threshold +
        " is not a bucket bound ficus exports; the rules count requests within le=\"" +
        std::string(le->text) +
        "\" as good (stricter than ficus's own SLO engine, which counts exactly "
        "up to its largest internal bucket edge <= " +
        threshold + ")";
    local_notes.push_back(note);
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
      const Le* le = &kLe[0];
      for (const Le& b : kLe) {
        if (static_cast<int64_t>(b.micros) <= std::chrono::microseconds(o.threshold).count()) {
          le = &b;
        }
      }
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
        std::string what = o.sli == Sli::kAvailability
                               ? std::string("non-5xx responses")
                               : "requests within " + config::FormatDuration(o.threshold) +
                                     " (le=" + std::string(le->text) + ")";
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
