// The access log: JSON Lines written by one background thread from the workers' record rings. Part
// of observe.h, the module's interface; include that.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "observe/exchange_record.h"
#include "observe/registry.h"

namespace ficus::observe {

// The fields a line may carry, in the order they are written.
enum class LogField : uint8_t {
  kTime,
  kRequestId,
  kTraceId,
  kClient,
  kMethod,
  kHost,
  kPath,
  kRoute,
  kCluster,
  kEndpoint,
  kStatus,
  kBytesIn,
  kBytesOut,
  kDurationUs,
  kConnectUs,
  kFirstByteUs,
  kRetries,
  kUserAgent,
  kError,
  kConsumer,
  kTermination,
};
inline constexpr int kLogFieldCount = 21;
// The field's JSON key ("time", "request_id", ...); LogFieldByName is its inverse.
std::string_view LogFieldName(LogField f);
bool LogFieldByName(std::string_view name, LogField* out);

struct AccessLogOptions {
  std::string path;              // a file (appended to), or "stdout"
  std::vector<LogField> fields;  // empty = all, in declaration order
  double sample = 1.0;           // share of exchanges logged, 0..1
  size_t ring_capacity = 2048;   // records per worker (power of two)
};

// JSON Lines access log. Workers call Sample() then Submit(); a background thread formats and
// writes. Reopen() (SIGUSR1) makes the writer close and reopen the path: rotate by renaming the
// file, then signal. Only the fields above are written: no header other than Host and
// User-Agent is ever read, so credentials (Authorization, Cookie) cannot leak into it.
class AccessLog {
 public:
  // Opens the file (error text on failure) and starts the writer thread.
  static std::unique_ptr<AccessLog> Open(const AccessLogOptions& options, int workers,
                                         std::string* error);
  ~AccessLog();  // stops the writer after writing what is queued
  bool Sample(int worker) { return rng_[worker].value.Chance(options_.sample); }
  void Submit(int worker, const ExchangeRecord& r) { rings_.Push(worker, r); }
  void Reopen() { reopen_.store(true, std::memory_order_release); }
  // Waits until every record submitted before the call is written (tests, shutdown).
  void Flush();
  uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return rings_.dropped(); }
  uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  uint64_t reopens() const { return reopens_.load(std::memory_order_relaxed); }
  // Formats one record as a line (with '\n') per the options; the writer's formatter.
  static void FormatLine(const ExchangeRecord& r, const std::vector<LogField>& fields,
                         int64_t unix_offset_ns, std::string& out);
  // The most bytes FormatLine writes for `r`: it sizes the line once with this.
  static size_t MaxLineBytes(const ExchangeRecord& r, const std::vector<LogField>& fields);
  // ficus_access_log_* families.
  void Collect(MetricWriter& w) const;

 private:
  AccessLog(const AccessLogOptions& options, int workers, int fd);
  void Run();
  bool OpenFile(std::string* error);
  struct alignas(64) PaddedRandom {
    FastRandom value{0};
  };
  AccessLogOptions options_;
  RecordRings rings_;
  std::unique_ptr<PaddedRandom[]> rng_;
  int fd_ = -1;
  bool own_fd_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> reopen_{false};
  std::atomic<uint64_t> written_{0};
  std::atomic<uint64_t> write_errors_{0};
  std::atomic<uint64_t> reopens_{0};
  std::atomic<uint64_t> consumed_{0};
  std::atomic<int> flush_{0};  // Flush() callers waiting: write without delay
  std::thread thread_;
};

}  // namespace ficus::observe
