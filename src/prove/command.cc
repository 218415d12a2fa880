// `ficus prove`: the findings of the stored telemetry, the ones named (or --all), each proven in
// turn (run.cc) within the time bound; guard rails around it: a refusal when live traffic is
// flowing, the run's synthetic key, SIGINT/SIGTERM ending the loads and restoring the config.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "advisor/advisor.h"
#include "base/json.h"
#include "base/text.h"
#include "load/load.h"
#include "prove/internal/edit.h"
#include "prove/internal/run.h"
#include "prove/prove.h"

namespace ficus::prove {
namespace {
using namespace internal;

std::atomic<bool> g_stop{false};
extern "C" void OnStop(int) { g_stop.store(true); }

// SIGINT and SIGTERM end the current load early; the loop then restores the old config. The
// handlers stay for the whole run (a second Ctrl-C must not kill it before the restore).
class StopSignals {
 public:
  StopSignals() {
    struct sigaction sa {};
    sa.sa_handler = OnStop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "cache:catalog", "noisy_client:key:partner-7".
std::string IdOf(const advisor::Finding& f) {
  return f.kind + ":" + (f.kind == "noisy_client" ? NoisyKeyOf(f) : f.route);
}

// A remedy ficus can apply by itself: its snippet is complete config (a capacity finding's names
// an endpoint that does not exist yet).
bool Applicable(const advisor::Finding& f) {
  return f.in_ficus && !f.snippet.empty() && f.kind != "trigger.capacity" &&
         f.kind != "trigger.growth";
}

bool Selected(const advisor::Finding& f, const std::vector<std::string>& names) {
  const std::string id = IdOf(f);
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string& n) { return n == id || n == f.kind || n == f.route; });
}

std::string BaseUrl(const config::Listener& l) {
  const std::string host = (l.address == "0.0.0.0" || l.address.empty()) ? "127.0.0.1"
                           : l.address == "::"                           ? "[::1]"
                           : l.address.find(':') != std::string::npos
                               ? std::string("[").append(l.address).append("]")
                               : l.address;
  return "http://" + host + ":" + std::to_string(l.port);
}

// Requests users send now: the routes' request counters over `ms`, before the run sends any.
Outcome<double> LiveRate(const Gateway& gw, int64_t ms) {
  Outcome<std::string> a = gw.Metrics();
  if (!a) return Failed(a.message());
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  Outcome<std::string> b = gw.Metrics();
  if (!b) return Failed(b.message());
  const double d =
      SumSamples(*b, "ficus_route_requests_total") - SumSamples(*a, "ficus_route_requests_total");
  return std::max(0.0, d) * 1000.0 / static_cast<double>(ms);
}

std::string Row(const advisor::Proof& p) {
  auto rate = [](const advisor::ProofPhase& ph, bool step) {
    return step ? Format("%s%.0f", ph.rate_bounded ? ">=" : "", ph.rate) : std::string("-");
  };
  const bool step = p.before.rate > 0 || p.after.rate > 0 || p.before.rate_high > 0;
  return Format("%-34s %9s %9s %9.1f %9.1f %7.2f%% %7.2f%% %6.0f %6.0f  %s (%s)", p.finding.c_str(),
                rate(p.before, step).c_str(), rate(p.after, step).c_str(), p.before.p99_ms,
                p.after.p99_ms, p.before.error_ratio * 100, p.after.error_ratio * 100,
                p.before.origin_rps, p.after.origin_rps, p.decision.c_str(), p.outcome.c_str());
}

const char* kHeader =
    "finding                            rate@SLO  rate@SLO   p99 ms    p99 ms   errors   errors "
    "origin origin\n"
    "                                     before     after   before     after   before    after "
    "r/s bef r/s aft  decision";

}  // namespace

int ProveCommand(const Options& o) {
  auto fail = [](const std::string& m) {
    std::fprintf(stderr, "ficus prove: %s\n", m.c_str());
    return 2;
  };
  std::string text;
  {
    std::ifstream f(o.config_path);
    if (!f) return fail("cannot read " + o.config_path);
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  config::LoadResult loaded = config::LoadFile(o.config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    return 2;
  }
  const config::Config& cfg = *loaded.config;
  if (o.findings.empty() && !o.all)
    return fail("name a finding (see `ficus report`) or give --all");
  if (!o.findings.empty() && o.all) return fail("give findings or --all, not both");
  if (o.steps < 1 || o.steps > 20) return fail("--steps must be 1..20");
  if (o.connections < 1 || o.connections > 10000) return fail("--connections must be 1..10000");
  if (!(o.alpha > 0 && o.alpha < 0.5)) return fail("--alpha must be in (0, 0.5)");
  if (!(o.min_effect >= 0 && o.min_effect < 1)) return fail("--min-effect must be in [0, 1)");
  for (double r : {o.max_rate, o.others_rate, o.flood_rate})
    if (!(r >= 0 && r <= 100'000)) return fail("rates must be 0..100000 req/s");
  std::string why;
  auto step_ns = load::ParseDuration(o.step_duration, &why);
  if (!step_ns) return fail("--step-duration: " + why);
  if (*step_ns < 1'000'000'000 || *step_ns > 600'000'000'000)
    return fail("--step-duration must be 1s..10m");
  auto bound_ns = load::ParseDuration(o.max_duration, &why);
  if (!bound_ns) return fail("--max-duration: " + why);
  auto settle_ns = load::ParseDuration(o.settle, &why);
  if (!settle_ns) return fail("--settle: " + why);
  auto period_ns = load::ParseDuration(o.period, &why);
  if (!period_ns || *period_ns <= 0)
    return fail("--period: " + (why.empty() ? "must be > 0" : why));
  auto fallback_ns = load::ParseDuration(o.p99, &why);
  if (!fallback_ns || *fallback_ns <= 0)
    return fail("--p99: " + (why.empty() ? "must be > 0" : why));
  if (cfg.listeners.empty()) return fail("the config has no listener");
  std::string scenario_text;
  if (!o.scenario.empty()) {
    std::ifstream f(o.scenario);
    if (!f) return fail("cannot read " + o.scenario);
    std::stringstream ss;
    ss << f.rdbuf();
    scenario_text = ss.str();
  }

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
  advisor::AnalyzeParams ap;
  ap.to_ms = NowMs();
  ap.from_ms = ap.to_ms - *period_ns / 1'000'000;
  ap.period = o.period;
  ap.p99_default_ms = static_cast<double>(*fallback_ns) / 1e6;
  const advisor::Report report = advisor::Analyze(&cfg, *store, ap);

  // The findings to prove, each once; a noisy client's first: its flood is measured against
  // the application as it is (a cache kept before would absorb it), and the route loads after it
  // leave the noisy clients' requests out (see WorkloadContext::noisy_keys).
  std::vector<const advisor::Finding*> chosen;
  std::set<std::string> seen;
  for (const advisor::Finding& f : report.findings) {
    if (!Applicable(f) || seen.count(IdOf(f))) continue;
    if (o.all || Selected(f, o.findings)) {
      chosen.push_back(&f);
      seen.insert(IdOf(f));
    }
  }
  std::stable_partition(chosen.begin(), chosen.end(),
                        [](const advisor::Finding* f) { return f->kind == "noisy_client"; });
  if (chosen.empty()) {
    std::string have;
    for (const advisor::Finding& f : report.findings)
      if (Applicable(f)) have += "\n  " + IdOf(f);
    return fail("no finding to prove" +
                (have.empty() ? std::string(" in the last ") + o.period + " of telemetry"
                              : "; findings with a remedy:" + have));
  }

  WorkloadContext wc;
  wc.config = &cfg;
  wc.base_url = BaseUrl(cfg.listeners.front());
  wc.scenario_text = scenario_text;
  wc.speed = o.speed;
  wc.step_ns = *step_ns;
  wc.connections = o.connections;
  wc.fallback_ms = static_cast<double>(*fallback_ns) / 1e6;
  wc.temp_dir = std::filesystem::temp_directory_path().string();
  for (const advisor::Finding& f : report.findings)
    if (f.kind == "noisy_client") wc.noisy_keys.push_back(NoisyKeyOf(f));
  std::vector<std::string> temp_files;
  wc.temp_files = &temp_files;
  struct TempFiles {
    std::vector<std::string>* files;
    ~TempFiles() {
      for (const std::string& f : *files) std::filesystem::remove(f);
    }
  } cleanup{&temp_files};
  if (!o.replay.empty()) {
    // The capture as it is now, users' requests only, replayed before and after alike: the
    // route's record: goes on capturing while the proof runs (its own load among it), and a
    // request ficus sent itself (X-Ficus-Synthetic) is not users' traffic.
    std::ifstream in(o.replay);
    if (!in) return fail("--replay: cannot read " + o.replay);
    const std::string copy =
        wc.temp_dir + "/ficus-prove-" + std::to_string(::getpid()) + "-replay.jsonl";
    std::ofstream out(copy);
    temp_files.push_back(copy);
    for (std::string line; std::getline(in, line);) {
      std::string lower = line;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower.find("\"x-ficus-synthetic\"") == std::string::npos) out << line << '\n';
    }
    out.close();
    if (!out) return fail("--replay: cannot write " + copy);
    load::Options check;  // the copy and the speed checked before anything runs
    check.replay = copy;
    check.target = "http://127.0.0.1:1";
    check.speed = o.speed;
    check.quiet = true;
    if (Outcome<load::Plan> plan = load::PlanFrom(check); !plan)
      return fail("--replay " + o.replay + ": " + plan.message());
    wc.replay = copy;
    wc.replay_source = o.replay;
  }

  const Gateway gw(cfg);
  std::string running = text;
  RunContext rc;
  rc.gateway = &gw;
  rc.store = store.get();
  rc.stop = &g_stop;
  rc.decide.alpha = o.alpha;
  rc.decide.min_effect = o.min_effect;
  rc.keep_inconclusive = o.keep_inconclusive;
  rc.settle_ms = *settle_ns / 1'000'000;
  rc.running = &running;

  if (!o.dry_run && !o.yes) {
    Outcome<double> live = LiveRate(gw, 3000);
    if (!live) return fail("cannot read the gateway's metrics: " + live.message());
    if (*live > 0) {
      std::fprintf(stderr,
                   "ficus prove: the gateway is serving live traffic (%.1f req/s over the last 3 "
                   "s): a proof would change its config under real users and their traffic would "
                   "blur the measurement. Run it when the application is quiet, or give --yes.\n",
                   *live);
      return 3;
    }
  }
  const StopSignals signals;
  g_stop.store(false);
  // The proof's load stays out of the SLOs and the users' figures: the one registration every
  // run of ficus's own load makes (cleared when it goes, and expiring by itself past the bound).
  std::optional<advisor::SyntheticKey> synthetic;
  if (!o.dry_run) {
    synthetic.emplace(cfg, std::min<int64_t>(3600, *bound_ns / 1'000'000'000 + 60));
    if (synthetic->key().empty())
      return fail("the run's synthetic key: " + synthetic->why() +
                  " (the proof's load must stay out of the SLOs)");
    wc.synthetic_key = synthetic->key();
  }

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(*bound_ns);
  std::vector<advisor::Proof> proofs;
  int rc_code = 0;
  for (const advisor::Finding* f : chosen) {
    const std::string id = IdOf(*f);
    double max_rate = o.max_rate;
    if (max_rate == 0) {
      for (const telemetry::Assessment& a : report.assessments)
        if (a.target == "route:" + f->route && a.max_rate > 0) max_rate = a.max_rate;
    }
    if (max_rate == 0) max_rate = 100;
    wc.rates.clear();
    for (int i = 1; i <= o.steps; ++i) wc.rates.push_back(max_rate * i / o.steps);
    wc.others_rate = o.others_rate > 0 ? o.others_rate : max_rate / 4;
    wc.flood_rate = o.flood_rate > 0 ? o.flood_rate : max_rate;
    std::vector<std::string> noisy_routes;
    if (f->kind == "noisy_client") {
      for (const telemetry::ClientKeyCount& c : store->ClientKeys(report.from_ms, report.to_ms))
        if (c.key == NoisyKeyOf(*f) &&
            std::find(noisy_routes.begin(), noisy_routes.end(), c.route) == noisy_routes.end())
          noisy_routes.push_back(c.route);
    }
    Outcome<Workload> w = WorkloadFor(*f, wc, noisy_routes);
    Outcome<std::string> merged = MergeSnippet(running, f->snippet, noisy_routes);
    if (!w || !merged) {
      std::fprintf(stderr, "ficus prove: %s: skipped: %s\n", id.c_str(),
                   (!w ? w.message() : merged.message()).c_str());
      continue;
    }
    config::LoadResult check = config::LoadString(*merged, o.config_path + " + " + id);
    if (!check.config) {
      std::fprintf(stderr,
                   "ficus prove: %s: skipped: the config with its remedy does not validate: %s\n",
                   id.c_str(), check.errors.empty() ? "" : check.errors[0].ToString().c_str());
      continue;
    }
    if (o.dry_run) {
      std::printf("== %s: %s\n   load: %s\n   change (not applied: --dry-run):\n%s\n", id.c_str(),
                  f->remedy.c_str(), w->description.c_str(), LineDiff(running, *merged).c_str());
      continue;
    }
    const int64_t phase_ns = w->step_ns * static_cast<int64_t>(w->rates.size());
    if (std::chrono::steady_clock::now() + std::chrono::nanoseconds(2 * phase_ns) > deadline) {
      std::fprintf(stderr, "ficus prove: %s: not run: it would not end within --max-duration %s\n",
                   id.c_str(), o.max_duration.c_str());
      continue;
    }
    if (!o.json) {
      std::printf("== %s: %s\n   load: %s\n", id.c_str(), f->remedy.c_str(),
                  w->description.c_str());
      std::fflush(stdout);
    }
    RunResult r = ProveOne(id, *f, *w, *merged, rc);
    if (r.end == RunEnd::kDone) {
      proofs.push_back(r.proof);
      if (!o.json) {
        std::printf("   %s: %s, %s\n", r.proof.decision.c_str(), r.proof.outcome.c_str(),
                    r.proof.why.c_str());
        std::fflush(stdout);
      }
    }
    if (!r.message.empty())
      std::fprintf(stderr, "ficus prove: %s: %s\n", id.c_str(), r.message.c_str());
    if (r.end == RunEnd::kBroken) return 1;
    if (r.end == RunEnd::kInterrupted) return 130;
    if (r.end == RunEnd::kSkipped) rc_code = 1;
  }
  if (o.dry_run) return 0;

  if (o.json) {
    std::string out = "[";
    for (size_t i = 0; i < proofs.size(); ++i)
      out += (i ? "," : "") + advisor::ProofJson(proofs[i]);
    std::printf("%s]\n", out.c_str());
  } else if (!proofs.empty()) {
    std::printf(
        "\nBefore and after (the same load each time; kept only when better beyond the "
        "statistics' interval)\n%s\n",
        kHeader);
    for (const advisor::Proof& p : proofs) std::printf("%s\n", Row(p).c_str());
  }
  const bool changed = running != text;
  if (changed && o.save) {
    std::error_code ec;
    std::filesystem::copy_file(o.config_path, o.config_path + ".bak",
                               std::filesystem::copy_options::overwrite_existing, ec);
    std::ofstream f(o.config_path);
    f << running;
    if (ec || !f) {
      std::fprintf(stderr,
                   "ficus prove: cannot write %s: the kept changes are only in the "
                   "running gateway\n",
                   o.config_path.c_str());
      return 1;
    }
    std::fprintf(o.json ? stderr : stdout,
                 "\nThe kept changes are written into %s (the old file is %s.bak).\n",
                 o.config_path.c_str(), o.config_path.c_str());
  } else if (changed) {
    std::fprintf(o.json ? stderr : stdout,
                 "\nThe gateway runs the kept changes until its next restart or reload from %s: "
                 "give --save to write them into it.\n",
                 o.config_path.c_str());
  }
  return rc_code;
}

}  // namespace ficus::prove
