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

// "http[s]://host[:port][/path][?query]" for webhooks: no userinfo, no fragment, no whitespace
// or control characters. The host is an IP literal ("[v6]" in brackets) or a DNS name; the port
// defaults to 80 (http) or 443 (https). Fills `out` (url and ca_file left as they were).
bool ParseHttpUrl(std::string_view text, Webhook* out, std::string* error);

// A `ca_file` setting: a regular file this process can read (its PEM content is checked when
// the first TLS connection uses it). False with *error set otherwise.
bool ReadableFile(const std::string& path, std::string* error);

}  // namespace ficus::config::internal
