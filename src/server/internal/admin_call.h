// The command-line tools' one way to the running gateway's admin API (`ficus jobs`, `ficus pg`):
// the config names the admin listener and its token.
#pragma once

#include <string>

#include "client/client.h"

namespace ficus::server {

// Loads the config at `config_path`, sends `req` to its admin listener (with the token in the
// Authorization header, never printed) and writes the answer's body to stdout. Returns 0 for a
// 2xx answer, 1 otherwise (errors on stderr, prefixed with `tool`).
int CallAdminApi(const std::string& config_path, client::Request req, const char* tool);

}  // namespace ficus::server
