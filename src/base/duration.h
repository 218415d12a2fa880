// Durations as people write them: the one grammar of the config file and the command line.
//
// A duration is one or more segments, each a decimal number and a unit, with nothing between
// them: `250ms`, `1.5s`, `2m`, `1h30m`, `1d`. Units: `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h`,
// `d`. A bare number is refused (is `90` seconds or milliseconds?), except `0`, which is zero in
// any unit. At most about 34 years (2^40 ms), and a whole number of nanoseconds. Users of a
// duration add their own range (the config also wants whole milliseconds).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ficus {

// What a duration looks like, for messages: "a number with a unit (ns, us, ms, s, m, h, d),
// such as 250ms, 1.5s or 1h30m".
extern const std::string_view kDurationForm;

// `text` in nanoseconds, or nullopt with *error (when not null) set to why, in words that fit
// after "field: " (e.g. "'90' has no unit: write 90s or 90ms (units ns, us, ms, s, m, h, d)").
std::optional<int64_t> ParseDurationNs(std::string_view text, std::string* error = nullptr);

}  // namespace ficus
