// The scenario's variables: random_int, pick, csv (a column of a file), counter, uuid.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "load/internal/scenario_reader.h"

namespace ficus::load::internal {

void ScenarioReader::ReadVariable(const std::string& name, const YAML::Node& n,
                                  const std::string& field) {
  Variable v;
  v.name = name;
  const std::string kinds =
      "random_int: [MIN, MAX], pick: [A, B, ...], csv: FILE (with column:), "
      "counter: START, uuid";
  if (n.IsScalar() && n.Scalar() == "uuid") {
    v.kind = Variable::Kind::kUuid;
  } else if (n.IsScalar() && n.Scalar() == "counter") {
    v.kind = Variable::Kind::kCounter;
    v.start = 1;
  } else if (n.IsMap()) {
    std::vector<std::pair<std::string, YAML::Node>> keys;
    Keys(n, field, {"random_int", "pick", "csv", "column", "counter", "uuid"}, &keys);
    auto get = [&](const char* k) -> const YAML::Node* {
      for (auto& [key, node] : keys)
        if (key == k) return &node;
      return nullptr;
    };
    int kinds_given = (get("random_int") ? 1 : 0) + (get("pick") ? 1 : 0) + (get("csv") ? 1 : 0) +
                      (get("counter") ? 1 : 0) + (get("uuid") ? 1 : 0);
    if (kinds_given != 1) {
      Error(n, field, "give exactly one of: " + kinds);
      return;
    }
    if (get("column") && !get("csv")) Error(*get("column"), field + ".column", "only with csv");
    if (const YAML::Node* r = get("random_int")) {
      v.kind = Variable::Kind::kRandomInt;
      if (!r->IsSequence() || r->size() != 2) {
        Error(*r, field + ".random_int", "expected [MIN, MAX]");
        return;
      }
      auto lo = Int((*r)[0], field + ".random_int[0]", INT64_MIN / 2, INT64_MAX / 2);
      auto hi = Int((*r)[1], field + ".random_int[1]", INT64_MIN / 2, INT64_MAX / 2);
      if (!lo || !hi) return;
      if (*lo > *hi) {
        Error(*r, field + ".random_int", "MIN must not be greater than MAX");
        return;
      }
      v.min = *lo;
      v.max = *hi;
    } else if (const YAML::Node* p = get("pick")) {
      v.kind = Variable::Kind::kPick;
      v.values = StrList(*p, field + ".pick", nullptr);
      if (p->IsSequence() && v.values.empty()) {
        Error(*p, field + ".pick", "the list is empty");
        return;
      }
    } else if (const YAML::Node* c = get("csv")) {
      v.kind = Variable::Kind::kPick;
      auto path = Str(*c, field + ".csv");
      if (!path) return;
      const YAML::Node* col = get("column");
      if (!col) {
        Error(n, field + ".column", "missing: name the CSV column (its header) to pick from");
        return;
      }
      auto column = Str(*col, field + ".column");
      if (!column) return;
      std::string full = (!path->empty() && (*path)[0] == '/') ? *path : base_dir_ + *path;
      std::ifstream in(full, std::ios::binary);
      if (!in) {
        Error(*c, field + ".csv", "cannot read '" + full + "'");
        return;
      }
      std::stringstream ss;
      ss << in.rdbuf();
      std::string why;
      auto rows = ParseCsv(ss.str(), &why);
      if (!rows) {
        Error(*c, field + ".csv", full + ": " + why);
        return;
      }
      if (rows->empty()) {
        Error(*c, field + ".csv", full + ": empty (the first row names the columns)");
        return;
      }
      auto& header = (*rows)[0];
      auto at = std::find(header.begin(), header.end(), *column);
      if (at == header.end()) {
        Error(*col, field + ".column",
              "no column '" + *column + "' in " + full + " (has " + Join(header) + ")");
        return;
      }
      size_t index = static_cast<size_t>(at - header.begin());
      for (size_t r = 1; r < rows->size(); ++r) {
        if (index >= (*rows)[r].size()) {
          Error(*c, field + ".csv",
                full + ": line " + std::to_string(r + 1) + " has no column '" + *column + "'");
          return;
        }
        v.values.push_back((*rows)[r][index]);
      }
      if (v.values.empty()) {
        Error(*c, field + ".csv", full + ": no rows after the header");
        return;
      }
    } else if (const YAML::Node* k = get("counter")) {
      v.kind = Variable::Kind::kCounter;
      auto start = Int(*k, field + ".counter", INT64_MIN / 2, INT64_MAX / 2);
      if (!start) return;
      v.start = *start;
    } else {
      v.kind = Variable::Kind::kUuid;
    }
  } else {
    Error(n, field, "expected one of: " + kinds);
    return;
  }
  s_.variables.push_back(std::move(v));
  var_use_.push_back(0);
  var_loc_.push_back(LocOf(n));
}

}  // namespace ficus::load::internal
