// The mergeable sketches (latency histogram, HyperLogLog) and their compact encodings, and
// (header redaction for error samples: redact.cc).
#include <algorithm>
#include <bit>
#include <cmath>

#include "telemetry/telemetry.h"

namespace ficus::telemetry {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>(static_cast<uint8_t>(v) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Reads one varint at `*pos`; false on truncation or more than 64 bits.
bool GetVarint(std::string_view in, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= in.size()) return false;
    const uint8_t b = static_cast<uint8_t>(in[(*pos)++]);
    if (shift == 63 && b > 1) return false;
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

constexpr char kHllSparse = 'S';
constexpr char kHllDense = 'D';
constexpr uint8_t kMaxRank = 64 - Hll::kPrecision + 1;

}  // namespace

// ---------------------------------------------------------------------------------------------
// LatencyHistogram

void LatencyHistogram::Merge(const LatencyHistogram& o) {
  for (int i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
}

uint64_t LatencyHistogram::Count() const {
  uint64_t n = 0;
  for (uint64_t b : buckets) n += b;
  return n;
}

double LatencyHistogram::PercentileMicros(double q) const {
  // In double: counts decoded from a damaged file may sum past 2^64.
  double total = 0;
  for (uint64_t b : buckets) total += static_cast<double>(b);
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The rank of the wanted value (1-based), then the bucket holding it.
  const double rank = std::max(1.0, q * total);
  double below = 0;
  for (int i = 0; i < kBuckets; ++i) {
    const double n = static_cast<double>(buckets[i]);
    if (n == 0) continue;
    if (below + n >= rank) {
      if (i == kBuckets - 1)
        return static_cast<double>(observe::Histogram::UpperBoundMicros(i - 1));
      const double hi = observe::Histogram::UpperBoundSeconds(i) * 1e6;
      const double lo = i == 0 ? 0.0 : observe::Histogram::UpperBoundSeconds(i - 1) * 1e6;
      return lo + (hi - lo) * ((rank - below) / n);
    }
    below += n;
  }
  return observe::Histogram::UpperBoundSeconds(kBuckets - 2) * 1e6;
}

uint64_t LatencyHistogram::CountAtOrBelow(uint64_t micros) const {
  uint64_t n = 0;
  for (int i = 0; i < kBuckets - 1 && observe::Histogram::UpperBoundMicros(i) <= micros; ++i) {
    n += buckets[i];
  }
  return n;
}

std::string LatencyHistogram::Encode() const {
  std::string out;
  int prev = -1;
  for (int i = 0; i < kBuckets; ++i) {
    if (buckets[i] == 0) continue;
    PutVarint(out, static_cast<uint64_t>(i - prev - 1));
    PutVarint(out, buckets[i]);
    prev = i;
  }
  return out;
}

std::optional<LatencyHistogram> LatencyHistogram::Decode(std::string_view bytes) {
  LatencyHistogram h;
  size_t pos = 0;
  int next = 0;  // the first bucket index the next gap counts from
  while (pos < bytes.size()) {
    uint64_t gap = 0;
    uint64_t count = 0;
    if (!GetVarint(bytes, &pos, &gap) || !GetVarint(bytes, &pos, &count)) return std::nullopt;
    if (gap >= static_cast<uint64_t>(kBuckets - next) || count == 0) return std::nullopt;
    const int i = next + static_cast<int>(gap);
    h.buckets[i] = count;
    next = i + 1;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// Hll

void Hll::AddHash(uint64_t hash) {
  const uint32_t index = static_cast<uint32_t>(hash >> (64 - kPrecision));
  const uint64_t rest = (hash << kPrecision) | (uint64_t{1} << (kPrecision - 1));
  const uint8_t rank = static_cast<uint8_t>(std::countl_zero(rest) + 1);
  registers[index] = std::max(registers[index], rank);
}

void Hll::Merge(const Hll& o) {
  for (int i = 0; i < kRegisters; ++i) registers[i] = std::max(registers[i], o.registers[i]);
}

bool Hll::Empty() const {
  return std::all_of(registers.begin(), registers.end(), [](uint8_t r) { return r == 0; });
}

double Hll::Estimate() const {
  constexpr double m = kRegisters;
  const double alpha = 0.7213 / (1.0 + 1.079 / m);
  double sum = 0;
  int zeros = 0;
  for (uint8_t r : registers) {
    sum += std::ldexp(1.0, -r);
    zeros += r == 0;
  }
  const double raw = alpha * m * m / sum;
  // Small range: linear counting is far more accurate while registers are still empty.
  if (raw <= 2.5 * m && zeros > 0) return m * std::log(m / zeros);
  return raw;
}

std::string Hll::Encode() const {
  std::string sparse(1, kHllSparse);
  int prev = -1;
  for (int i = 0; i < kRegisters; ++i) {
    if (registers[i] == 0) continue;
    PutVarint(sparse, static_cast<uint64_t>(i - prev - 1));
    sparse += static_cast<char>(registers[i]);
    prev = i;
    if (sparse.size() > 1 + kRegisters) break;  // dense is smaller
  }
  if (sparse.size() <= 1 + kRegisters) return sparse;
  std::string dense(1, kHllDense);
  dense.append(reinterpret_cast<const char*>(registers.data()), registers.size());
  return dense;
}

std::optional<Hll> Hll::Decode(std::string_view bytes) {
  Hll h;
  if (bytes.empty()) return std::nullopt;
  const std::string_view body = bytes.substr(1);
  if (bytes[0] == kHllDense) {
    if (body.size() != kRegisters) return std::nullopt;
    for (int i = 0; i < kRegisters; ++i) {
      const uint8_t r = static_cast<uint8_t>(body[i]);
      if (r > kMaxRank) return std::nullopt;
      h.registers[i] = r;
    }
    return h;
  }
  if (bytes[0] != kHllSparse) return std::nullopt;
  size_t pos = 0;
  int next = 0;
  while (pos < body.size()) {
    uint64_t gap = 0;
    if (!GetVarint(body, &pos, &gap) || pos >= body.size()) return std::nullopt;
    if (gap >= static_cast<uint64_t>(kRegisters - next)) return std::nullopt;
    const uint8_t r = static_cast<uint8_t>(body[pos++]);
    if (r == 0 || r > kMaxRank) return std::nullopt;
    const int i = next + static_cast<int>(gap);
    h.registers[i] = r;
    next = i + 1;
  }
  return h;
}

// ---------------------------------------------------------------------------------------------

std::string_view SeriesKindName(SeriesKind kind) {
  switch (kind) {
    case SeriesKind::kRoute:
      return "route";
    case SeriesKind::kCluster:
      return "cluster";
    case SeriesKind::kEndpoint:
      return "endpoint";
    case SeriesKind::kSynthetic:
      return "synthetic";
  }
  return "unknown";
}

void Rollup::Merge(const Rollup& o) {
  requests += o.requests;
  errors += o.errors;
  bytes_in += o.bytes_in;
  bytes_out += o.bytes_out;
  latency.Merge(o.latency);
  clients.Merge(o.clients);
}

}  // namespace ficus::telemetry
