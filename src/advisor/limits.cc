// The limits a noisy client already meets: refused requests from the telemetry store's limited
// keys (the proxy counts the client key of every request a rate limit answered 429 or a
// concurrency limit answered 503), and the configured rate limit for its kind of key.
#include "advisor/internal/limits.h"

#include <algorithm>
#include <set>

namespace ficus::advisor::internal {

const char* LimitKeyFor(const std::string& client_key) {
  if (client_key.rfind("key:", 0) == 0) return "header:x-api-key";
  if (client_key.rfind("user:", 0) == 0) return "header:x-user";
  return "client_ip";
}

void AddLimits(const config::Config* config, telemetry::Store& store, int64_t from_ms,
               int64_t to_ms, std::vector<NoisyClient>& noisy) {
  if (noisy.empty()) return;
  const std::vector<telemetry::ClientKeyCount> seen = store.ClientKeys(from_ms, to_ms);
  const std::vector<telemetry::ClientKeyCount> limited = store.LimitedKeys(from_ms, to_ms);
  for (NoisyClient& n : noisy) {
    std::set<std::string> routes;
    for (const auto& k : seen)
      if (k.key == n.key) routes.insert(k.route);
    for (const auto& k : limited) {
      if (k.key != n.key) continue;
      n.limited += k.count;
      routes.insert(k.route);
    }
    n.routes.assign(routes.begin(), routes.end());
    if (!config) continue;
    // The tightest enforcing limit keyed by exactly this kind of key on a route it used.
    const std::string want = LimitKeyFor(n.key);
    for (const config::Route& r : config->routes) {
      if (!routes.count(r.name)) continue;
      for (const config::RateLimit& l : r.rate_limits) {
        if (l.shadow || l.key.size() != 1 || l.key[0] != want) continue;
        const double rate = static_cast<double>(l.count) * 1000.0 /
                            static_cast<double>(std::max<int64_t>(1, l.period.count()));
        if (n.limit_rate == 0 || rate < n.limit_rate) {
          n.limit_rate = rate;
          n.limit_spec = std::to_string(l.count) + "/" + config::FormatDuration(l.period);
          n.limit_burst = l.burst;
        }
        n.limit_routes.push_back(r.name);
        break;
      }
    }
  }
}

}  // namespace ficus::advisor::internal
