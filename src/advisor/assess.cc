// `ficus assess`: a step load per route (or for a scenario) through the running gateway, the
// capacity knee of each, recorded into the telemetry store.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "advisor/advisor.h"
#include "base/text.h"
#include "load/load.h"
#include "slo/slo.h"

namespace ficus::advisor {
namespace {

constexpr double kMaxErrorRatio = 0.01;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What the route answered badly, over scheduled: transport errors and 5xx answers. A failing
// step stops "by errors" only for these: the application (or the path to it) failed.
double ErrorRatio(const load::Summary& s) {
  const uint64_t bad = s.stats.error_count() + s.stats.status_at_least(500);
  const uint64_t all = std::max<uint64_t>({s.stats.scheduled, s.stats.sent, 1});
  return static_cast<double>(bad) / static_cast<double>(all);
}

// Requests the generator had to drop (no free connection: the gateway is not keeping up), over
// scheduled. They fail the step too, as saturation (its latency), not as the route's errors.
double DropRatio(const load::Summary& s) {
  const uint64_t all = std::max<uint64_t>({s.stats.scheduled, s.stats.sent, 1});
  return static_cast<double>(s.stats.dropped) / static_cast<double>(all);
}

std::string StepsJson(const std::vector<Step>& steps) {
  std::string out = "[";
  for (const Step& s : steps) {
    if (out.size() > 1) out += ",";
    out += Format(
        R"({"rate":%.2f,"achieved":%.2f,"p99_ms":%.3f,"error_ratio":%.5f,"requests":%llu,"ok":%s})",
        s.rate, s.achieved, s.p99_ms, s.error_ratio, static_cast<unsigned long long>(s.requests),
        s.ok ? "true" : "false");
  }
  return out + "]";
}

// One target's line in the results table: the knee, a lower bound ("≥"), a failure at the
// first rate (with that step's figures, not a row of zeros), or not assessed.
std::string StepLine(const std::string& target, const Knee& k, const std::vector<Step>& steps,
                     double threshold_ms) {
  if (k.stop_reason == "not_assessed")
    return Format("%-28s %10s %10s %8s %6zu  not assessed: mostly 4xx answers", target.c_str(), "-",
                  "-", "-", steps.size());
  if (k.rate <= 0 && !steps.empty()) {
    const Step& first = steps.front();
    return Format(
        "%-28s %10s %10.1f %7.2f%% %6zu  failed at its first rate %.1f req/s: %s (p99 target "
        "%.0f ms)",
        target.c_str(), Format("< %.1f", first.rate).c_str(), first.p99_ms, first.error_ratio * 100,
        steps.size(), first.rate, k.stop_reason.c_str(), threshold_ms);
  }
  const bool bound = k.stop_reason == "envelope" || k.stop_reason == "duration";
  return Format("%-28s %10s %10.1f %7.2f%% %6zu  %s%s (p99 target %.0f ms)", target.c_str(),
                Format(bound ? ">= %.1f" : "%.1f", k.rate).c_str(), k.p99_ms, k.error_ratio * 100,
                steps.size(), k.stop_reason.c_str(),
                bound ? ": a lower bound, no knee reached" : "", threshold_ms);
}

struct Target {
  std::string name;  // "route:NAME" or "scenario:FILE"
  double threshold_ms = 0;
  load::Options base;
  size_t mix = 0;  // > 1: the route's recorded requests, this many, weighted (a scenario)
};

}  // namespace

SyntheticKey::SyntheticKey(const std::string& host, int port, const std::string& token,
                           int64_t ttl_s) {
  if (token.empty()) {
    why_ = "admin.token is not set";
    return;
  }
  hook_.host = host == "0.0.0.0" || host.empty() ? "127.0.0.1" : host == "::" ? "::1" : host;
  hook_.port = port;
  hook_.target = "/synthetic-key";
  auth_ = {{"Authorization", "Bearer " + token}};
  std::random_device rd;
  std::string key;
  for (int i = 0; i < 4; ++i) key += Format("%08x", static_cast<unsigned>(rd()));
  Outcome<int> r =
      slo::HttpPost(hook_,
                    Format(R"({"key":"%s","ttl_seconds":%lld})", key.c_str(),
                           static_cast<long long>(std::clamp<int64_t>(ttl_s, 1, 3600))),
                    std::chrono::milliseconds(3000), auth_);
  if (r && *r == 200) {
    key_ = std::move(key);
  } else {
    why_ = r ? Format("the admin API answered %d to POST /synthetic-key", *r)
             : "the admin API is unreachable: " + r.message();
  }
}

SyntheticKey::SyntheticKey(const config::Config& cfg, int64_t ttl_s)
    : SyntheticKey(cfg.admin.address, cfg.admin.port, cfg.admin.token, ttl_s) {}

SyntheticKey::~SyntheticKey() {
  // Best effort: a key left registered expires with its ttl.
  if (!key_.empty())
    (void)slo::HttpPost(hook_, R"({"key":""})", std::chrono::milliseconds(3000), auth_);
}

Knee FindKnee(const std::vector<Step>& steps, double threshold_ms, bool out_of_time) {
  Knee k;
  for (const Step& s : steps) {
    if (!s.ok) {
      k.stop_reason = s.error_ratio >= kMaxErrorRatio ? "errors" : "latency";
      if (s.p99_ms > threshold_ms && s.error_ratio < kMaxErrorRatio) k.stop_reason = "latency";
      return k;
    }
    k.rate = s.rate;
    k.p99_ms = s.p99_ms;
    k.error_ratio = s.error_ratio;
  }
  k.stop_reason = out_of_time ? "duration" : "envelope";
  return k;
}

std::optional<RouteRequest> RequestFor(const config::Route& route) {
  const config::RouteMatch& m = route.match;
  if (!m.path_regex.empty() || !m.headers.empty()) return std::nullopt;
  RouteRequest r;
  if (!m.path.empty()) {
    r.path = m.path;
  } else if (!m.path_prefix.empty()) {
    r.path = m.path_prefix;
  }
  if (!m.methods.empty()) {
    // A read when the route takes one (safe to repeat), else its first method.
    auto get = std::find(m.methods.begin(), m.methods.end(), "GET");
    r.method = get != m.methods.end() ? "GET" : m.methods.front();
  }
  if (r.method == "POST" || r.method == "PUT" || r.method == "PATCH") r.body = "{}";
  return r;
}

double ThresholdMsFor(const config::Config& config, const std::string& route, double fallback_ms) {
  std::optional<double> best;
  for (const config::Slo& slo : config.slos) {
    if (!slo.latency) continue;
    const bool names = slo.routes.empty() ||
                       std::find(slo.routes.begin(), slo.routes.end(), route) != slo.routes.end();
    if (!names) continue;
    const double ms = static_cast<double>(slo.latency->threshold.count());
    best = best ? std::min(*best, ms) : ms;
  }
  return best.value_or(fallback_ms);
}

int AssessCommand(const AssessOptions& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "ficus assess: %s\n", m.c_str());
    return 2;
  };
  config::LoadResult loaded = config::LoadFile(o.config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 2;
  }
  const config::Config& cfg = *loaded.config;
  if (!(o.max_rate > 0) || !std::isfinite(o.max_rate)) return fail("--max-rate must be > 0");
  if (o.steps < 1 || o.steps > 50) return fail("--steps must be 1..50");
  std::string why;
  auto max_ns = load::ParseDuration(o.max_duration, &why);
  if (!max_ns) return fail("--max-duration: " + why);
  if (*max_ns < 1'000'000'000) return fail("--max-duration must be at least 1s");
  auto fallback = load::ParseDuration(o.p99, &why);
  if (!fallback) return fail("--p99: " + why);
  if (*fallback <= 0) return fail("--p99 must be positive, such as 300ms");
  if (cfg.listeners.empty()) return fail("the config has no listener");
  const config::Listener& l = cfg.listeners.front();
  const std::string host = (l.address == "0.0.0.0" || l.address.empty()) ? "127.0.0.1"
                           : l.address == "::"                           ? "[::1]"
                           : l.address.find(':') != std::string::npos
                               ? std::string("[").append(l.address).append("]")
                               : l.address;
  const std::string base_url = std::string("http://") + host + ":" + std::to_string(l.port);
  const double fallback_ms = static_cast<double>(*fallback) / 1e6;

  std::vector<Target> targets;
  std::vector<std::string> skipped;     // routes assess cannot build a request for
  std::vector<std::string> temp_files;  // the recorded mixes' scenarios, removed at the end
  struct TempFiles {
    std::vector<std::string>* files;
    ~TempFiles() {
      for (const std::string& f : *files) std::filesystem::remove(f);
    }
  } cleanup{&temp_files};
  if (!o.scenario.empty()) {
    if (!o.routes.empty()) return fail("give --routes or --scenario, not both");
    Target t;
    t.name = "scenario:" + std::filesystem::path(o.scenario).filename().string();
    // A scenario's p99 spans every route in it: it is held to the loosest latency target
    // (each route's own target is checked by assessing the route).
    t.threshold_ms = 0;
    for (const config::Slo& slo : cfg.slos) {
      if (slo.latency)
        t.threshold_ms =
            std::max(t.threshold_ms, static_cast<double>(slo.latency->threshold.count()));
    }
    if (t.threshold_ms == 0) t.threshold_ms = fallback_ms;
    t.base.url = o.scenario;
    t.base.target = base_url;
    targets.push_back(std::move(t));
  } else {
    for (const config::Route& route : cfg.routes) {
      if (!o.routes.empty() &&
          std::find(o.routes.begin(), o.routes.end(), route.name) == o.routes.end())
        continue;
      // What the route answered users: its recorded requests (query strings and bodies, from
      // its `record:` capture; those the access log saw answered 2xx/3xx when there is one),
      // else the access log's (a regex route too; not a header match: neither has them all),
      // else a request its match accepts.
      std::optional<RouteRequest> req;
      const bool logged = cfg.access_log.enabled && cfg.access_log.path != "stdout";
      std::vector<WeightedRequest> mix;
      if (route.record && route.match.headers.empty())
        mix = CapturedMix(route.record->path, route.name, logged ? cfg.access_log.path : "");
      if (mix.size() > 1) {
        // The recorded mix, weighted as the users sent it, as a scenario of its own.
        std::vector<std::string> headers = {"X-Api-Key: ficus-assess"};
        if (!route.match.hosts.empty() && route.match.hosts.front().find('*') == std::string::npos)
          headers.push_back("Host: " + route.match.hosts.front());
        const std::string file =
            Format("%s/ficus-assess-%d-%zu.yaml", std::filesystem::temp_directory_path().c_str(),
                   static_cast<int>(::getpid()), temp_files.size());
        std::ofstream out(file);
        temp_files.push_back(file);
        out << MixScenario(mix, headers);
        out.close();
        if (!out) return fail("cannot write " + file);
        Target t;
        t.name = "route:" + route.name;
        t.threshold_ms = ThresholdMsFor(cfg, route.name, fallback_ms);
        t.base.url = file;
        t.base.target = base_url;
        t.mix = mix.size();
        targets.push_back(std::move(t));
        continue;
      }
      if (mix.size() == 1) req = mix.front().request;
      if (!req && logged && route.match.headers.empty())
        req = ObservedRequest(cfg.access_log.path, route.name);
      if (!req) req = RequestFor(route);
      if (!req) {
        if (!o.routes.empty())
          return fail("route " + route.name +
                      " matches by regex or headers: assess it with --scenario");
        skipped.push_back(route.name);
        continue;
      }
      Target t;
      t.name = "route:" + route.name;
      t.threshold_ms = ThresholdMsFor(cfg, route.name, fallback_ms);
      t.base.url = base_url + req->path;
      t.base.method = req->method;
      if (!req->body.empty()) {
        t.base.body = req->body;
        t.base.headers.push_back("Content-Type: " + (req->content_type.empty()
                                                         ? std::string("application/json")
                                                         : req->content_type));
      }
      if (!route.match.hosts.empty() && route.match.hosts.front().find('*') == std::string::npos)
        t.base.headers.push_back("Host: " + route.match.hosts.front());
      t.base.headers.push_back("X-Api-Key: ficus-assess");
      targets.push_back(std::move(t));
    }
    for (const std::string& name : o.routes) {
      if (std::none_of(cfg.routes.begin(), cfg.routes.end(),
                       [&](const config::Route& r) { return r.name == name; }))
        return fail("no route named " + name);
    }
  }
  if (targets.empty() && skipped.empty()) return fail("nothing to assess");

  std::unique_ptr<telemetry::Store> store;
  try {
    const std::string dir = o.data_dir.empty() ? cfg.data_dir : o.data_dir;
    std::filesystem::create_directories(dir);
    telemetry::StoreOptions so;
    so.path = dir + "/ficus.db";
    so.max_bytes = cfg.telemetry.max_size;
    store = std::make_unique<telemetry::Store>(so);
  } catch (const std::exception& e) {
    return fail(e.what());
  }

  // A route assess cannot exercise blindly is recorded as skipped, so the report's table says
  // so (not only this run's stderr).
  for (const std::string& name : skipped) {
    telemetry::Assessment a;
    a.ts_ms = NowMs();
    a.target = "route:" + name;
    a.max_rate = o.max_rate;
    a.stop_reason = "skipped";
    a.detail = "[]";
    try {
      store->AppendAssessment(a);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    if (!o.json)
      std::fprintf(stderr,
                   "ficus assess: route %s matches by regex or headers: skipped (assess it with "
                   "--scenario)\n",
                   name.c_str());
  }
  if (targets.empty()) return 0;

  const SyntheticKey synthetic(cfg, std::min<int64_t>(3600, *max_ns / 1'000'000'000 + 60));
  if (!synthetic.key().empty()) {
    for (Target& t : targets) t.base.synthetic_key = synthetic.key();
  } else {
    std::fprintf(stderr,
                 "ficus assess: %s: the step load will count in the SLOs like user traffic (the "
                 "report marks the assessment windows)\n",
                 synthetic.why().c_str());
  }

  // Every step of every target fits in the time envelope.
  const int64_t step_ns = std::max<int64_t>(
      1'000'000'000, *max_ns / static_cast<int64_t>(targets.size() * static_cast<size_t>(o.steps)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(*max_ns);
  std::string json = "[";
  int rc = 0;
  if (!o.json)
    std::printf("%-28s %10s %10s %8s %6s  %s\n", "target", "knee req/s", "p99 ms", "errors",
                "steps", "stopped by");
  for (const Target& t : targets) {
    // The target's request (or scenario) once; each step sets its own rate and length.
    load::Options lo = t.base;
    lo.rate = o.max_rate;
    lo.duration = o.max_duration;
    lo.connections = o.connections;
    lo.quiet = true;
    Outcome<load::Plan> plan = load::PlanFrom(lo);
    if (!plan) {
      std::fprintf(stderr, "ficus load: %s\n", plan.message().c_str());
      std::fprintf(stderr, "ficus assess: %s: the load could not start (see above)\n",
                   t.name.c_str());
      return 2;
    }
    plan->timeout_ns =
        std::max<int64_t>(2000, static_cast<int64_t>(t.threshold_ms * 4)) * 1'000'000;
    std::vector<Step> steps;
    bool out_of_time = false;
    bool mostly_4xx = false;
    const int64_t started_ms = NowMs();
    for (int i = 1; i <= o.steps; ++i) {
      if (std::chrono::steady_clock::now() + std::chrono::nanoseconds(step_ns) >
          deadline + std::chrono::milliseconds(500)) {
        out_of_time = true;
        break;
      }
      const double rate = o.max_rate * i / o.steps;
      Outcome<> set = plan->SetConstantRate(rate, step_ns / 1'000'000 * 1'000'000);
      if (!set) std::fprintf(stderr, "ficus load: %s\n", set.message().c_str());
      load::Summary s;
      int code = set ? load::Run(*plan, &s) : 2;
      if (code == 2) {
        std::fprintf(stderr, "ficus assess: %s: the load could not start (see above)\n",
                     t.name.c_str());
        return 2;
      }
      Step st;
      st.rate = rate;
      st.achieved = s.achieved_rate;
      st.p99_ms = static_cast<double>(s.stats.corrected.Percentile(0.99)) / 1e6;
      st.error_ratio = ErrorRatio(s);
      st.requests = s.stats.sent;
      st.ok = st.p99_ms <= t.threshold_ms && st.error_ratio < kMaxErrorRatio &&
              DropRatio(s) < kMaxErrorRatio;
      steps.push_back(st);
      // A route that answered mostly 4xx was not really exercised (a body, a header or a path
      // it needs): its rates say nothing about its capacity.
      const uint64_t client_errors = s.stats.status_at_least(400) - s.stats.status_at_least(500);
      if (client_errors * 2 > std::max<uint64_t>(s.stats.completed, 1)) {
        mostly_4xx = true;
        std::fprintf(stderr,
                     "ficus assess: %s: most answers were 4xx: not assessed; assess it with a "
                     "--scenario that sends the requests it expects\n",
                     t.name.c_str());
        break;
      }
      if (!st.ok) break;  // past the knee: stop before errors pile up
    }
    Knee k = FindKnee(steps, t.threshold_ms, out_of_time);
    if (mostly_4xx)
      k = Knee{.rate = 0, .p99_ms = 0, .error_ratio = 0, .stop_reason = "not_assessed"};
    telemetry::Assessment a;
    a.ts_ms = started_ms;
    a.duration_ms = NowMs() - started_ms;
    a.target = t.name;
    a.knee_rate = k.rate;
    a.p99_ms = k.p99_ms;
    a.error_ratio = k.error_ratio;
    a.steps = static_cast<int>(steps.size());
    a.max_rate = o.max_rate;
    a.stop_reason = k.stop_reason;
    a.detail = StepsJson(steps);
    try {
      store->AppendAssessment(a);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "ficus assess: %s\n", e.what());
      rc = 1;
    }
    if (o.json) {
      if (json.size() > 1) json += ",";
      json +=
          Format(
              R"({"target":%s,"threshold_ms":%.1f,"knee_rate":%.2f,"p99_ms":%.3f,"error_ratio":%.5f,"stop_reason":"%s","recorded_requests":%zu,"steps":)",
              JsonString(t.name).c_str(), t.threshold_ms, k.rate, k.p99_ms, k.error_ratio,
              k.stop_reason.c_str(), t.mix) +
          a.detail + "}";
    } else {
      std::printf("%s\n", StepLine(t.name, k, steps, t.threshold_ms).c_str());
      std::fflush(stdout);
    }
  }
  if (o.json) std::printf("%s]\n", json.c_str());
  return rc;
}

}  // namespace ficus::advisor
