// ficus::prove — `ficus prove`: closes the advisor's loop. For a finding of the report it runs
// the load that measures the problem against the running gateway, applies the finding's remedy
// through the admin API (POST /config: validated, audited, on the timeline), runs the same load
// again, and decides with statistics (Mann-Whitney U on latencies, a two-proportion z-test on
// errors, bootstrap intervals on the sustainable rate) whether to keep the change or put the
// old config back. Each result is recorded as a `proof` event, which `ficus report` shows as
// its before/after section. A command-line tool next to the gateway, like `ficus assess`.
#pragma once

#include <string>
#include <vector>

namespace ficus::prove {

struct Options {
  std::string config_path;            // the running gateway's config (admin listener + token)
  std::vector<std::string> findings;  // "cache:catalog", "noisy_client:key:NAME", a kind, a route
  bool all = false;                   // every finding with a remedy ficus can apply
  bool dry_run = false;               // print each change as a config diff; send nothing
  bool yes = false;                   // run even when the gateway is serving live traffic
  bool keep_inconclusive = false;     // keep a change the statistics cannot call better or worse
  bool save = false;                  // write the kept changes into the config file
  std::string scenario;  // a `ficus load` scenario whose requests the loads send (per route)
  // A `record:` capture (JSON Lines): a route's finding is measured by replaying the capture's
  // requests to that route on their recorded timeline at `speed`, looped, before and after; a
  // noisy client's by replaying the other clients' requests (measured) and the client's own
  // (the flood) side by side.
  std::string replay;
  std::string speed = "1x";
  std::string period = "1h";  // the findings come from this much telemetry
  double max_rate = 0;  // the step load's top rate; 0: the route's last assessment's, else 100
  int steps = 4;
  std::string step_duration = "3s";
  double others_rate = 0;            // noisy client: the other clients' rate (0: max_rate / 4)
  double flood_rate = 0;             // noisy client: the flood's rate (0: max_rate)
  std::string max_duration = "10m";  // bound on the whole run
  std::string settle = "1s";         // wait after each reload before measuring
  int connections = 64;
  double alpha = 0.01;        // each test's significance level
  double min_effect = 0.2;    // the least relative improvement that counts (p99, errors)
  std::string p99 = "500ms";  // latency target where no SLO names one
  std::string data_dir;       // empty: the config's
  bool json = false;
};

// Exit codes: 0 done (whatever was kept or reverted), 1 a proof failed or the old config could
// not be restored, 2 bad input, 3 refused (live traffic), 130 interrupted (config restored).
int ProveCommand(const Options& options);

}  // namespace ficus::prove
