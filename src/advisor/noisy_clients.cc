// The noisy clients of a period: keys over their fair share of all requests, from the
// telemetry store's per-minute client keys.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "advisor/internal/limits.h"
#include "advisor/internal/rules.h"

namespace ficus::advisor::internal {

// Keys over their fair share of all requests. A key's rate is taken over the minutes it was
// seen, not over the whole period: a five-minute flood in a day's report is a flood at its own
// rate, and a limit sized from the day's average would refuse ordinary keys too.
std::vector<NoisyClient> FindNoisyClients(const std::vector<telemetry::ClientKeyCount>& rows,
                                          uint64_t total_requests, double span_secs) {
  std::vector<NoisyClient> noisy;
  struct KeyTraffic {
    uint64_t requests = 0;
    std::set<int64_t> minutes;
  };
  std::map<std::string, KeyTraffic> per_key;
  for (const auto& k : rows) {
    // `ficus assess` marks its own step load with this key: not a client.
    if (k.key == "key:ficus-assess") continue;
    KeyTraffic& t = per_key[k.key];
    t.requests += k.count;
    t.minutes.insert(k.ts_ms);
  }
  auto rate_of = [span_secs](const KeyTraffic& t) {
    const double active = std::min(span_secs, 60.0 * static_cast<double>(t.minutes.size()));
    return static_cast<double>(t.requests) / std::max(1.0, active);
  };
  std::vector<std::pair<std::string, const KeyTraffic*>> keys;
  for (const auto& [key, t] : per_key) keys.emplace_back(key, &t);
  std::sort(keys.begin(), keys.end(),
            [](auto& a, auto& b) { return a.second->requests > b.second->requests; });
  // The typical key: the median of the others seen, in requests and in rate while active (the
  // sketch keeps only heavy keys, so this overstates the typical rate: a safe side for a limit).
  for (size_t i = 0; i < keys.size() && total_requests > 0; ++i) {
    const KeyTraffic& t = *keys[i].second;
    const double share = static_cast<double>(t.requests) / static_cast<double>(total_requests);
    if (share < kNoisyShare || t.requests < kMinRequests) continue;
    std::vector<uint64_t> others;
    std::vector<double> other_rates;
    for (size_t j = 0; j < keys.size(); ++j) {
      if (j == i) continue;
      others.push_back(keys[j].second->requests);
      other_rates.push_back(rate_of(*keys[j].second));
    }
    // A sole client is not noisy among others; nor is one merely above a few peers.
    if (others.empty()) continue;
    std::nth_element(others.begin(), others.begin() + others.size() / 2, others.end());
    const uint64_t median = others[others.size() / 2];
    if (t.requests < 3 * median) continue;
    std::nth_element(other_rates.begin(), other_rates.begin() + other_rates.size() / 2,
                     other_rates.end());
    const double typical = other_rates[other_rates.size() / 2];
    NoisyClient n;
    n.key = keys[i].first;
    n.requests = t.requests;
    n.share = share;
    n.rps = rate_of(t);
    n.suggested_rate = std::max(1.0, std::ceil(std::max(typical * 5, n.rps / 4)));
    noisy.push_back(n);
  }
  return noisy;
}

}  // namespace ficus::advisor::internal
