// Scenario text templates ("/items/{{id}}") and the small CSV reader behind `csv:` variables.
// Both are parsers of user input, fuzzed by fuzz/template_fuzz.cc. Depends on the standard
// library only, so the fuzz build can compile it alone.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ficus::load::internal {

// A text with `{{name}}` placeholders, compiled once; rendering appends literal pieces and
// variable values to a reused buffer (no allocation once the buffer has grown).
//   {{ name }}   a variable: name = [A-Za-z_][A-Za-z0-9_]*, optional spaces inside the braces
//   \{{          a literal "{{"
// Anything else is literal text (a lone "}}" too).
class Template {
 public:
  struct Part {
    uint32_t offset = 0;  // literal: into literals_
    uint32_t length = 0;
    int32_t var = -1;  // >= 0: a variable index (from the lookup); -1: literal
    bool operator==(const Part&) const = default;
  };

  // Compiles `text`. `lookup` maps a variable name to its index, or -1 when unknown. On error
  // returns nullopt with *error set and *error_offset the byte offset of the problem.
  static std::optional<Template> Compile(std::string_view text,
                                         const std::function<int(std::string_view)>& lookup,
                                         std::string* error, size_t* error_offset);

  // Appends the text with variable i replaced by values[i] (REQUIRES: every index in range).
  void Render(std::span<const std::string_view> values, std::string& out) const {
    for (const Part& p : parts_) {
      if (p.var < 0)
        out.append(literals_.data() + p.offset, p.length);
      else
        out.append(values[static_cast<size_t>(p.var)]);
    }
  }

  bool constant() const { return vars_.empty(); }
  const std::vector<int32_t>& vars() const { return vars_; }  // distinct, in order of use
  const std::vector<Part>& parts() const { return parts_; }
  std::string_view literals() const { return literals_; }

 private:
  std::string literals_;
  std::vector<Part> parts_;
  std::vector<int32_t> vars_;
};

// Comma-separated values, RFC 4180 style: fields may be double-quoted (then they may contain
// commas, newlines and "" for a quote); rows end with \n or \r\n; a final empty line is
// ignored. Returns the rows, or nullopt with *error set ("line 3: ...").
std::optional<std::vector<std::vector<std::string>>> ParseCsv(std::string_view text,
                                                              std::string* error);

}  // namespace ficus::load::internal
