#include "base/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace ficus::log {
void Init(std::string_view level) {
  auto logger = spdlog::stderr_logger_mt("ficus");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [ficus] %v");
  logger->set_level(spdlog::level::from_str(std::string(level)));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}
}  // namespace ficus::log
