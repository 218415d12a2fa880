// ficus::server — the process: loads the config, starts one worker thread per core with its
// own event loop, the admin listener, and handles signals (SIGHUP reload, SIGTERM/SIGINT
// graceful drain). apps/ficus_main.cc is a thin CLI over these two calls.
#pragma once

#include <string>

namespace ficus::server {

// `ficus run`: serves until SIGTERM/SIGINT and a graceful drain. Returns the exit code
// (0 after a clean drain, 1 when the config is invalid or a listener cannot be opened).
int Run(const std::string& config_path);

// `ficus check`: validates the config and prints what it would serve (stdout, exit 0) or
// every error as FILE:LINE:COL: field.path: reason (stderr, exit 1).
int Check(const std::string& config_path);

}  // namespace ficus::server
