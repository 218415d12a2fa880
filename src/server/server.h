// ficus::server — the process: loads the config, starts one worker thread per core with its
// own event loop, the admin listener, and handles signals (SIGHUP reload, SIGTERM/SIGINT
// graceful drain). apps/ficus_main.cc is a thin CLI over these two calls.
#pragma once

#include <optional>
#include <string>

namespace ficus::server {

// `ficus run`: serves until SIGTERM/SIGINT and a graceful drain. Returns the exit code
// (0 after a clean drain, 1 when the config is invalid or a listener cannot be opened).
int Run(const std::string& config_path);

// `ficus check`: validates the config and prints what it would serve (stdout, exit 0) or
// every error as FILE:LINE:COL: field.path: reason (stderr, exit 1).
int Check(const std::string& config_path);

// `ficus backup DEST`: a consistent online copy of the data directory's database into the
// directory DEST (created if needed) as DEST/ficus.db, and the job store as DEST/queue.db when
// there is one, while ficus may be running. Returns 0,
// or 1 with the reason on stderr.
int Backup(const std::string& data_dir, const std::string& dest);

// `ficus restore SRC`: copies SRC/ficus.db (or SRC itself when it is a file) over the data
// directory's database. Safe while ficus runs (it sees the restored contents from its next
// write on); refuses a file that is not a ficus telemetry database.
int Restore(const std::string& src, const std::string& data_dir);

// `ficus jobs list|show|retry|purge|dead`: the running gateway's job queue through its admin
// API (address and token from the config). `arg`: the job id (show, retry) or the state
// (purge; list: an optional filter). Prints the JSON answer; 0 on a 2xx, else 1.
int JobsCommand(const std::string& config_path, const std::string& action, const std::string& arg,
                const std::string& queue, int limit);
// `ficus pg pause|resume|status`: the PostgreSQL proxy through the admin API (token from the
// config). Prints the answer; 0 on a 2xx.
// `ficus pg pause|resume|status`, and `ficus pg explain FINGERPRINT [--analyze]` (`arg`).
int PgCommand(const std::string& config_path, const std::string& action,
              const std::string& arg = "", bool analyze = false);

// The data directory a config names (for backup/restore with -c); prints errors, nullopt on
// an invalid config.
std::optional<std::string> DataDirOf(const std::string& config_path);

}  // namespace ficus::server
