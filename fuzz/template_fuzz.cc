// Fuzzes the scenario template compiler and the CSV reader (src/load/internal/template.h).
// The first byte picks the parser. Beyond "does not crash":
//  - a compiled template's parts cover its literal text exactly, in order, and name only
//    variables the lookup knows; rendering with empty values gives exactly the literal text;
//  - input without "{{" compiles to itself, literally;
//  - an error offset lies inside the input;
//  - CSV: every row has at least one field, and re-parsing the rows written back as quoted
//    CSV gives the same rows.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "load/internal/template.h"

namespace {

using ficus::load::internal::ParseCsv;
using ficus::load::internal::Template;

int Lookup(std::string_view name) {
  static const std::string_view kNames[] = {"a", "id", "user_1", "_x"};
  for (size_t i = 0; i < 4; ++i)
    if (name == kNames[i]) return static_cast<int>(i);
  return -1;
}

void FuzzTemplate(std::string_view text) {
  std::string error;
  size_t at = 0;
  auto t = Template::Compile(text, Lookup, &error, &at);
  if (!t) {
    FUZZ_CHECK(!error.empty());
    FUZZ_CHECK(at <= text.size());
    return;
  }
  size_t next = 0;
  for (const Template::Part& p : t->parts()) {
    if (p.var >= 0) {
      FUZZ_CHECK(p.var < 4);
      continue;
    }
    FUZZ_CHECK(p.offset == next && p.length > 0);
    next += p.length;
  }
  FUZZ_CHECK(next == t->literals().size());
  FUZZ_CHECK(t->literals().size() <= text.size());
  std::vector<std::string_view> empty(4);
  std::string out;
  t->Render(empty, out);
  FUZZ_CHECK(out == t->literals());
  if (text.find("{{") == std::string_view::npos) FUZZ_CHECK(out == text && t->constant());
  std::vector<std::string_view> values = {"A", "BB", "CCC", "DDDD"};
  out.clear();
  t->Render(values, out);
  size_t expect = t->literals().size();
  for (const Template::Part& p : t->parts())
    if (p.var >= 0) expect += values[static_cast<size_t>(p.var)].size();
  FUZZ_CHECK(out.size() == expect);
}

void FuzzCsv(std::string_view text) {
  std::string error;
  auto rows = ParseCsv(text, &error);
  if (!rows) {
    FUZZ_CHECK(error.rfind("line ", 0) == 0);
    return;
  }
  std::string again;
  for (const auto& row : *rows) {
    FUZZ_CHECK(!row.empty());
    for (size_t i = 0; i < row.size(); ++i) {
      if (i) again.push_back(',');
      again.push_back('"');
      for (char c : row[i]) {
        if (c == '"') again.push_back('"');
        again.push_back(c);
      }
      again.push_back('"');
    }
    again.push_back('\n');
  }
  auto reparsed = ParseCsv(again, &error);
  FUZZ_CHECK(reparsed.has_value());
  FUZZ_CHECK(*reparsed == *rows);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1)
    FuzzCsv(text);
  else
    FuzzTemplate(text);
  return 0;
}
