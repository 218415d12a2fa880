// The report's before/after section: `ficus prove` results read back from the timeline's
// `proof` events, and their renderings (format.cc calls one function per format).
#pragma once

#include <string>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

inline constexpr const char* kProofEvent = "proof";

// The `proof` events with from_ms <= ts < to_ms, oldest first (notes that do not parse are
// skipped).
std::vector<Proof> ReadProofs(telemetry::Store& store, int64_t from_ms, int64_t to_ms);

std::string ProofsText(const Report& r);
std::string ProofsMarkdown(const Report& r);
std::string ProofsJson(const Report& r);  // `"proofs":[...]`
std::string ProofsHtml(const Report& r);  // a section with a table and a chart

}  // namespace ficus::advisor::internal
