// Process metrics from /proc, read on the scraping thread.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "observe/observe.h"

namespace ficus::observe {
namespace {

// Seconds since the epoch when the machine booted (`btime` in /proc/stat).
double BootTime() {
  std::FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return 0;
  char line[256];
  double btime = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long long v = 0;
    if (std::sscanf(line, "btime %llu", &v) == 1) {
      btime = static_cast<double>(v);
      break;
    }
  }
  std::fclose(f);
  return btime;
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats p;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (std::FILE* f = std::fopen("/proc/self/stat", "r")) {
    char buf[1024];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    // The command name may hold spaces and parentheses: fields resume after the last ')'.
    if (const char* rp = std::strrchr(buf, ')')) {
      unsigned long utime = 0, stime = 0, vsize = 0;
      unsigned long long start = 0;
      long rss = 0;
      // state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
      // stime cutime cstime priority nice threads itrealvalue starttime(22) vsize rss(24)
      if (std::sscanf(rp + 2,
                      "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                      "%*d %llu %lu %ld",
                      &utime, &stime, &start, &vsize, &rss) == 5) {
        p.cpu_seconds = static_cast<double>(utime + stime) / ticks;
        p.virtual_bytes = vsize;
        p.resident_bytes = static_cast<uint64_t>(static_cast<double>(rss) * page);
        p.start_time_seconds = BootTime() + static_cast<double>(start) / ticks;
      }
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    uint64_t n = 0;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') ++n;
    }
    closedir(d);
    p.open_fds = n > 0 ? n - 1 : 0;  // not counting the directory's own descriptor
  }
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p.max_fds = rl.rlim_cur;
  return p;
}

}  // namespace ficus::observe
