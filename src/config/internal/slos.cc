// Sections: slos (objectives over groups of routes; the slo module does the math).
#include "base/latency_buckets.h"
#include "config/internal/reader.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

namespace {

// A latency threshold must be an edge of the latency histogram's buckets: then it is an exact
// `le` bound on /metrics, the SLO engine counts it exactly and the exported Prometheus rules
// compute the same ratio as GET /slo. Otherwise: why not, naming the nearest edges.
std::optional<std::string> NotABucketEdge(Duration threshold) {
  const auto micros = static_cast<uint64_t>(std::chrono::microseconds(threshold).count());
  if (latency_buckets::IsEdgeMicros(micros)) return std::nullopt;
  std::string below, above;
  for (int i = 0; i < latency_buckets::kDecades * latency_buckets::kPerDecade; ++i) {
    const uint64_t edge = latency_buckets::EdgeMicros(i);
    const std::string text =
        FormatDuration(std::chrono::duration_cast<Duration>(std::chrono::microseconds(edge)));
    if (edge < micros) below = text;
    if (edge > micros && above.empty()) above = text;
  }
  return FormatDuration(threshold) +
         " is not a bucket edge of ficus's latency histogram ({1, 1.5, 2, 2.5, 3, 4, 5, 6, "
         "7, 8} x 10^k: 250ms, 300ms, 1s, 2s, ...); the nearest are " +
         below + " and " + above +
         " (an edge is counted exactly by /metrics, GET /slo and `ficus slo rules` alike)";
}

}  // namespace

void Loader::ReadSlos(const Value& v) {
  if (!ExpectList(v)) return;
  size_t i = 0;
  for (auto it = v.node.begin(); it != v.node.end(); ++it, ++i) {
    const Value item = Item(v, *it, i);
    Fields f;
    if (!ReadMap(item,
                 {"name", "routes", "availability", "latency", "window", "min_requests", "webhooks",
                  "ca_file"},
                 &f)) {
      continue;
    }
    Slo slo;
    slo.line = item.loc.line;
    bool ok = true;
    Require(f, item, "name");
    if (const Value* name = f.Get("name")) {
      if (auto s = Name(*name)) {
        slo.name = *s;
        for (size_t k = 0; k < config_.slos.size(); ++k) {
          if (config_.slos[k].name == slo.name) {
            Error(*name, "duplicate SLO name " + Quote(slo.name) + " (also slos[" +
                             std::to_string(k) + "] at line " +
                             std::to_string(config_.slos[k].line) + ")");
            ok = false;
          }
        }
      } else {
        ok = false;
      }
    } else {
      ok = false;
    }
    if (const Value* routes = f.Get("routes")) {
      if (ExpectList(*routes)) {
        if (routes->node.size() == 0) {
          Error(*routes, "must list at least one route name, or \"*\" for every route");
          ok = false;
        }
        bool all = false;
        size_t j = 0;
        for (auto r = routes->node.begin(); r != routes->node.end(); ++r, ++j) {
          const Value rv = Item(*routes, *r, j);
          std::optional<std::string> name = String(rv);
          if (!name) {
            ok = false;
            continue;
          }
          if (*name == "*") {
            all = true;
            continue;
          }
          const bool declared =
              std::any_of(config_.routes.begin(), config_.routes.end(),
                          [&](const Route& route) { return route.name == *name; });
          if (!declared) {
            std::vector<std::string> names;
            for (const Route& route : config_.routes) names.push_back(route.name);
            Error(rv, "route " + Quote(*name) + " is not declared (declared: " +
                          (names.empty() ? std::string("none") : JoinNames(names)) +
                          "; \"*\" means every route)");
            ok = false;
          } else if (std::find(slo.routes.begin(), slo.routes.end(), *name) != slo.routes.end()) {
            Error(rv, "route " + Quote(*name) + " is listed twice");
            ok = false;
          } else {
            slo.routes.push_back(*name);
          }
        }
        if (all && !slo.routes.empty()) {
          Error(*routes, "\"*\" already means every route: list either \"*\" or route names");
          ok = false;
        }
        if (all) slo.routes.clear();
      } else {
        ok = false;
      }
    }
    if (const Value* a = f.Get("availability")) {
      slo.availability = Percent(*a);
      ok = ok && slo.availability.has_value();
    }
    if (const Value* lat = f.Get("latency")) {
      Fields lf;
      if (ReadMap(*lat, {"threshold", "objective"}, &lf)) {
        SloLatency l;
        Require(lf, *lat, "threshold");
        Require(lf, *lat, "objective");
        const Value* threshold = lf.Get("threshold");
        const Value* objective = lf.Get("objective");
        std::optional<Duration> t;
        std::optional<double> o;
        if (threshold) t = DurationIn(*threshold, Duration{1}, std::chrono::minutes(10));
        bool edge = true;
        if (t) {
          if (auto why = NotABucketEdge(*t)) {
            Error(*threshold, *why);
            edge = false;
          }
        }
        if (objective) o = Percent(*objective);
        if (t && edge && o) {
          l.threshold = *t;
          l.objective = *o;
          slo.latency = l;
        } else {
          ok = false;
        }
      } else {
        ok = false;
      }
    }
    if (!f.Get("availability") && !f.Get("latency")) {
      Error(item.loc, item.path,
            "an SLO needs an objective: availability (like 99.9%), latency "
            "({ threshold: 300ms, objective: 99% }), or both");
      ok = false;
    }
    if (const Value* w = f.Get("window")) {
      if (auto d = DurationIn(*w, std::chrono::hours(24), std::chrono::hours(24 * 90))) {
        slo.window = *d;
      } else {
        ok = false;
      }
    }
    if (const Value* m = f.Get("min_requests")) {
      if (auto n = Integer(*m, 0, 1'000'000'000)) {
        slo.min_requests = *n;
      } else {
        ok = false;
      }
    }
    std::string ca_file;  // for the https webhooks below
    if (const Value* c = f.Get("ca_file")) {
      std::string error;
      if (auto path = String(*c); path && ReadableFile(*path, &error)) {
        ca_file = *path;
      } else {
        if (path) Error(*c, error);
        ok = false;
      }
    }
    if (const Value* hooks = f.Get("webhooks")) {
      if (ExpectList(*hooks)) {
        size_t j = 0;
        for (auto h = hooks->node.begin(); h != hooks->node.end(); ++h, ++j) {
          const Value hv = Item(*hooks, *h, j);
          std::optional<std::string> url = String(hv);
          if (!url) {
            ok = false;
            continue;
          }
          Webhook hook;
          std::string error;
          if (!ParseHttpUrl(*url, &hook, &error)) {
            Error(hv, Quote(*url) + ": " + error);
            ok = false;
            continue;
          }
          hook.url = *url;
          hook.ca_file = ca_file;
          slo.webhooks.push_back(std::move(hook));
        }
      } else {
        ok = false;
      }
    }
    // The page alert needs an error rate of 14.4x the budget: with a loose objective that is
    // over 100 %, so it can never fire. Legal, but worth saying.
    for (const auto& [what, objective] :
         {std::pair<const char*, std::optional<double>>{"availability", slo.availability},
          {"latency",
           slo.latency ? std::optional<double>(slo.latency->objective) : std::nullopt}}) {
      if (objective && 14.4 * (1 - *objective) > 1) {
        Warn(item.loc, Sub(item.path, what),
             "with an objective of " + FormatPercent(*objective) +
                 " the fast-burn page alert (14.4x the error budget) can never fire");
      }
    }
    if (ok) config_.slos.push_back(std::move(slo));
  }
}

}  // namespace ficus::config::internal
