// Errors of the socket calls, as the net module reports them: a value on the hot path
// (`LastError`), an exception at setup (`SystemError`: epoll, eventfd, listen).
#pragma once

#include <errno.h>

#include <string>
#include <system_error>

#include "net/net.h"

namespace ficus::net::internal {

inline ErrorCode LastError() { return ErrorCode(errno, std::generic_category()); }

inline std::system_error SystemError(const std::string& what) {
  return std::system_error(errno, std::generic_category(), what);
}

}  // namespace ficus::net::internal
