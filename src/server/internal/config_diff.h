// The JSON answers of POST /config: the validation errors, or the diff that was applied.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ficus::server {

// {"applied":false,"errors":[{"line":..,"column":..,"field":..,"reason":..,"message":..}]}
std::string ConfigErrorsJson(const std::vector<config::ConfigError>& errors);

// {"applied":true,"listeners":{"added":[..],"removed":[..]},"clusters":{"added":[..],
// "removed":[..],"changed":[..]},"routes":{...},"settings_changed":bool}: names only.
std::string ConfigDiffJson(const config::Config& before, const config::Config& after);

}  // namespace ficus::server
