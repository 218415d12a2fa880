// Per-minute counts of client keys by route (tables client_keys and limited_keys share the
// shape): rows with the same (ts, route, key) add up; the read sums [from_ms, to_ms) per
// (route, key), most first. `table` is one of the store's own table names, never input.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "telemetry/telemetry.h"

namespace ficus::telemetry::internal {

void WriteKeyCounts(sqlite3* db, std::string_view table, const std::vector<ClientKeyCount>& rows);
std::vector<ClientKeyCount> KeyCounts(sqlite3* db, std::string_view table, int64_t from_ms,
                                      int64_t to_ms);

}  // namespace ficus::telemetry::internal
