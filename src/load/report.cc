// The run's summary as text and as JSON.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/json.h"
#include "base/text.h"
#include "load/load.h"

namespace ficus::load {
namespace {

std::string HumanDuration(double ns) {
  if (ns < 1e6) return Format("%.1fus", ns / 1e3);
  if (ns < 1e9) return Format("%.2fms", ns / 1e6);
  return Format("%.3fs", ns / 1e9);
}

std::string ThresholdValue(const Threshold& t, double v) {
  switch (t.metric) {
    case Threshold::Metric::kErrors:
    case Threshold::Metric::kDropped:
      return Format("%.3f%%", v * 100);
    case Threshold::Metric::kRate:
      return Format("%.1f/s", v);
    default:
      return HumanDuration(v);
  }
}

constexpr std::pair<const char*, double> kReported[] = {
    {"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p99.9", 0.999}, {"p99.99", 0.9999}};

}  // namespace

std::string FormatText(const Summary& s, const std::vector<Threshold>& thresholds) {
  const Stats& st = s.stats;
  std::string out;
  out += Format("mode         %s\n", s.closed ? "closed (as wrk: latency from actual send)"
                                              : "open (latency from intended send time)");
  out += Format("requests     %llu sent, %llu completed, %llu errors",
                static_cast<unsigned long long>(st.sent),
                static_cast<unsigned long long>(st.completed),
                static_cast<unsigned long long>(st.error_count()));
  if (!s.closed)
    out += Format(", %llu dropped, %llu late", static_cast<unsigned long long>(st.dropped),
                  static_cast<unsigned long long>(st.late));
  if (st.aborted)
    out += Format(", %llu in flight at end", static_cast<unsigned long long>(st.aborted));
  out += "\n";
  if (s.closed)
    out += Format("rate         %.1f req/s over %.3fs\n", s.achieved_rate, s.elapsed_s);
  else
    out += Format("rate         %.1f req/s achieved, %.1f target, over %.3fs\n", s.achieved_rate,
                  s.target_rate, s.elapsed_s);
  if (!s.profile.empty()) out += Format("profile      %s\n", s.profile.c_str());
  if (!s.per_second.empty() && s.per_second.size() <= 120) {  // longer runs: see --json
    out += "per second  ";
    for (size_t i = 0; i < s.per_second.size(); ++i) {
      if (i > 0 && i % 8 == 0) out += "\n            ";
      if (s.closed)
        out += Format(" %llu", static_cast<unsigned long long>(s.per_second[i].achieved));
      else
        out += Format(" %llu/%.0f", static_cast<unsigned long long>(s.per_second[i].achieved),
                      s.per_second[i].target);
    }
    out += s.closed ? " (sent)\n" : " (sent/target)\n";
  }
  out += "latency      ";
  for (const auto& [name, q] : kReported) out += Format("%10s", name);
  out += Format("%10s%10s\n", "max", "mean");
  auto row = [&](const char* label, const Histogram& h) {
    out += Format("  %-11s", label);
    for (const auto& [name, q] : kReported)
      out += Format("%10s", HumanDuration(static_cast<double>(h.Percentile(q))).c_str());
    out += Format("%10s%10s\n", HumanDuration(static_cast<double>(h.max())).c_str(),
                  HumanDuration(h.mean()).c_str());
  };
  row(s.closed ? "measured" : "corrected", st.corrected);
  if (!s.closed) row("uncorrected", st.uncorrected);
  out += "status      ";
  bool any = false;
  for (size_t i = 0; i < st.status.size(); ++i) {
    if (st.status[i]) {
      out += Format(" %zu=%llu", i, static_cast<unsigned long long>(st.status[i]));
      any = true;
    }
  }
  out += any ? "\n" : " none\n";
  out += "errors      ";
  for (size_t i = 0; i < kErrorTypes; ++i)
    out += Format(" %s=%llu", std::string(ErrorTypeName(static_cast<ErrorType>(i))).c_str(),
                  static_cast<unsigned long long>(st.errors[i]));
  out += "\n";
  out += Format("bytes        in %llu, out %llu\n", static_cast<unsigned long long>(st.bytes_in),
                static_cast<unsigned long long>(st.bytes_out));
  for (const Threshold& t : thresholds) {
    auto [v, ok] = Evaluate(t, s);
    out += Format("threshold    %-20s %s (measured %s)\n", t.text.c_str(), ok ? "ok" : "FAILED",
                  ThresholdValue(t, v).c_str());
  }
  return out;
}

std::string FormatJson(const Summary& s, const std::vector<Threshold>& thresholds) {
  const Stats& st = s.stats;
  auto u = [](uint64_t v) { return std::to_string(v); };
  auto ms = [](double ns) { return Format("%.6f", ns / 1e6); };
  auto latency = [&](const Histogram& h) {
    std::string o = "{";
    for (const auto& [name, q] : kReported)
      o.append("\"")
          .append(name)
          .append("\":")
          .append(ms(static_cast<double>(h.Percentile(q))))
          .append(",");
    o.append("\"max\":").append(ms(static_cast<double>(h.max())));
    o.append(",\"mean\":").append(ms(h.mean()));
    o.append(",\"count\":").append(u(h.count())).append("}");
    return o;
  };
  std::string o = "{";
  o.append("\"mode\":\"").append(s.closed ? "closed" : "open").append("\"");
  o.append(",\"elapsed_s\":").append(Format("%.6f", s.elapsed_s));
  o.append(",\"target_rate\":").append(Format("%.3f", s.target_rate));
  o.append(",\"achieved_rate\":").append(Format("%.3f", s.achieved_rate));
  o.append(",\"per_second\":[");
  for (size_t i = 0; i < s.per_second.size(); ++i) {
    if (i) o.append(",");
    o.append("{\"t\":").append(std::to_string(i));
    o.append(",\"target\":").append(Format("%.3f", s.per_second[i].target));
    o.append(",\"achieved\":").append(u(s.per_second[i].achieved));
    o.append(",\"completed\":").append(u(s.per_second[i].completed));
    o.append(",\"errors\":").append(u(s.per_second[i].errors));
    o.append(",\"p50_ms\":").append(ms(static_cast<double>(s.per_second[i].p50_ns)));
    o.append(",\"p99_ms\":").append(ms(static_cast<double>(s.per_second[i].p99_ns))).append("}");
  }
  o.append("]");
  o.append(",\"requests\":{\"scheduled\":").append(u(st.scheduled));
  o.append(",\"sent\":").append(u(st.sent));
  o.append(",\"completed\":").append(u(st.completed));
  o.append(",\"dropped\":").append(u(st.dropped));
  o.append(",\"late\":").append(u(st.late));
  o.append(",\"in_flight_at_end\":").append(u(st.aborted)).append("}");
  o.append(",\"latency_ms\":{\"corrected\":").append(latency(st.corrected));
  o.append(",\"uncorrected\":").append(latency(st.uncorrected));
  o.append(",\"succeeded\":").append(latency(st.succeeded)).append("}");
  o.append(",\"status\":{");
  bool first = true;
  for (size_t i = 0; i < st.status.size(); ++i) {
    if (!st.status[i]) continue;
    if (!first) o.append(",");
    first = false;
    o.append("\"").append(std::to_string(i)).append("\":").append(u(st.status[i]));
  }
  o.append("},\"errors\":{");
  for (size_t i = 0; i < kErrorTypes; ++i) {
    if (i) o.append(",");
    o.append("\"")
        .append(ErrorTypeName(static_cast<ErrorType>(i)))
        .append("\":")
        .append(u(st.errors[i]));
  }
  o.append("},\"error_ratio\":").append(Format("%.6f", s.error_ratio()));
  o.append(",\"bytes\":{\"in\":")
      .append(u(st.bytes_in))
      .append(",\"out\":")
      .append(u(st.bytes_out));
  o.append("},\"thresholds\":[");
  for (size_t i = 0; i < thresholds.size(); ++i) {
    auto [v, ok] = Evaluate(thresholds[i], s);
    if (i) o.append(",");
    o.append("{\"threshold\":");
    AppendJsonString(o, thresholds[i].text);
    o.append(",\"ok\":").append(ok ? "true" : "false");
    o.append(",\"value\":").append(std::isfinite(v) ? Format("%.6f", v) : "null").append("}");
  }
  o.append("]}\n");
  return o;
}

}  // namespace ficus::load
