// Where a route's policy chain is built: the one list of every module's policy builder. Internal
// to proxy/ (BuildSnapshot calls it).
#pragma once

#include <cstddef>

#include "config/config.h"
#include "policy/policy.h"

namespace ficus::proxy {

// The policies `config.routes[route]` asks for, sorted by policy::Order. `previous` is the same
// route's chain in the running snapshot (null on the first load or for a new route), from which
// builders carry state across a reload. Throws std::runtime_error (startup/reload only) on what
// validation could not catch.
policy::Chain BuildRoutePolicies(const config::Config& config, size_t route,
                                 const policy::Chain* previous);

}  // namespace ficus::proxy
