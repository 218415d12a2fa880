#include "base/duration.h"

namespace ficus {

const std::string_view kDurationForm =
    "a number with a unit (ns, us, ms, s, m, h, d), such as 250ms, 1.5s or 1h30m";

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

struct Unit {
  std::string_view name;
  uint64_t ns;
};
// Longest names first, so "ms" is not read as "m" followed by "s".
constexpr Unit kUnits[] = {{"ns", 1},
                           {"us", 1'000},
                           {"\xC2\xB5s", 1'000},
                           {"ms", 1'000'000},
                           {"s", 1'000'000'000},
                           {"m", 60'000'000'000},
                           {"h", 3'600'000'000'000},
                           {"d", 86'400'000'000'000}};

constexpr uint64_t kMaxNs = (uint64_t{1} << 40) * 1'000'000;  // 2^40 ms, ~34.8 years

std::string Quoted(std::string_view text) { return "'" + std::string(text) + "'"; }

}  // namespace

std::optional<int64_t> ParseDurationNs(std::string_view text, std::string* error) {
  const auto fail = [&](std::string why) -> std::optional<int64_t> {
    if (error) *error = std::move(why);
    return std::nullopt;
  };
  const std::string_view all = text;
  if (text == "0") return 0;
  if (text.empty()) return fail("expected " + std::string(kDurationForm) + ", got nothing");
  unsigned __int128 total = 0;
  while (!text.empty()) {
    // <digits>[.<digits>]
    size_t i = 0;
    while (i < text.size() && IsDigit(text[i])) ++i;
    size_t int_digits = i, frac_digits = 0;
    if (i < text.size() && text[i] == '.') {
      size_t j = i + 1;
      while (j < text.size() && IsDigit(text[j])) ++j;
      frac_digits = j - i - 1;
      if (frac_digits == 0) int_digits = 0;  // "1." is not a number
      i = j;
    }
    if (int_digits == 0 || int_digits > 18 || frac_digits > 18) {
      return fail("expected " + std::string(kDurationForm) + ", got " + Quoted(all));
    }
    uint64_t whole = 0, frac = 0, scale = 1;
    for (size_t k = 0; k < int_digits; ++k) whole = whole * 10 + (text[k] - '0');
    for (size_t k = int_digits + 1; k < int_digits + 1 + frac_digits; ++k) {
      frac = frac * 10 + (text[k] - '0');
      scale *= 10;
    }
    text.remove_prefix(i);
    const Unit* unit = nullptr;
    for (const Unit& u : kUnits) {
      if (text.starts_with(u.name)) {
        unit = &u;
        break;
      }
    }
    if (!unit) {
      if (text.empty() && all.size() == i) {
        const std::string n(all);
        return fail(Quoted(all) + " has no unit: write " + n + "s or " + n +
                    "ms (units ns, us, ms, s, m, h, d)");
      }
      return fail("expected " + std::string(kDurationForm) + ", got " + Quoted(all));
    }
    text.remove_prefix(unit->name.size());
    const unsigned __int128 frac_ns = static_cast<unsigned __int128>(frac) * unit->ns;
    if (frac_ns % scale != 0) return fail(Quoted(all) + " is finer than a nanosecond");
    total += static_cast<unsigned __int128>(whole) * unit->ns + frac_ns / scale;
    if (total > kMaxNs) return fail(Quoted(all) + " is too long (at most 2^40 ms, ~34 years)");
  }
  return static_cast<int64_t>(total);
}

}  // namespace ficus
