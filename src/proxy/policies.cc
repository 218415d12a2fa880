// Every module's policy builder, called for each route of a new snapshot. A module that adds a
// policy adds its builder call here (docs/architecture.md, "How to add a policy").
#include "proxy/internal/policies.h"

#include <algorithm>

#include "cache/cache.h"
#include "compress/compress.h"
#include "policy/protect.h"
#include "queue/queue.h"

namespace ficus::proxy {

policy::Chain BuildRoutePolicies(const config::Config& config, size_t route,
                                 const policy::Chain* previous) {
  policy::BuildContext ctx{config, config.routes[route], route, previous};
  policy::Chain chain;
  policy::BuildProtectPolicies(ctx, chain);
  compress::BuildPolicies(ctx, chain);
  cache::BuildPolicies(ctx, chain);
  queue::BuildPolicies(ctx, chain);
  std::stable_sort(chain.begin(), chain.end(),
                   [](const auto& a, const auto& b) { return a->order() < b->order(); });
  FICUS_CHECK(chain.size() <= policy::Context::kMaxPolicies);
  return chain;
}

}  // namespace ficus::proxy
