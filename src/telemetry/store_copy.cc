// A consistent copy of a telemetry database (backup and restore), with SQLite's online backup.
#include <sqlite3.h>

#include <stdexcept>
#include <string>

#include "telemetry/internal/sqlite.h"
#include "telemetry/telemetry.h"

namespace ficus::telemetry {


void Store::Copy(const std::string& src, const std::string& dest) {
  sqlite3* from = nullptr;
  sqlite3* to = nullptr;
  auto close = [&] {
    sqlite3_close(from);
    sqlite3_close(to);
  };
  if (sqlite3_open_v2(src.c_str(), &from, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string why = from ? sqlite3_errmsg(from) : "out of memory";
    close();
    throw std::runtime_error("cannot open " + src + ": " + why);
  }
  if (sqlite3_open_v2(dest.c_str(), &to, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string why = to ? sqlite3_errmsg(to) : "out of memory";
    close();
    throw std::runtime_error("cannot open " + dest + ": " + why);
  }
  sqlite3_busy_timeout(from, 5000);
  sqlite3_busy_timeout(to, 5000);
  // Check that the source is a ficus store before overwriting anything.
  {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(from, "SELECT COUNT(*) FROM rollup", -1, &st, nullptr);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
      std::string why = sqlite3_errmsg(from);
      close();
      throw std::runtime_error(src + " is not a ficus telemetry database: " + why);
    }
  }
  sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
  if (!b) {
    std::string why = sqlite3_errmsg(to);
    close();
    throw std::runtime_error("backup " + src + " -> " + dest + ": " + why);
  }
  // All pages in one step: the copy is one read transaction on the source, so it is a
  // consistent snapshot even while ficus writes (WAL readers do not block the writer).
  int rc;
  int busy = 0;
  while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    if (++busy > 500) break;
    sqlite3_sleep(10);
  }
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    std::string why = sqlite3_errstr(rc);
    close();
    throw std::runtime_error("backup " + src + " -> " + dest + ": " + why);
  }
  // Leave a self-contained file: the copy's pages into its main file, WAL truncated.
  sqlite3_wal_checkpoint_v2(to, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  close();
}

}  // namespace ficus::telemetry
