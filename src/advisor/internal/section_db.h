// The report's database section: what the PostgreSQL proxy stored (telemetry::Store::Db) made
// into the slowest fingerprints, queries per request and the database's share per HTTP route,
// N+1 patterns and pool saturation, with findings and their remedies; one rendering per format
// (format.cc calls them).
#pragma once

#include <string>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

// A route's N+1 of a fingerprint is a finding when at least this many of its requests, and this
// share of them, ran the fingerprint kNPlusOne (5) times or more.
constexpr uint64_t kNPlusOneMinRequests = 3;
constexpr double kNPlusOneMinShare = 0.10;
// A query whose plan lacks an index is a finding when it takes this share of the database's
// time (an N+1 query's finding names the index whatever its share).
constexpr double kIndexTimeShare = 0.10;
// The database's share of a route's time that makes it the route's bottleneck.
constexpr double kDbShareTrigger = 0.50;
// A pool is saturated when clients timed out or were refused, or waited this long on average.
constexpr double kPoolWaitTriggerMs = 10;

// Fills r.database from the store's rows of [from_ms, to_ms) and adds its findings to
// r.findings (kept ordered by severity).
void AnalyzeDatabase(telemetry::Store& store, int64_t from_ms, int64_t to_ms, Report& r);

// `s` cut to `n` bytes with "..." when longer.
std::string CutText(const std::string& s, size_t n);

std::string DatabaseText(const Report& r);
std::string DatabaseMarkdown(const Report& r);
std::string DatabaseJson(const Report& r);  // `"database":{...}`
std::string DatabaseHtml(const Report& r);  // a section; empty when there is no database

}  // namespace ficus::advisor::internal
