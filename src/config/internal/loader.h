// The YAML walk: schema, types, ranges and cross-references, collecting every error with its
// file position and field path. config.cc's LoadFile/LoadString are thin wrappers around it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace ficus::config::internal {

// REQUIRES: options.resolve and options.getenv are set (config.cc fills in the defaults).
// May throw (std::bad_alloc, a yaml-cpp bug): the public wrappers catch everything.
LoadResult LoadYaml(std::string_view yaml, std::string_view source, const LoadOptions& options);

// The default LoadOptions::resolve: getaddrinfo, first IPv4 address, else first IPv6 address.
std::optional<std::string> ResolveWithGetaddrinfo(const std::string& name, std::string* error);

}  // namespace ficus::config::internal
