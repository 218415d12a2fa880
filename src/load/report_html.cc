// `--html FILE`: one self-contained page. Inline SVG and CSS only: no script, no fonts, no
// network, so it opens anywhere and can be attached to a CI run as is.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/text.h"
#include "load/load.h"

namespace ficus::load {
namespace {

std::string Ms(double ns) { return Format("%.3f ms", ns / 1e6); }

// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
double NiceMax(double v) {
  if (!(v > 0)) return 1;
  double p = std::pow(10, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (v <= m * p) return m * p;
  return 10 * p;
}

struct Series {
  std::string name;
  std::string color;
  std::vector<double> values;
  bool dashed = false;
};

// A line chart over the run's seconds (x = second, y from 0 to a nice maximum).
std::string Chart(const std::string& id, const std::string& title, const std::string& unit,
                  const std::vector<Series>& series) {
  constexpr int kW = 860, kH = 260, kLeft = 70, kRight = 20, kTop = 30, kBottom = 40;
  const int pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  size_t n = 0;
  double top = 0;
  for (const auto& s : series) {
    n = std::max(n, s.values.size());
    for (double v : s.values) top = std::max(top, v);
  }
  top = NiceMax(top);
  auto x = [&](size_t i) {
    return kLeft + (n <= 1 ? pw / 2.0 : static_cast<double>(i) * pw / static_cast<double>(n - 1));
  };
  auto y = [&](double v) { return kTop + ph - v / top * ph; };
  std::string o = Format(
      "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">",
      id.c_str(), kW, kH, kW, kH);
  o += "<title>" + HtmlEscape(title) + "</title>";
  o += Format("<text x=\"%d\" y=\"18\" class=\"t\">", kLeft) + HtmlEscape(title) + "</text>";
  for (int k = 0; k <= 4; ++k) {  // horizontal grid and y labels
    double v = top * k / 4;
    o += Format("<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"g\"/>", kLeft, y(v),
                kW - kRight, y(v));
    o += Format("<text x=\"%d\" y=\"%.1f\" class=\"l\" text-anchor=\"end\">%g %s</text>", kLeft - 6,
                y(v) + 4, v, unit.c_str());
  }
  size_t step = std::max<size_t>(1, n / 10);
  for (size_t i = 0; i < n; i += step)
    o += Format("<text x=\"%.1f\" y=\"%d\" class=\"l\" text-anchor=\"middle\">%zus</text>", x(i),
                kH - kBottom + 16, i);
  o += Format("<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"a\"/>", kLeft, kTop + ph,
              kW - kRight, kTop + ph);
  int legend = kLeft + 260;
  for (const auto& s : series) {
    std::string points;
    for (size_t i = 0; i < s.values.size(); ++i)
      points += Format("%.1f,%.1f ", x(i), y(std::min(s.values[i], top)));
    o += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"2\"" +
         (s.dashed ? std::string(" stroke-dasharray=\"6 4\"") : std::string()) +
         " class=\"series\" data-name=\"" + HtmlEscape(s.name) + "\" points=\"" + points + "\"/>";
    o += Format("<rect x=\"%d\" y=\"8\" width=\"14\" height=\"4\" fill=\"%s\"/>", legend,
                s.color.c_str());
    o += Format("<text x=\"%d\" y=\"14\" class=\"l\">", legend + 18) + HtmlEscape(s.name) +
         "</text>";
    legend += 150;
  }
  o += "</svg>\n";
  return o;
}

}  // namespace

std::string FormatHtml(const Summary& s, const std::vector<Threshold>& thresholds) {
  const Stats& st = s.stats;
  std::vector<double> p50, p99, target, achieved, errors;
  for (const auto& sec : s.per_second) {
    p50.push_back(static_cast<double>(sec.p50_ns) / 1e6);
    p99.push_back(static_cast<double>(sec.p99_ns) / 1e6);
    target.push_back(sec.target);
    achieved.push_back(static_cast<double>(sec.achieved));
    errors.push_back(static_cast<double>(sec.errors));
  }
  std::string o;
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  o += "<title>ficus load report</title>\n<style>\n"
       "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
       "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
       "table{border-collapse:collapse;margin:8px 0}"
       "td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       "th{background:#f3f3f3}td.k{text-align:left}"
       ".chart .g{stroke:#e4e4e4}.chart .a{stroke:#888}.chart .l{font-size:11px;fill:#555}"
       ".chart .t{font-size:13px;font-weight:600;fill:#222}"
       ".fail{color:#b00020;font-weight:600}.ok{color:#1b7f3b}\n</style>\n</head>\n<body>\n";
  o += "<h1>ficus load report</h1>\n<p>";
  o += s.closed ? "Closed model (as wrk: latency from the actual send time)"
                : "Open model (latency from the intended send time, coordinated-omission "
                  "corrected)";
  if (!s.profile.empty()) o += " &middot; profile <code>" + HtmlEscape(s.profile) + "</code>";
  o += Format(" &middot; %.3f s</p>\n", s.elapsed_s);
  o += "<h2>Latency over time</h2>\n";
  o += Chart("latency", "latency per second (by completion time)", "ms",
             {{"p50", "#1f77b4", p50}, {"p99", "#d62728", p99}});
  o += "<h2>Rate over time</h2>\n";
  std::vector<Series> rate;
  if (!s.closed) rate.push_back({"target", "#7f7f7f", target, true});
  rate.push_back({"achieved (sent)", "#2ca02c", achieved});
  rate.push_back({"errors", "#d62728", errors});
  o += Chart("rate", "requests per second", "/s", rate);

  o += "<h2>Summary</h2>\n<table id=\"summary\">\n";
  auto row = [&o](const std::string& k, const std::string& v) {
    o += "<tr><td class=\"k\">" + HtmlEscape(k) + "</td><td>" + HtmlEscape(v) + "</td></tr>\n";
  };
  auto u = [](uint64_t v) { return std::to_string(v); };
  row("requests sent", u(st.sent));
  row("completed", u(st.completed));
  if (!s.closed) {
    row("scheduled", u(st.scheduled));
    row("dropped", u(st.dropped));
    row("late (> 1 ms)", u(st.late));
  }
  row("in flight at end", u(st.aborted));
  row("achieved rate", Format("%.1f req/s", s.achieved_rate));
  if (!s.closed) row("target rate", Format("%.1f req/s", s.target_rate));
  row("error ratio", Format("%.3f %%", s.error_ratio() * 100));
  row("bytes in / out", u(st.bytes_in) + " / " + u(st.bytes_out));
  o += "</table>\n<h2>Latency</h2>\n<table id=\"latency-table\">\n<tr><th></th>";
  static constexpr std::pair<const char*, double> kQ[] = {
      {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}};
  for (const auto& [name, q] : kQ) o += std::string("<th>") + name + "</th>";
  o += "<th>max</th><th>mean</th></tr>\n";
  auto lat = [&](const char* label, const Histogram& h) {
    o += std::string("<tr><td class=\"k\">") + label + "</td>";
    for (const auto& [name, q] : kQ)
      o += "<td>" + Ms(static_cast<double>(h.Percentile(q))) + "</td>";
    o += "<td>" + Ms(static_cast<double>(h.max())) + "</td><td>" + Ms(h.mean()) + "</td></tr>\n";
  };
  lat(s.closed ? "measured" : "corrected", st.corrected);
  if (!s.closed) lat("uncorrected", st.uncorrected);
  o += "</table>\n<h2>Status codes and errors</h2>\n<table id=\"status\">\n";
  o += "<tr><th>status / error</th><th>count</th></tr>\n";
  for (size_t i = 0; i < st.status.size(); ++i)
    if (st.status[i]) row(std::to_string(i), u(st.status[i]));
  for (size_t i = 0; i < kErrorTypes; ++i)
    row(std::string(ErrorTypeName(static_cast<ErrorType>(i))), u(st.errors[i]));
  o += "</table>\n";
  if (!thresholds.empty()) {
    o += "<h2>Thresholds</h2>\n<table id=\"thresholds\">\n<tr><th>threshold</th><th>result</th>"
         "</tr>\n";
    for (const auto& t : thresholds) {
      bool ok = Evaluate(t, s).second;
      o += "<tr><td class=\"k\">" + HtmlEscape(t.text) + "</td><td class=\"" +
           (ok ? "ok\">ok" : "fail\">FAILED") + "</td></tr>\n";
    }
    o += "</table>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

}  // namespace ficus::load
