// `ficus prove` results in the report: the JSON kept in the timeline's `proof` events, read back
// and rendered as a before/after table (and a chart in HTML).
#include "advisor/internal/proof.h"

#include <algorithm>
#include <boost/json.hpp>

#include "base/json.h"
#include "base/text.h"

namespace ficus::advisor {
namespace json = boost::json;
namespace {

void PhaseJson(JsonWriter& w, const ProofPhase& p) {
  w.BeginObject();
  w.Key("rate").Number(p.rate, 4).Key("rate_low").Number(p.rate_low, 4);
  w.Key("rate_high").Number(p.rate_high, 4).Key("rate_bounded").Bool(p.rate_bounded);
  w.Key("p50_ms").Number(p.p50_ms, 4).Key("p99_ms").Number(p.p99_ms, 4);
  w.Key("error_ratio").Number(p.error_ratio, 6).Key("requests").Uint(p.requests);
  w.Key("origin_rps").Number(p.origin_rps, 4);
  w.Key("origin_concurrency").Number(p.origin_concurrency, 4);
  w.EndObject();
}

double Num(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_double()) return v->as_double();
  if (v->is_int64()) return static_cast<double>(v->as_int64());
  if (v->is_uint64()) return static_cast<double>(v->as_uint64());
  return 0;
}

std::string Str(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

ProofPhase PhaseOf(const json::value* v) {
  ProofPhase p;
  if (!v || !v->is_object()) return p;
  const json::object& o = v->as_object();
  p.rate = Num(o, "rate");
  p.rate_low = Num(o, "rate_low");
  p.rate_high = Num(o, "rate_high");
  const json::value* b = o.if_contains("rate_bounded");
  p.rate_bounded = b && b->is_bool() && b->as_bool();
  p.p50_ms = Num(o, "p50_ms");
  p.p99_ms = Num(o, "p99_ms");
  p.error_ratio = Num(o, "error_ratio");
  p.requests = static_cast<uint64_t>(Num(o, "requests"));
  p.origin_rps = Num(o, "origin_rps");
  p.origin_concurrency = Num(o, "origin_concurrency");
  return p;
}

std::string Rate(const ProofPhase& p) {
  if (p.rate == 0 && p.rate_high == 0 && p.requests > 0 && p.rate_low == 0) return "-";
  return Format("%s%.0f [%.0f-%.0f]", p.rate_bounded ? ">=" : "", p.rate, p.rate_low, p.rate_high);
}

std::string Change(double before, double after) {
  if (before <= 0) return "";
  return Format("%+.0f%%", (after / before - 1) * 100);
}

}  // namespace

std::string ProofJson(const Proof& p) {
  JsonWriter w;
  w.BeginObject();
  w.Key("ts_ms").Int(p.ts_ms).Key("finding").String(p.finding).Key("route").String(p.route);
  w.Key("load").String(p.load).Key("change").String(p.change);
  w.Key("threshold_ms").Number(p.threshold_ms, 4);
  w.Key("before");
  PhaseJson(w, p.before);
  w.Key("after");
  PhaseJson(w, p.after);
  w.Key("p_latency").Number(p.p_latency, 6).Key("p_errors").Number(p.p_errors, 6);
  w.Key("outcome").String(p.outcome).Key("decision").String(p.decision).Key("why").String(p.why);
  w.EndObject();
  return std::move(w).Take();
}

std::optional<Proof> ParseProof(std::string_view text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.as_object();
  Proof p;
  p.ts_ms = static_cast<int64_t>(Num(o, "ts_ms"));
  p.finding = Str(o, "finding");
  if (p.finding.empty()) return std::nullopt;
  p.route = Str(o, "route");
  p.load = Str(o, "load");
  p.change = Str(o, "change");
  p.threshold_ms = Num(o, "threshold_ms");
  p.before = PhaseOf(o.if_contains("before"));
  p.after = PhaseOf(o.if_contains("after"));
  p.p_latency = Num(o, "p_latency");
  p.p_errors = Num(o, "p_errors");
  p.outcome = Str(o, "outcome");
  p.decision = Str(o, "decision");
  p.why = Str(o, "why");
  return p;
}

namespace internal {

std::vector<Proof> ReadProofs(telemetry::Store& store, int64_t from_ms, int64_t to_ms) {
  std::vector<Proof> out;
  for (const telemetry::Event& e : store.Events(from_ms, to_ms, kProofEvent, 1000)) {
    if (auto p = ParseProof(e.note)) out.push_back(std::move(*p));
  }
  std::reverse(out.begin(), out.end());  // Events are newest first
  return out;
}

std::string ProofsText(const Report& r) {
  if (r.proofs.empty()) return "";
  std::string o = "\nProofs (ficus prove: the same load before and after each remedy)\n";
  o += Format("  %-26s %-22s %-22s %9s %9s %8s %8s %9s %9s  %s\n", "finding", "rate before",
              "rate after", "p99 before", "p99 after", "err bef", "err aft", "origin r/s",
              "origin conc", "decision");
  for (const Proof& p : r.proofs) {
    o += Format(
        "  %-26s %-22s %-22s %9.1f %9.1f %7.2f%% %7.2f%% %4.0f>%-4.0f %4.1f>%-4.1f  %s (%s)\n",
        p.finding.c_str(), Rate(p.before).c_str(), Rate(p.after).c_str(), p.before.p99_ms,
        p.after.p99_ms, p.before.error_ratio * 100, p.after.error_ratio * 100, p.before.origin_rps,
        p.after.origin_rps, p.before.origin_concurrency, p.after.origin_concurrency,
        p.decision.c_str(), p.outcome.c_str());
    o += "      " + p.why + "\n";
  }
  return o;
}

std::string ProofsMarkdown(const Report& r) {
  if (r.proofs.empty()) return "";
  std::string o =
      "\n## Proofs: before and after\n\n`ficus prove` applied each remedy, ran the same load "
      "again and kept the change only when it helped beyond the statistics' interval.\n\n"
      "| finding | load | rate before | rate after | p99 before ms | p99 after ms | errors "
      "before | errors after | origin req/s | decision | why |\n|---|---|---|---|---|---|---|---|"
      "---|---|---|\n";
  for (const Proof& p : r.proofs) {
    o += Format(
        "| %s | %s | %s | %s | %.1f | %.1f (%s) | %.2f%% | %.2f%% | %.0f &rarr; %.0f | "
        "**%s** (%s) | %s |\n",
        p.finding.c_str(), p.load.c_str(), Rate(p.before).c_str(), Rate(p.after).c_str(),
        p.before.p99_ms, p.after.p99_ms, Change(p.before.p99_ms, p.after.p99_ms).c_str(),
        p.before.error_ratio * 100, p.after.error_ratio * 100, p.before.origin_rps,
        p.after.origin_rps, p.decision.c_str(), p.outcome.c_str(), p.why.c_str());
  }
  return o;
}

std::string ProofsJson(const Report& r) {
  std::string o = "\"proofs\":[";
  for (size_t i = 0; i < r.proofs.size(); ++i) o += (i ? "," : "") + ProofJson(r.proofs[i]);
  return o + "]";
}

std::string ProofsHtml(const Report& r) {
  if (r.proofs.empty()) return "";
  std::string o =
      "<section id=\"proofs\"><h2>Proofs: before and after</h2><p><code>ficus prove</code> "
      "applied each remedy, ran the same load again and kept the change only when it helped "
      "beyond the statistics' interval.</p><table><tr><th>finding</th><th>load</th><th>rate "
      "before</th><th>rate after</th><th>p99 before ms</th><th>p99 after ms</th><th>errors "
      "before</th><th>errors after</th><th>origin req/s</th><th>decision</th><th>why</th></tr>";
  for (const Proof& p : r.proofs) {
    o += Format(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%.1f</td><td>%.1f (%s)</td>"
        "<td>%.2f%%</td><td>%.2f%%</td><td>%.0f &rarr; %.0f</td><td><b>%s</b> (%s)</td><td>%s</td>"
        "</tr>",
        HtmlEscape(p.finding).c_str(), HtmlEscape(p.load).c_str(), Rate(p.before).c_str(),
        Rate(p.after).c_str(), p.before.p99_ms, p.after.p99_ms,
        Change(p.before.p99_ms, p.after.p99_ms).c_str(), p.before.error_ratio * 100,
        p.after.error_ratio * 100, p.before.origin_rps, p.after.origin_rps,
        HtmlEscape(p.decision).c_str(), HtmlEscape(p.outcome).c_str(), HtmlEscape(p.why).c_str());
  }
  o += "</table>";
  // p99 before and after per finding: two bars a row, on one linear axis.
  const int row = 40, label_w = 190, w = 640;
  const int h = static_cast<int>(r.proofs.size()) * row + 24;
  double max = 0;
  for (const Proof& p : r.proofs) max = std::max({max, p.before.p99_ms, p.after.p99_ms});
  o += Format(
      "<h3>p99 before and after</h3><svg id=\"chart-proofs\" class=\"chart\" viewBox=\"0 0 %d "
      "%d\" width=\"%d\" height=\"%d\" role=\"img\">",
      w, h, w, h);
  for (size_t i = 0; i < r.proofs.size(); ++i) {
    const Proof& p = r.proofs[i];
    const int y = static_cast<int>(i) * row + 4;
    o += Format("<text x=\"0\" y=\"%d\" class=\"l\">%s</text>", y + 20,
                HtmlEscape(p.finding).c_str());
    const double scale = max > 0 ? (w - label_w - 130) / max : 0;
    const double bw = p.before.p99_ms * scale, aw = p.after.p99_ms * scale;
    o += Format(
        "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"15\" "
        "fill=\"#999\"/><text x=\"%.1f\" y=\"%d\" class=\"v\">before %.1f ms</text>",
        label_w, y, bw, label_w + bw + 6, y + 12, p.before.p99_ms);
    o += Format(
        "<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"15\"/><text "
        "x=\"%.1f\" y=\"%d\" class=\"v\">after %.1f ms</text>",
        label_w, y + 17, aw, label_w + aw + 6, y + 29, p.after.p99_ms);
  }
  return o + "</svg></section>\n";
}

}  // namespace internal
}  // namespace ficus::advisor
