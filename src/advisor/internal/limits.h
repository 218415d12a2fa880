// What ficus already does about a noisy client (issue 15): its requests a rate limit or a
// concurrency limit refused in the period (the telemetry store's limited keys), and the rate
// limit the config has for its kind of key on the routes it used, so that the report's remedy
// says "already limited" instead of recommending the same limit again.
#pragma once

#include <cstdint>
#include <vector>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

// Keys over kNoisyShare of `total_requests` and over 3x the median key, from the store's
// per-minute client key counts; each key's rate is over the minutes it was seen (at most
// `span_secs`), and the suggested limit is 5x the typical key's rate or a quarter of its own.
std::vector<NoisyClient> FindNoisyClients(const std::vector<telemetry::ClientKeyCount>& rows,
                                          uint64_t total_requests, double span_secs);

// The rate-limit key a client key is told apart by: "header:x-api-key" for "key:...",
// "header:x-user" for "user:...", "client_ip" for "addr:...".
const char* LimitKeyFor(const std::string& client_key);

// Fills each noisy client's routes, limited count and the limit in place (config may be null:
// then only the counts).
void AddLimits(const config::Config* config, telemetry::Store& store, int64_t from_ms,
               int64_t to_ms, std::vector<NoisyClient>& noisy);

}  // namespace ficus::advisor::internal
