// Logging: spdlog behind a tiny facade so modules do not depend on its headers directly.
// Workers log only on rare events (errors, lifecycle); never per request.
#pragma once

#include <spdlog/spdlog.h>

namespace ficus::log {
using spdlog::debug;
using spdlog::error;
using spdlog::info;
using spdlog::warn;
// Configures the default logger: stderr, with a "[ficus]" pattern. `level` is a spdlog level
// name ("info", "debug", ...).
void Init(std::string_view level);
}  // namespace ficus::log
