#include "policy/internal/overload.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include "base/log.h"

namespace ficus::policy::internal {

namespace {

uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
}

uint64_t OpenFds() {
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  uint64_t n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n >= 3 ? n - 3 : 0;  // ".", ".." and the directory's own descriptor
}

constexpr std::string_view kShedBody =
    "{\"type\":\"about:blank\",\"title\":\"Service Unavailable\",\"status\":503,"
    "\"detail\":\"The gateway is overloaded; retry after the time in Retry-After.\"}";

}  // namespace

OverloadMonitor& OverloadMonitor::Get() {
  static OverloadMonitor m;
  return m;
}

OverloadMonitor::~OverloadMonitor() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void OverloadMonitor::Configure(const config::Overload& o) {
  std::lock_guard lock(mu_);
  set_points_ = o;
  if (!o.any()) overloaded_.store(false, std::memory_order_relaxed);
  if (o.any() && !thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void OverloadMonitor::Sample() {
  std::lock_guard lock(mu_);
  SampleLocked();
}

// Under mu_: a sample and its verdict belong to one set of set points, so a sample taken with the
// old ones cannot overwrite the verdict of a Configure that came after it.
void OverloadMonitor::SampleLocked() {
  const config::Overload& o = set_points_;
  const uint64_t rss = ResidentBytes(), fds = OpenFds();
  rss_.store(rss, std::memory_order_relaxed);
  fds_.store(fds, std::memory_order_relaxed);
  uint64_t max_fds = o.max_open_files;
  if (max_fds == 0 && o.max_open_files_percent > 0) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      max_fds = rl.rlim_cur * o.max_open_files_percent / 100;
  }
  const bool over = (o.max_memory > 0 && rss > o.max_memory) || (max_fds > 0 && fds > max_fds);
  if (over != overloaded_.exchange(over, std::memory_order_relaxed)) {
    if (over) {
      log::warn("overload: shedding new requests (resident {} MiB, {} descriptors open)", rss >> 20,
                fds);
    } else {
      log::info("overload: over; requests are admitted again");
    }
  }
}

void OverloadMonitor::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    SampleLocked();
    cv_.wait_for(lock, std::chrono::milliseconds(100));
  }
}

Decision OverloadGuard::Admit(Context& ctx) {
  OverloadMonitor& m = OverloadMonitor::Get();
  if (!m.overloaded()) return Decision::Pass();
  m.shed.fetch_add(1, std::memory_order_relaxed);
  ctx.AddResponseHeader("Retry-After", "1");
  return Decision::Respond({503, {}, "application/problem+json", kShedBody});
}

}  // namespace ficus::policy::internal
