// Every access-log field name the config accepts, in the order the writer (observe) writes
// them: config.h's kAccessLogFields and the fields added after it (consumer, termination).
// TODO(merge): fold the two into config.h's list (left there so this change does not rebuild
// every includer of config.h); tests/server/access_log_fields_test.cc checks this list is
// observe's.
#pragma once

#include <iterator>
#include <string>
#include <vector>

#include "config/config.h"

namespace ficus::config::internal {

inline std::vector<std::string> AccessLogFieldNames() {
  std::vector<std::string> names(std::begin(kAccessLogFields), std::end(kAccessLogFields));
  for (const char* added : {"consumer", "termination"}) names.emplace_back(added);
  return names;
}

}  // namespace ficus::config::internal
