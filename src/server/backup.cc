// `ficus backup` and `ficus restore`: copies of the telemetry database (online) and of the job
// queue (backup online; restore while no ficus runs on the data directory).
#include <cstdio>
#include <filesystem>

#include "queue/queue.h"
#include "server/internal/telemetry_source.h"
#include "server/server.h"
#include "telemetry/telemetry.h"

namespace ficus::server {

int Backup(const std::string& data_dir, const std::string& dest) {
  std::error_code ec;
  std::filesystem::create_directories(dest, ec);
  if (ec) {
    std::fprintf(stderr, "backup: %s: %s\n", dest.c_str(), ec.message().c_str());
    return 1;
  }
  const std::string src = TelemetryDbPath(data_dir);
  if (!std::filesystem::exists(src)) {
    std::fprintf(stderr, "backup: %s does not exist (is data_dir right?)\n", src.c_str());
    return 1;
  }
  const std::string to = TelemetryDbPath(dest);
  try {
    telemetry::Store::Copy(src, to);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "backup: %s\n", e.what());
    return 1;
  }
  std::printf("backed up %s to %s\n", src.c_str(), to.c_str());
  std::string queue_error;
  if (!queue::Backup(data_dir, dest, &queue_error)) {
    std::fprintf(stderr, "backup: %s\n", queue_error.c_str());
    return 1;
  }
  return 0;
}

int Restore(const std::string& src, const std::string& data_dir) {
  const std::string from = std::filesystem::is_directory(src) ? TelemetryDbPath(src) : src;
  if (!std::filesystem::exists(from)) {
    std::fprintf(stderr, "restore: %s does not exist\n", from.c_str());
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    std::fprintf(stderr, "restore: %s: %s\n", data_dir.c_str(), ec.message().c_str());
    return 1;
  }
  // The job queue first: it is refused while a ficus runs on data_dir, and then nothing is
  // restored rather than the telemetry alone.
  bool queue_restored = false;
  std::string queue_error;
  if (std::filesystem::is_directory(src) &&
      !queue::Restore(src, data_dir, &queue_restored, &queue_error)) {
    std::fprintf(stderr, "restore: nothing restored: %s\n", queue_error.c_str());
    return 1;
  }
  if (queue_restored)
    std::printf("restored %s from %s\n", queue::StorePath(data_dir).c_str(), src.c_str());
  const std::string to = TelemetryDbPath(data_dir);
  try {
    telemetry::Store::Copy(from, to);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "restore: %s\n", e.what());
    return 1;
  }
  std::printf("restored %s from %s\n", to.c_str(), from.c_str());
  return 0;
}

}  // namespace ficus::server
