// The `ficus slo` subcommands: thin wrappers that load the config and print.
#include <cstdio>
#include <fstream>

#include "base/log.h"
#include "slo/slo.h"

namespace ficus::slo {

namespace {

// `offline`: the command reaches nothing (rules), so it needs none of the config's secrets.
std::shared_ptr<const config::Config> LoadOrPrint(const std::string& path, bool offline) {
  config::LoadResult r =
      config::LoadFile(path, offline ? config::OfflineLoad() : config::LoadOptions{});
  for (config::ConfigError w : r.warnings) {
    w.reason.insert(0, "warning: ");  // FILE:LINE:COL: field: warning: reason, as `ficus check`
    std::fprintf(stderr, "%s\n", w.ToString().c_str());
  }
  for (const config::ConfigError& e : r.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  return r.config;
}

}  // namespace

int RulesCommand(const std::string& config_path, const std::string& output) {
  auto config = LoadOrPrint(config_path, /*offline=*/true);
  if (!config) return 1;
  if (config->slos.empty()) {
    std::fprintf(stderr, "%s: no slos: in the config; the rule file has no groups\n",
                 config_path.c_str());
  }
  std::vector<std::string> notes;
  const std::string rules = PrometheusRules(*config, &notes);
  for (const std::string& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (output == "-") {
    std::fwrite(rules.data(), 1, rules.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  std::ofstream out(output, std::ios::binary | std::ios::trunc);
  out << rules;
  out.close();
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", output.c_str());
    return 1;
  }
  return 0;
}

int TestWebhooksCommand(const std::string& config_path, const Notifier::Options& options) {
  auto config = LoadOrPrint(config_path, /*offline=*/false);
  if (!config) return 1;
  log::Init("warn");  // the Notifier logs each webhook it gives up on, to stderr
  size_t hooks = 0;
  {
    Notifier notifier(options);
    for (const Objective& o : ObjectivesOf(*config)) {
      for (const config::Slo& s : config->slos) {
        if (s.name != o.slo || s.webhooks.empty()) continue;
        Transition t;
        t.test = true;
        t.status = Evaluate(o, Counts{}, {}, std::chrono::system_clock::now());
        notifier.Post(s.webhooks, TransitionJson(t));
        hooks += s.webhooks.size();
      }
    }
    if (hooks == 0) {
      std::fprintf(stderr, "%s: no SLO has webhooks\n", config_path.c_str());
      return 1;
    }
    // Room for every attempt's timeout and backoff.
    const auto limit = options.max_attempts * (options.timeout + options.max_backoff);
    notifier.Flush(std::chrono::duration_cast<std::chrono::milliseconds>(limit));
    const Notifier::Stats st = notifier.stats();
    std::printf("webhooks: %llu of %zu delivered, %llu failed, %llu attempts\n",
                static_cast<unsigned long long>(st.delivered), hooks,
                static_cast<unsigned long long>(st.failed),
                static_cast<unsigned long long>(st.attempts));
    std::fflush(stdout);
    return st.delivered == hooks ? 0 : 1;
  }
}

}  // namespace ficus::slo
