// Fuzzes the scalar grammars of the config's `slos:` section (config/internal/slo_values.h).
// The first byte picks the parser, the rest is the text. Beyond "never crashes" it checks:
//  - ParsePercent: a result is strictly between 0 and 1, has at most 4 decimals of percent,
//    and FormatPercent of it parses back to exactly the same value; a failure says why;
//  - ParseHttpUrl: a result has a host, a port 1..65535, and an origin-form target starting
//    with '/' without whitespace or '#'; a failure says why.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/internal/slo_values.h"
#include "fuzz/fuzz_check.h"

using namespace ficus;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string error;
  if (data[0] % 2 == 0) {
    const std::optional<double> p = config::internal::ParsePercent(text, &error);
    if (!p) {
      FUZZ_CHECK(!error.empty());
      return 0;
    }
    FUZZ_CHECK(*p > 0 && *p < 1);
    const double units = *p * 1e6;
    FUZZ_CHECK(std::fabs(units - std::round(units)) < 1e-6);
    const std::string again = config::internal::FormatPercent(*p);
    std::string error2;
    const std::optional<double> q = config::internal::ParsePercent(again, &error2);
    FUZZ_CHECK(q && *q == *p);
  } else {
    config::Webhook w;
    if (!config::internal::ParseHttpUrl(text, &w, &error)) {
      FUZZ_CHECK(!error.empty());
      return 0;
    }
    FUZZ_CHECK(!w.host.empty());
    FUZZ_CHECK(w.port >= 1);
    FUZZ_CHECK(!w.target.empty() && w.target[0] == '/');
    for (char c : w.target) FUZZ_CHECK(c > 0x20 && c < 0x7f && c != '#');
  }
  return 0;
}
