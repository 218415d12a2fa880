// The scenario reader's generic values: maps with known keys, strings, numbers, lists.
#include <algorithm>
#include <charconv>
#include <cmath>

#include "load/internal/scenario_reader.h"

namespace ficus::load::internal {

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out.append(out.empty() ? "" : ", ").append(n);
  return out;
}

std::string BadFor(std::string_view value, uint8_t use) {
  for (unsigned char c : value) {
    if ((use & kInPath) && (c <= 0x20 || c == 0x7f))
      return "has whitespace or a control character (it is used in a path)";
    if ((use & kInHeader) && (c == '\r' || c == '\n' || c == 0))
      return "has CR, LF or NUL (it is used in a header)";
  }
  return "";
}

bool ScenarioReader::Keys(const YAML::Node& n, const std::string& field,
                          const std::vector<std::string>& allowed,
                          std::vector<std::pair<std::string, YAML::Node>>* out) {
  if (!n.IsMap()) {
    Error(n, field, "expected a map with keys " + Join(allowed));
    return false;
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    std::string sub = field.empty() ? key : field + "." + key;
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      Error(it->first, sub, "unknown key '" + key + "'; expected one of: " + Join(allowed));
      continue;
    }
    bool dup = false;
    for (auto& [k, v] : *out) dup = dup || k == key;
    if (dup) {
      Error(it->first, sub, "duplicate key '" + key + "'");
      continue;
    }
    out->emplace_back(key, it->second);
  }
  return true;
}

std::optional<std::string> ScenarioReader::Str(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) {
    Error(n, field, "expected a string");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<int64_t> ScenarioReader::Int(const YAML::Node& n, const std::string& field,
                                           int64_t min, int64_t max) {
  auto s = Str(n, field);
  if (!s) return std::nullopt;
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
  if (s->empty() || ec != std::errc() || end != s->data() + s->size()) {
    Error(n, field, "expected an integer, got '" + *s + "'");
    return std::nullopt;
  }
  if (v < min || v > max) {
    Error(n, field, "must be " + std::to_string(min) + ".." + std::to_string(max) + ", got " + *s);
    return std::nullopt;
  }
  return v;
}

std::optional<double> ScenarioReader::Number(const YAML::Node& n, const std::string& field) {
  auto s = Str(n, field);
  if (!s) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s->c_str(), &end);
  if (s->empty() || end != s->c_str() + s->size() || !std::isfinite(v) || v <= 0) {
    Error(n, field, "expected a positive number, got '" + *s + "'");
    return std::nullopt;
  }
  return v;
}

std::vector<std::string> ScenarioReader::StrList(const YAML::Node& n, const std::string& field,
                                                 std::vector<YAML::Node>* nodes) {
  std::vector<std::string> out;
  if (!n.IsSequence()) {
    Error(n, field, "expected a list");
    return out;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    if (auto s = Str(n[i], field + "[" + std::to_string(i) + "]")) {
      out.push_back(*s);
      if (nodes) nodes->push_back(n[i]);
    }
  }
  return out;
}

}  // namespace ficus::load::internal
