// What the advisor tests share: the findings the route rules give for one route's report, on
// cluster "shop".
#pragma once

#include <vector>

#include "advisor/internal/rules.h"

namespace ficus::advisor::internal {

inline std::vector<Finding> OnRoute(const RouteReport& rr, bool cacheable = false,
                                    bool worth_caching = false) {
  Report report;
  const RouteFacts route{
      .route = rr,
      .impact = 2,
      .cluster = "shop",
      .error_ratio =
          rr.requests ? static_cast<double>(rr.errors) / static_cast<double>(rr.requests) : 0,
      .cacheable = cacheable,
      .worth_caching = worth_caching};
  std::vector<Finding> out;
  ApplyRules(Subject::kRoute, Facts{.report = report, .route = &route}, out);
  return out;
}

}  // namespace ficus::advisor::internal
