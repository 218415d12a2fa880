// Scenario YAML -> validated Scenario (errors with positions): its requests and the file as a
// whole.
#include "load/internal/scenario.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "load/internal/scenario_reader.h"
#include "load/load.h"

namespace ficus::load::internal {

std::optional<Template> ScenarioReader::Compile(const YAML::Node& n, const std::string& field,
                                                uint8_t use) {
  auto text = Str(n, field);
  if (!text) return std::nullopt;
  std::string why;
  size_t at = 0;
  auto t = Template::Compile(
      *text,
      [this](std::string_view name) {
        for (size_t i = 0; i < s_.variables.size(); ++i)
          if (s_.variables[i].name == name) return static_cast<int>(i);
        return -1;
      },
      &why, &at);
  if (!t) {
    Loc loc = LocOf(n);
    // Point at the offending character when the scalar is on one line (quoted: one further).
    if (text->find('\n') == std::string::npos)
      loc.column += static_cast<int>(at) + (n.Tag() == "!" ? 1 : 0);
    Error(loc, field, why);
    return std::nullopt;
  }
  for (int32_t v : t->vars()) var_use_[static_cast<size_t>(v)] |= use;
  // The literal parts must be safe where they are used (variable values are checked later).
  if (std::string bad = BadFor(t->literals(), use); !bad.empty()) {
    Error(n, field, "the text " + bad);
    return std::nullopt;
  }
  return t;
}

void ScenarioReader::ReadRequest(const YAML::Node& n, const std::string& field) {
  std::vector<std::pair<std::string, YAML::Node>> keys;
  if (!Keys(n, field, {"name", "weight", "method", "path", "headers", "body"}, &keys)) return;
  RequestTemplate r;
  r.name = field;
  bool ok = true, has_path = false;
  for (auto& [key, v] : keys) {
    std::string sub = field + "." + key;
    if (key == "name") {
      if (auto s = Str(v, sub)) r.name = *s;
    } else if (key == "weight") {
      if (auto w = Int(v, sub, 0, 1'000'000))
        r.weight = static_cast<uint32_t>(*w);
      else
        ok = false;
    } else if (key == "method") {
      auto m = Str(v, sub);
      if (!m || !IsToken(*m)) {
        if (m) Error(v, sub, "'" + *m + "' is not an HTTP method token");
        ok = false;
      } else {
        r.method = *m;
        r.parsed_method = http::ParseMethod(*m);
      }
    } else if (key == "path") {
      has_path = true;
      auto t = Compile(v, sub, kInPath);
      if (!t) {
        ok = false;
      } else if (t->parts().empty() || t->parts()[0].var >= 0 || t->literals()[0] != '/') {
        Error(v, sub, "must start with '/'");
        ok = false;
      } else {
        r.path = std::move(*t);
      }
    } else if (key == "headers") {
      if (!v.IsMap()) {
        Error(v, sub, "expected a map of header names to values");
        ok = false;
        continue;
      }
      for (auto it = v.begin(); it != v.end(); ++it) {
        std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        if (!IsToken(name)) {
          Error(it->first, sub, "'" + name + "' is not a header name");
          ok = false;
          continue;
        }
        auto t = Compile(it->second, sub + "." + name, kInHeader);
        if (!t) {
          ok = false;
          continue;
        }
        if (http::EqualsIgnoreCase(name, "host")) r.has_host = true;
        if (http::EqualsIgnoreCase(name, "user-agent")) r.has_agent = true;
        if (http::EqualsIgnoreCase(name, "content-length") ||
            http::EqualsIgnoreCase(name, "transfer-encoding")) {
          Error(it->first, sub + "." + name, "is computed from the body; leave it out");
          ok = false;
          continue;
        }
        r.headers.emplace_back(name, std::move(*t));
      }
    } else if (key == "body") {
      auto t = Compile(v, sub, 0);
      if (t)
        r.body = std::move(*t);
      else
        ok = false;
    }
  }
  if (!has_path) {
    Error(n, field + ".path", "missing required key 'path'");
    ok = false;
  }
  if (!ok) return;
  auto add = [&r](const Template& t) {
    for (int32_t v : t.vars())
      if (std::find(r.vars.begin(), r.vars.end(), v) == r.vars.end()) r.vars.push_back(v);
  };
  add(r.path);
  for (auto& [name, t] : r.headers) add(t);
  if (r.body) add(*r.body);
  s_.requests.push_back(std::move(r));
}

std::optional<Scenario> ScenarioReader::Run(std::string_view yaml) {
  std::optional<Scenario> s = Read(yaml);
  std::stable_sort(found_.begin(), found_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  for (auto& [loc, text] : found_) errors_->push_back(std::move(text));
  if (!found_.empty()) return std::nullopt;
  return s;
}

std::optional<Scenario> ScenarioReader::Read(std::string_view yaml) {
  const size_t before = 0;
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    Error(Loc{e.mark.line + 1, e.mark.column + 1}, "(file)", "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
  if (!root.IsMap()) {
    Error(Loc{1, 1}, "(file)", "a scenario is a map with at least 'requests'");
    return std::nullopt;
  }
  s_.file = file_;
  std::vector<std::pair<std::string, YAML::Node>> keys;
  Keys(root, "",
       {"target", "rate", "profile", "stages", "duration", "connections", "threads", "timeout",
        "closed", "seed", "thresholds", "variables", "requests"},
       &keys);
  auto get = [&](const char* k) -> const YAML::Node* {
    for (auto& [key, node] : keys)
      if (key == k) return &node;
    return nullptr;
  };
  std::string error;
  if (auto* n = get("target")) {
    if (auto t = Str(*n, "target")) {
      auto url = ParseUrl(*t, &error);
      if (!url)
        Error(*n, "target", error);
      else if (url->target != "/")
        Error(*n, "target", "give only http://HOST:PORT; request paths go in requests[].path");
      else
        s_.target = *t;
    }
  }
  if (auto* n = get("rate")) {
    if (auto r = Number(*n, "rate")) s_.rate = *r;
  }
  if (auto* n = get("duration")) {
    if (auto d = Str(*n, "duration")) {
      auto ns = ParseDuration(*d, &error);
      if (!ns)
        Error(*n, "duration", error);
      else if (*ns <= 0)
        Error(*n, "duration", "expected a positive duration such as 30s, got '" + *d + "'");
      else
        s_.duration = *d;
    }
  }
  int64_t duration_ns = s_.duration.empty() ? 10'000'000'000 : *ParseDuration(s_.duration);
  if (auto* n = get("profile")) {
    if (auto p = Str(*n, "profile")) {
      if (!ParseProfile(*p, duration_ns, &error))
        Error(*n, "profile", error);
      else
        s_.profile = *p;
    }
  }
  if (auto* n = get("stages")) {
    std::vector<YAML::Node> nodes;
    auto stages = StrList(*n, "stages", &nodes);
    bool ok = true;
    for (size_t i = 0; i < stages.size(); ++i) {
      if (!ParseStages({stages[i]}, &error)) {
        Error(nodes[i], "stages[" + std::to_string(i) + "]", error);
        ok = false;
      }
    }
    if (ok && n->IsSequence() && stages.empty()) Error(*n, "stages", "the list is empty");
    if (ok) s_.stages = stages;
  }
  int given = (get("rate") ? 1 : 0) + (get("profile") ? 1 : 0) + (get("stages") ? 1 : 0);
  if (given > 1) Error(root, "rate", "give one of rate, profile and stages");
  if (auto* n = get("connections")) {
    if (auto c = Int(*n, "connections", 1, 1'000'000)) s_.connections = static_cast<int>(*c);
  }
  if (auto* n = get("threads")) {
    if (auto c = Int(*n, "threads", 1, 1024)) s_.threads = static_cast<int>(*c);
  }
  if (auto* n = get("timeout")) {
    if (auto d = Str(*n, "timeout")) {
      auto ns = ParseDuration(*d, &error);
      if (!ns)
        Error(*n, "timeout", error);
      else if (*ns <= 0)
        Error(*n, "timeout", "expected a positive duration such as 5s, got '" + *d + "'");
      else
        s_.timeout = *d;
    }
  }
  if (auto* n = get("closed")) {
    auto b = Str(*n, "closed");
    if (b && (*b == "true" || *b == "false"))
      s_.closed = *b == "true";
    else if (b)
      Error(*n, "closed", "expected true or false");
  }
  if (given > 0 && s_.closed) Error(root, "closed", "a closed run takes no rate/profile/stages");
  if (auto* n = get("seed")) {
    if (auto v = Int(*n, "seed", 0, INT64_MAX)) s_.seed = static_cast<uint64_t>(*v);
  }
  if (auto* n = get("thresholds")) {
    std::vector<YAML::Node> nodes;
    auto list = StrList(*n, "thresholds", &nodes);
    for (size_t i = 0; i < list.size(); ++i) {
      if (!ParseThreshold(list[i], &error))
        Error(nodes[i], "thresholds[" + std::to_string(i) + "]", error);
      else
        s_.thresholds.push_back(list[i]);
    }
  }
  if (auto* n = get("variables")) {
    if (!n->IsMap()) {
      Error(*n, "variables", "expected a map of names to definitions");
    } else {
      for (auto it = n->begin(); it != n->end(); ++it) {
        std::string name = it->first.IsScalar() ? it->first.Scalar() : "";
        bool valid = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
        for (char c : name)
          valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                            (c >= '0' && c <= '9') || c == '_');
        if (!valid) {
          Error(it->first, "variables", "'" + name + "' is not a name ([A-Za-z_][A-Za-z0-9_]*)");
          continue;
        }
        bool dup = false;
        for (auto& v : s_.variables) dup = dup || v.name == name;
        if (dup) {
          Error(it->first, "variables." + name, "duplicate variable");
          continue;
        }
        ReadVariable(name, it->second, "variables." + name);
      }
    }
  }
  if (auto* n = get("requests")) {
    if (!n->IsSequence() || n->size() == 0) {
      Error(*n, "requests", "expected a list of at least one request");
    } else {
      for (size_t i = 0; i < n->size(); ++i)
        ReadRequest((*n)[i], "requests[" + std::to_string(i) + "]");
    }
  } else {
    Error(Loc{1, 1}, "requests", "missing required key 'requests'");
  }
  // Variable values must be safe wherever the variable is used.
  for (size_t i = 0; i < s_.variables.size(); ++i) {
    for (const std::string& value : s_.variables[i].values) {
      if (std::string bad = BadFor(value, var_use_[i]); !bad.empty()) {
        Error(var_loc_[i], "variables." + s_.variables[i].name, "value '" + value + "' " + bad);
        break;
      }
    }
  }
  uint64_t sum = 0;
  for (auto& r : s_.requests) s_.cumulative.push_back(sum += r.weight);
  if (found_.size() == before && sum == 0)
    Error(*get("requests"), "requests", "every weight is 0: nothing to send");
  if (found_.size() != before) return std::nullopt;
  return std::move(s_);
}

bool IsToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != 0 && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos);
    if (!ok) return false;
  }
  return true;
}

std::optional<Scenario> LoadScenarioString(std::string_view yaml, const std::string& file,
                                           const std::string& base_dir,
                                           std::vector<std::string>* errors) {
  return ScenarioReader(file, base_dir, errors).Run(yaml);
}

std::optional<Scenario> LoadScenario(const std::string& path, std::vector<std::string>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back(path + ": cannot read the scenario file");
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return LoadScenarioString(ss.str(), path, dir, errors);
}

}  // namespace ficus::load::internal
