// Connects the telemetry store to the running gateway: the data directory, the store's
// options from the config, and the source that folds the metrics registry's per-worker cells
// into per-route, per-cluster and per-endpoint ("cluster/address") totals.
#pragma once

#include <functional>
#include <memory>

#include "cache/cache.h"
#include "config/config.h"
#include "observe/observe.h"
#include "telemetry/telemetry.h"

namespace ficus::server {

// The cached routes' counters of the running snapshot (called on the telemetry thread).
using CacheCountersFn = std::function<std::vector<cache::RouteCounters>()>;

// Creates config.data_dir (and parents) if needed and opens <data_dir>/ficus.db. Throws
// std::runtime_error when the directory or the database cannot be used.
std::unique_ptr<telemetry::Telemetry> OpenTelemetry(const config::Config& config,
                                                    observe::Registry& registry,
                                                    CacheCountersFn cache_counters = {});

// The database file inside a data directory.
std::string TelemetryDbPath(const std::string& data_dir);

}  // namespace ficus::server
