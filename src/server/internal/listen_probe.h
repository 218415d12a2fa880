// Before a reload is applied: can the new config's new listeners be opened? Workers open their
// own SO_REUSEPORT sockets after the snapshot is installed, where a failure could only be
// logged; probing first lets a reload that cannot listen be refused with nothing changed.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace ficus::server {

// Binds and listens (SO_REUSEADDR + SO_REUSEPORT, as the workers do) on every listener of
// `next` whose address `running` does not have, then closes the probes. Returns one message
// per address that failed ("listeners[1] 127.0.0.1:8080: Address already in use"); empty when
// all can be opened. Blocking socket calls: main or admin thread only.
std::vector<std::string> ProbeNewListeners(const config::Config& running,
                                           const config::Config& next);

}  // namespace ficus::server
