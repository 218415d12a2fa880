// Every access-log field name the config accepts (config.h's kAccessLogFields), in the order
// the writer (observe) writes them, as strings; tests/server/access_log_fields_test.cc checks
// this list is observe's.
#pragma once

#include <iterator>
#include <string>
#include <vector>

#include "config/config.h"

namespace ficus::config::internal {

inline std::vector<std::string> AccessLogFieldNames() {
  return {std::begin(kAccessLogFields), std::end(kAccessLogFields)};
}

}  // namespace ficus::config::internal
