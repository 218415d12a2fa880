// The report's cache section: each cached route's hit ratio and the origin load it saved, from
// the telemetry store's per-minute cache counters, and its renderings (format.cc calls one
// function per format).
#pragma once

#include <string>
#include <vector>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

// The cached routes' counters summed over [from_ms, to_ms), with the figures derived from them;
// `routes` gives each its requests in the period.
std::vector<CacheReport> ReadCaches(telemetry::Store& store, int64_t from_ms, int64_t to_ms,
                                    const std::vector<RouteReport>& routes);

std::string CachesText(const Report& r);
std::string CachesMarkdown(const Report& r);
std::string CachesJson(const Report& r);  // `"caches":[...]`
std::string CachesHtml(const Report& r);  // a section with a table and a hit-ratio chart

}  // namespace ficus::advisor::internal
