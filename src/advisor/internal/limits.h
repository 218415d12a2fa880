// What ficus already does about a noisy client (issue 15): its requests a rate limit or a
// concurrency limit refused in the period (the telemetry store's limited keys), and the rate
// limit the config has for its kind of key on the routes it used, so that the report's remedy
// says "already limited" instead of recommending the same limit again.
#pragma once

#include <cstdint>
#include <vector>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

// The rate-limit key a client key is told apart by: "header:x-api-key" for "key:...",
// "header:x-user" for "user:...", "client_ip" for "addr:...".
const char* LimitKeyFor(const std::string& client_key);

// Fills each noisy client's routes, limited count and the limit in place (config may be null:
// then only the counts).
void AddLimits(const config::Config* config, telemetry::Store& store, int64_t from_ms,
               int64_t to_ms, std::vector<NoisyClient>& noisy);

}  // namespace ficus::advisor::internal
