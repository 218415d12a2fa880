// Which load proves a finding: the route's own requests (from a scenario file such as the
// traffic mix, else one request built from the route's match) as a step load, or for a noisy
// client the other clients' requests at their rate while the noisy one floods.
#pragma once

#include <string>
#include <vector>

#include "advisor/advisor.h"
#include "base/outcome.h"
#include "config/config.h"
#include "prove/internal/measure.h"

namespace ficus::prove::internal {

struct WorkloadContext {
  const config::Config* config = nullptr;
  std::string base_url;       // http://HOST:PORT of the gateway's first listener
  std::string scenario_text;  // a `ficus load` scenario (YAML); empty: one request per route
  std::string synthetic_key;  // sent as X-Ficus-Synthetic on every request (empty: not sent)
  std::string replay;         // a capture: findings replay it (Options::replay)
  std::string replay_source;  // the capture it was copied from (for the description)
  std::string speed = "1x";
  std::vector<double> rates;  // the step load's rates
  int64_t step_ns = 0;
  int connections = 64;
  double others_rate = 0;  // noisy client: the other clients' constant rate
  double flood_rate = 0;   // and the noisy client's
  double fallback_ms = 500;
  // Client keys of the report's noisy clients ("key:NAME"): their requests are left out of the
  // route step loads (a route's capacity is measured with its ordinary clients; the noisy
  // client is its own finding, and a kept rate limit would refuse its requests).
  std::vector<std::string> noisy_keys;
  std::string temp_dir;  // where the scenario files of the workloads are written
  std::vector<std::string>* temp_files = nullptr;  // each file written is added here
};

// The client key of a noisy_client finding ("key:partner-7"): the first word of its summary.
std::string NoisyKeyOf(const advisor::Finding& f);

// `noisy_routes`: the routes the noisy client used (for its finding; else unused).
Outcome<Workload> WorkloadFor(const advisor::Finding& f, const WorkloadContext& cx,
                              const std::vector<std::string>& noisy_routes);

// The first route (config order) a request with this method and path (which may hold
// {{templates}}) goes to; nullptr when none can be told from the path alone.
const config::Route* RouteOf(const config::Config& cfg, const std::string& method,
                             const std::string& path);

}  // namespace ficus::prove::internal
