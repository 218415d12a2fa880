// Helpers every rendering of the report shares (format.cc, format_html.cc): times, numbers,
// money and the lines several sections print alike.
#pragma once

#include <cstdint>
#include <string>

#include "advisor/advisor.h"

namespace ficus::advisor::internal {

std::string Time(int64_t ms);  // "2026-12-05 03:04:05Z"
// One line on an assessment window for the SLO section of every format.
std::string SyntheticNote(const Report::SyntheticWindow& w);
// One line on ficus's own load in the period (empty when there was none).
std::string SyntheticLoadNote(const Report& r);
// A deploy or reload and what changed around it (text and Markdown).
std::string CorrelationLine(const Correlation& c);
std::string Num(double v);  // finite numbers only: JSON has no NaN or infinity ("null")
const char* Level(int v);   // "low", "medium", "high"
std::string Money(double v);
std::string MixCapacity(const Report& r);  // "120.0" or "≥ 120.0" (a lower bound)
std::string Instances(const Growth& g);    // "3" or "≤ 3"

}  // namespace ficus::advisor::internal
