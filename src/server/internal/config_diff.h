// The JSON answers of POST /config: the validation errors, or the diff that was applied.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ficus::server {

// {"applied":false,"errors":[{"line":..,"column":..,"field":..,"reason":..,"message":..}]}
std::string ConfigErrorsJson(const std::vector<config::ConfigError>& errors);

// {"applied":true,"listeners":{"added":[..],"removed":[..]},"clusters":{"added":[..],
// "removed":[..],"changed":[..]},"routes":{...},"slos":{...},"settings_changed":bool}: names
// only. Computed from the config structs' equality: any field that differs counts (where an
// item is written in the file does not). settings_changed covers everything outside the
// listeners, clusters and routes (timeouts, limits, admin, telemetry, slos, access_log, ...).
std::string ConfigDiffJson(const config::Config& before, const config::Config& after);

}  // namespace ficus::server
