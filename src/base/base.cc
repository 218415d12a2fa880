#include "base/base.h"

#include <atomic>
#include <cstdio>
#include <ctime>

namespace ficus {

std::string_view ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kBadRequest:
      return "bad_request";
    case ErrorKind::kHeadTooLarge:
      return "head_too_large";
    case ErrorKind::kBodyTooLarge:
      return "body_too_large";
    case ErrorKind::kHeadTimeout:
      return "head_timeout";
    case ErrorKind::kNotImplemented:
      return "not_implemented";
    case ErrorKind::kBadVersion:
      return "bad_version";
    case ErrorKind::kNoRoute:
      return "no_route";
    case ErrorKind::kConnectFailed:
      return "connect_failed";
    case ErrorKind::kUpstreamTimeout:
      return "upstream_timeout";
    case ErrorKind::kUpstreamReset:
      return "upstream_reset";
    case ErrorKind::kUpstreamProtocol:
      return "upstream_protocol";
    case ErrorKind::kUpstreamRetryStatus:
      return "upstream_retry_status";
    case ErrorKind::kDownstreamClosed:
      return "downstream_closed";
    case ErrorKind::kOverloaded:
      return "overloaded";
    case ErrorKind::kInternal:
      return "internal";
    case ErrorKind::kConfig:
      return "config";
  }
  return "unknown";
}

namespace {
std::atomic<uint64_t> g_bug_count{0};
}

void CheckFailed(const char* file, int line, const char* expr) {
  std::fprintf(stderr, "ficus: check failed at %s:%d: %s\n", file, line, expr);
  std::abort();
}

void BugHit(const char* file, int line, const char* expr) {
  // Rate-limit the message: a bug on the hot path must not flood the log.
  uint64_t n = g_bug_count.fetch_add(1, std::memory_order_relaxed);
  if ((n & (n + 1)) == 0) {  // 1st, 2nd, 4th, 8th ... occurrence
    std::fprintf(stderr, "ficus: bug #%llu at %s:%d: %s\n", static_cast<unsigned long long>(n + 1),
                 file, line, expr);
  }
}

uint64_t BugCount() { return g_bug_count.load(std::memory_order_relaxed); }

int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t UnixMinusMonotonicNanos() {
  timespec real, mono;
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t{real.tv_sec} - mono.tv_sec) * 1'000'000'000 + (real.tv_nsec - mono.tv_nsec);
}

int64_t CoarseMonotonicMillis() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
}

int64_t WallMicros() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace ficus
