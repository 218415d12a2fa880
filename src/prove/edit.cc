// Merging a remedy's snippet into the running config's YAML, and the line diff of the two.
#include "prove/internal/edit.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>

namespace ficus::prove::internal {
namespace {

std::string NameOf(const YAML::Node& n) {
  return n.IsMap() && n["name"] && n["name"].IsScalar() ? n["name"].as<std::string>() : "";
}

// A route every request matches: no match at all, or only the prefix "/".
bool CatchAll(const YAML::Node& route) {
  const YAML::Node m = route["match"];
  if (!m || m.IsNull()) return true;
  if (!m.IsMap() || m.size() != 1 || !m["path_prefix"]) return false;
  return m["path_prefix"].IsScalar() && m["path_prefix"].as<std::string>() == "/";
}

void MergeList(const std::string& key, YAML::Node into, const YAML::Node& entries) {
  for (const YAML::Node& entry : entries) {
    const std::string name = NameOf(entry);
    bool merged = false;
    for (YAML::Node existing : into) {
      if (!name.empty() && NameOf(existing) == name) {
        for (const auto& field : entry) existing[field.first.as<std::string>()] = field.second;
        merged = true;
      }
    }
    if (merged) continue;
    if (key != "routes") {
      into.push_back(entry);
      continue;
    }
    // Routes match first-to-last: a new one goes before a catch-all, or it would never match.
    YAML::Node rebuilt(YAML::NodeType::Sequence);
    bool placed = false;
    for (const YAML::Node& existing : into) {
      if (!placed && CatchAll(existing)) {
        rebuilt.push_back(entry);
        placed = true;
      }
      rebuilt.push_back(existing);
    }
    if (!placed) rebuilt.push_back(entry);
    into = rebuilt;
  }
}

void Merge(YAML::Node base, const YAML::Node& snippet) {
  for (const auto& kv : snippet) {
    const std::string key = kv.first.as<std::string>();
    YAML::Node into = base[key];
    if (kv.second.IsSequence() && into && into.IsSequence()) {
      YAML::Node list = into;
      MergeList(key, list, kv.second);
      base[key] = list;
    } else if (kv.second.IsMap() && into && into.IsMap()) {
      Merge(into, kv.second);
    } else {
      base[key] = kv.second;
    }
  }
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

Outcome<std::string> MergeSnippet(const std::string& base_text, const std::string& snippet_text,
                                  const std::vector<std::string>& placeholder_routes) {
  YAML::Node base, snippet;
  try {
    base = YAML::Load(base_text);
  } catch (const YAML::Exception& e) {
    return Failed(std::string("the config does not parse: ") + e.what());
  }
  try {
    snippet = YAML::Load(snippet_text);
  } catch (const YAML::Exception& e) {
    return Failed(std::string("the remedy's snippet does not parse: ") + e.what());
  }
  if (!base.IsMap()) return Failed("the config is not a YAML map");
  if (!snippet.IsMap()) return Failed("the remedy's snippet is not a YAML map");
  if (snippet["routes"] && snippet["routes"].IsSequence()) {
    YAML::Node routes(YAML::NodeType::Sequence);
    for (const YAML::Node& r : snippet["routes"]) {
      if (NameOf(r) != "ROUTE") {
        routes.push_back(r);
        continue;
      }
      if (placeholder_routes.empty())
        return Failed("the snippet is for each route the client uses, and none is known");
      for (const std::string& name : placeholder_routes) {
        YAML::Node copy = YAML::Clone(r);
        copy["name"] = name;
        routes.push_back(copy);
      }
    }
    snippet["routes"] = routes;
  }
  Merge(base, snippet);
  YAML::Emitter out;
  out << base;
  if (!out.good()) return Failed("the merged config cannot be written: " + out.GetLastError());
  return std::string(out.c_str()) + "\n";
}

std::string LineDiff(const std::string& before, const std::string& after, int context) {
  const std::vector<std::string> a = Lines(before), b = Lines(after);
  // Longest common subsequence table (configs are small).
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  std::vector<std::pair<char, std::string>> ops;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      ops.emplace_back(' ', a[i++]);
      ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      ops.emplace_back('-', a[i++]);  // a change reads as the old line, then the new one
    } else {
      ops.emplace_back('+', b[j++]);
    }
  }
  if (std::all_of(ops.begin(), ops.end(), [](const auto& o) { return o.first == ' '; })) return "";
  // Keep `context` unchanged lines around each change.
  std::vector<bool> keep(ops.size(), false);
  for (size_t k = 0; k < ops.size(); ++k) {
    if (ops[k].first == ' ') continue;
    const size_t lo = k >= static_cast<size_t>(context) ? k - context : 0;
    const size_t hi = std::min(ops.size(), k + context + 1);
    for (size_t x = lo; x < hi; ++x) keep[x] = true;
  }
  std::string out;
  bool skipped = false;
  for (size_t k = 0; k < ops.size(); ++k) {
    if (!keep[k]) {
      if (!skipped) out += "  ...\n";
      skipped = true;
      continue;
    }
    skipped = false;
    out += ops[k].first;
    out += ' ';
    out += ops[k].second;
    out += '\n';
  }
  return out;
}

}  // namespace ficus::prove::internal
