// ficus::policy's protection policies (issue 15): who may ask (auth: API keys, JWTs), how often
// (rate_limit: GCRA per key, exact across workers), how many at once (concurrency: a bulkhead
// with priority classes). Built per route from its config keys; /metrics families rendered here.
#pragma once

#include <span>
#include <string>

#include "config/config.h"
#include "policy/policy.h"

namespace ficus::policy {

// Appends the route's auth, rate-limit and concurrency policies (those its config names) to
// `chain`. Limiter state (tables, in-flight counts, counters) is taken from the running chain
// when the limit's config is unchanged. Reads the API-key and JWKS files: throws
// std::runtime_error naming the file when one does not load (startup/reload only).
void BuildProtectPolicies(const BuildContext& ctx, Chain& chain);

// The protection families of every route of a snapshot, Prometheus text, appended to `out`
// (ficus_rate_limit_*, ficus_concurrency_*, ficus_auth_*). `chains` is parallel to
// config.routes. Admin thread.
void RenderProtectMetrics(const config::Config& config, std::span<const Chain> chains,
                          std::string& out);

}  // namespace ficus::policy
