// The log-linear latency histogram and the counters a run adds up.
#include <algorithm>
#include <bit>
#include <cmath>

#include "load/load.h"

namespace ficus::load {

size_t Histogram::BucketCount() { return IndexOf(kMaxNanos) + 1; }

size_t Histogram::IndexOf(int64_t v) {
  if (v < 2 * kSubBuckets) return static_cast<size_t>(std::max<int64_t>(v, 0));
  int msb = 63 - std::countl_zero(static_cast<uint64_t>(v));
  int shift = msb - kSubBits;
  return static_cast<size_t>((shift + 1) * kSubBuckets + ((v >> shift) - kSubBuckets));
}

int64_t Histogram::LowestOf(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < 2 * kSubBuckets) return i;
  int64_t shift = i / kSubBuckets - 1;
  return (i % kSubBuckets + kSubBuckets) << shift;
}

int64_t Histogram::WidthOf(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < 2 * kSubBuckets) return 1;
  return int64_t{1} << (i / kSubBuckets - 1);
}

Histogram::Histogram() : counts_(BucketCount(), 0) {}

void Histogram::Record(int64_t nanos) {
  int64_t v = std::clamp(nanos, kMinNanos, kMaxNanos);
  ++counts_[IndexOf(v)];
  ++count_;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
  sum_ += static_cast<double>(v);
}

void Histogram::Reset() {
  if (count_ == 0) return;
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = INT64_MAX;
  max_ = 0;
  sum_ = 0;
}

void Histogram::Merge(const Histogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

int64_t Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1) return max_;
  uint64_t rank = static_cast<uint64_t>(std::ceil(std::max(q, 0.0) * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int64_t mid = LowestOf(i) + WidthOf(i) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

// ---- stats -----------------------------------------------------------------------------------

std::string_view ErrorTypeName(ErrorType t) {
  switch (t) {
    case ErrorType::kConnect:
      return "connect";
    case ErrorType::kTimeout:
      return "timeout";
    case ErrorType::kReset:
      return "reset";
    case ErrorType::kProtocol:
      return "protocol";
  }
  return "unknown";
}

void Stats::Merge(const Stats& o) {
  scheduled += o.scheduled;
  sent += o.sent;
  completed += o.completed;
  dropped += o.dropped;
  late += o.late;
  aborted += o.aborted;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  for (size_t i = 0; i < errors.size(); ++i) errors[i] += o.errors[i];
  for (size_t i = 0; i < status.size(); ++i) status[i] += o.status[i];
  if (sent_per_second.size() < o.sent_per_second.size())
    sent_per_second.resize(o.sent_per_second.size());
  for (size_t i = 0; i < o.sent_per_second.size(); ++i) sent_per_second[i] += o.sent_per_second[i];
  corrected.Merge(o.corrected);
  uncorrected.Merge(o.uncorrected);
  succeeded.Merge(o.succeeded);
}

uint64_t Stats::error_count() const {
  uint64_t n = 0;
  for (uint64_t e : errors) n += e;
  return n;
}

uint64_t Stats::status_at_least(int code) const {
  uint64_t n = 0;
  for (size_t i = static_cast<size_t>(code); i < status.size(); ++i) n += status[i];
  return n;
}

double Summary::error_ratio() const {
  uint64_t ended = stats.completed + stats.error_count();
  if (ended == 0) return 0;
  return static_cast<double>(stats.error_count() + stats.status_at_least(400)) /
         static_cast<double>(ended);
}

double Summary::dropped_ratio() const {
  if (stats.scheduled == 0) return 0;
  return static_cast<double>(stats.dropped) / static_cast<double>(stats.scheduled);
}

}  // namespace ficus::load
