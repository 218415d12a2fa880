// Fuzzes what the telemetry store reads back from its database file (a damaged or foreign file
// must never crash ficus) and the redaction of error sample heads:
//  - LatencyHistogram::Decode / Hll::Decode accept or refuse; what they accept re-encodes to
//    bytes that decode to the same value, and the estimates stay finite;
//  - RedactHead keeps the line count, is idempotent, and leaves no credential field value.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "telemetry/telemetry.h"

using ficus::RedactHead;
using ficus::telemetry::Hll;
using ficus::telemetry::LatencyHistogram;

namespace {

size_t Lines(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  if (auto h = LatencyHistogram::Decode(in)) {
    auto again = LatencyHistogram::Decode(h->Encode());
    FUZZ_CHECK(again && again->buckets == h->buckets);
    const double p99 = h->PercentileMicros(0.99);
    FUZZ_CHECK(std::isfinite(p99) && p99 >= 0);
    FUZZ_CHECK(h->PercentileMicros(0.5) <= p99);
  }
  if (auto h = Hll::Decode(in)) {
    auto again = Hll::Decode(h->Encode());
    FUZZ_CHECK(again && again->registers == h->registers);
    const double e = h->Estimate();
    FUZZ_CHECK(std::isfinite(e) && e >= 0);
  }

  const std::string red = RedactHead(in);
  FUZZ_CHECK(Lines(red) == Lines(in));
  FUZZ_CHECK(RedactHead(red) == red);
  // Every line after the first that names a credential field carries no value but the marker.
  size_t pos = red.find('\n');
  while (pos != std::string::npos && pos + 1 < red.size()) {
    const size_t start = pos + 1;
    pos = red.find('\n', start);
    std::string_view line(red.data() + start,
                          (pos == std::string::npos ? red.size() : pos) - start);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name = Lower(line.substr(0, colon));
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    if (name == "authorization" || name == "proxy-authorization" || name == "cookie" ||
        name == "set-cookie") {
      std::string_view value = line.substr(colon + 1);
      if (value.ends_with('\n')) value.remove_suffix(1);
      if (value.ends_with('\r')) value.remove_suffix(1);
      FUZZ_CHECK(value == " <redacted>");
    }
  }
  return 0;
}
