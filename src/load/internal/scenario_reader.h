// The scenario file's reader, shared by its files: the generic value readers
// (scenario_values.cc), variables (scenario_variables.cc), requests and the file as a whole
// (scenario.cc). Errors are collected with their positions and reported sorted.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "load/internal/scenario.h"
#include "load/internal/template.h"

namespace ficus::load::internal {

struct Loc {
  int line = 0, column = 0;
};
inline Loc LocOf(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

// "a, b, c".
std::string Join(const std::vector<std::string>& names);

// Where a text is used decides which bytes a value may hold.
enum Use : uint8_t { kInPath = 1, kInHeader = 2 };
// Why `value` cannot be used where `use` says; empty when it can.
std::string BadFor(std::string_view value, uint8_t use);

class ScenarioReader {
 public:
  ScenarioReader(std::string file, std::string base_dir, std::vector<std::string>* errors)
      : file_(std::move(file)), base_dir_(std::move(base_dir)), errors_(errors) {}

  std::optional<Scenario> Run(std::string_view yaml);

 private:
  std::optional<Scenario> Read(std::string_view yaml);
  void Error(Loc loc, const std::string& field, const std::string& reason) {
    found_.push_back({loc, file_ + ":" + std::to_string(loc.line) + ":" +
                               std::to_string(loc.column) + ": " + field + ": " + reason});
  }
  void Error(const YAML::Node& n, const std::string& field, const std::string& reason) {
    Error(LocOf(n), field, reason);
  }
  // The map's keys, each checked against `allowed` (unknown/duplicate keys are errors).
  bool Keys(const YAML::Node& n, const std::string& field, const std::vector<std::string>& allowed,
            std::vector<std::pair<std::string, YAML::Node>>* out);
  std::optional<std::string> Str(const YAML::Node& n, const std::string& field);
  std::optional<int64_t> Int(const YAML::Node& n, const std::string& field, int64_t min,
                             int64_t max);
  std::optional<double> Number(const YAML::Node& n, const std::string& field);
  std::vector<std::string> StrList(const YAML::Node& n, const std::string& field,
                                   std::vector<YAML::Node>* nodes);
  void ReadVariable(const std::string& name, const YAML::Node& n, const std::string& field);
  void ReadRequest(const YAML::Node& n, const std::string& field);
  std::optional<Template> Compile(const YAML::Node& n, const std::string& field, uint8_t use);

  std::string file_, base_dir_;
  std::vector<std::string>* errors_;
  std::vector<std::pair<Loc, std::string>> found_;  // sorted by position at the end
  Scenario s_;
  std::vector<uint8_t> var_use_;  // per variable: where it is used
  std::vector<Loc> var_loc_;
};

}  // namespace ficus::load::internal
