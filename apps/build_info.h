// What `ficus --version` reports besides the version: the commit the binary was built from.
// Defined in a file generated at build time (cmake/build_info.cmake).
#pragma once

namespace ficus {
// `git rev-parse --short HEAD` of the source tree, or "unknown" outside a git checkout.
extern const char kGitCommit[];
}  // namespace ficus
