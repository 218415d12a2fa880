// Scalar grammars of the `slos:` section (percentages, webhook URLs), kept apart from the
// YAML walk like values.h so that each is unit-tested and fuzzed on its own
// (fuzz/slo_values_fuzz.cc). Errors are reason strings; the caller adds the position.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace ficus::config::internal {

// "99.9%" -> 0.999. A decimal number with at most 4 fractional digits, then '%', strictly
// between 0 and 100: an objective of 100 % has no error budget, so burn rates are undefined.
// Returns nullopt and sets *error otherwise.
std::optional<double> ParsePercent(std::string_view text, std::string* error);
// The inverse: 0.999 -> "99.9%", 0.99995 -> "99.995%" (shortest text that parses back).
std::string FormatPercent(double fraction);

// "http://host[:port][/path][?query]" for webhooks: scheme http only (https needs a TLS client
// ficus does not have), no userinfo, no fragment, no whitespace or control characters. The
// host is an IP literal ("[v6]" in brackets) or a DNS name. Fills `out` (url left empty).
bool ParseHttpUrl(std::string_view text, Webhook* out, std::string* error);

}  // namespace ficus::config::internal
