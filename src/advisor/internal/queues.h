// The report's job-queue section (issue 17): per queue over the period, from the telemetry
// store's queue minutes — the backlog, enqueue against delivery rate, the oldest job's age,
// failures and dead letters —, the backlog rule (delivery slower than enqueue), and the
// section's renderings (format.cc calls one function per format).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "advisor/advisor.h"
#include "advisor/internal/rules.h"

namespace ficus::advisor::internal {

// The backlog grew by at least this many jobs (and this share of what was enqueued) before the
// report says delivery does not keep up: a few jobs in flight at the period's edges are no trend.
inline constexpr int64_t kBacklogMinJobs = 20;
inline constexpr double kBacklogMinShare = 0.05;

// Every queue with data in [from_ms, to_ms), by name; `config` (may be null) gives each its
// offload route, cluster, concurrency and rate.
std::vector<QueueReport> ReadQueues(const config::Config* config, telemetry::Store& store,
                                    int64_t from_ms, int64_t to_ms);

// The rule (rules.cc's table): the backlog grew while deliveries finished fewer jobs than came.
bool QueueBacklog(const Facts& facts);
Finding QueueBacklogFinding(const Facts& facts);

std::string QueuesText(const Report& r);
std::string QueuesMarkdown(const Report& r);
std::string QueuesJson(const Report& r);  // `"queues":[...]`
std::string QueuesHtml(const Report& r);  // a section with a table; empty without queues

}  // namespace ficus::advisor::internal
