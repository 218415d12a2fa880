// The running gateway as `ficus prove` sees it: its admin API (the config, the synthetic key,
// /metrics) and the figures read from its metrics.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/outcome.h"
#include "config/config.h"

namespace ficus::prove::internal {

class Gateway {
 public:
  // REQUIRES: the config has an admin listener. The token may be empty (then every
  // state-changing call fails with the admin API's answer).
  explicit Gateway(const config::Config& cfg);

  // POST /config: the applied diff, or why the gateway refused it (status and body).
  Outcome<std::string> ApplyConfig(const std::string& yaml) const;
  // GET /metrics (Prometheus text).
  Outcome<std::string> Metrics() const;

 private:
  Outcome<std::string> Call(const char* method, const char* target, const std::string& body,
                            bool auth) const;
  std::string host_;
  uint16_t port_ = 0;
  std::string token_;
};

// The sum of a family's samples in Prometheus text whose labels include `label="value"` (every
// sample when `label` is empty): `ficus_cluster_upstream_requests_total` with cluster="shop".
double SumSamples(std::string_view metrics, std::string_view family, std::string_view label = {},
                  std::string_view value = {});

// What ficus sends the origin, read from two /metrics texts `seconds` apart: requests to the
// cluster (every attempt) plus queue deliveries, per second; and the deliveries' mean
// concurrency (delivery seconds per second).
struct OriginDelta {
  double rps = 0;
  double deliveries_in_flight = 0;
};
OriginDelta OriginBetween(std::string_view before, std::string_view after, double seconds,
                          const std::string& cluster);

}  // namespace ficus::prove::internal
