// Scenario YAML -> validated Scenario (errors with positions), and request building.
#include "load/internal/scenario.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "load/load.h"

namespace ficus::load::internal {
namespace {

struct Loc {
  int line = 0, column = 0;
};
Loc LocOf(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out.append(out.empty() ? "" : ", ").append(n);
  return out;
}

// Where a text is used decides which bytes a value may hold.
enum Use : uint8_t { kInPath = 1, kInHeader = 2 };

std::string BadFor(std::string_view value, uint8_t use) {
  for (unsigned char c : value) {
    if ((use & kInPath) && (c <= 0x20 || c == 0x7f))
      return "has whitespace or a control character (it is used in a path)";
    if ((use & kInHeader) && (c == '\r' || c == '\n' || c == 0))
      return "has CR, LF or NUL (it is used in a header)";
  }
  return "";
}

class Reader {
 public:
  Reader(std::string file, std::string base_dir, std::vector<std::string>* errors)
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

bool Reader::Keys(const YAML::Node& n, const std::string& field,
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

std::optional<std::string> Reader::Str(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) {
    Error(n, field, "expected a string");
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<int64_t> Reader::Int(const YAML::Node& n, const std::string& field, int64_t min,
                                   int64_t max) {
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

std::optional<double> Reader::Number(const YAML::Node& n, const std::string& field) {
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

std::vector<std::string> Reader::StrList(const YAML::Node& n, const std::string& field,
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

void Reader::ReadVariable(const std::string& name, const YAML::Node& n, const std::string& field) {
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

std::optional<Template> Reader::Compile(const YAML::Node& n, const std::string& field,
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

void Reader::ReadRequest(const YAML::Node& n, const std::string& field) {
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

std::optional<Scenario> Reader::Run(std::string_view yaml) {
  std::optional<Scenario> s = Read(yaml);
  std::stable_sort(found_.begin(), found_.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  for (auto& [loc, text] : found_) errors_->push_back(std::move(text));
  if (!found_.empty()) return std::nullopt;
  return s;
}

std::optional<Scenario> Reader::Read(std::string_view yaml) {
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

}  // namespace

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
  return Reader(file, base_dir, errors).Run(yaml);
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

// ---- building requests -----------------------------------------------------------------------

RequestBuilder::RequestBuilder(const Scenario& scenario, std::string host_header, uint64_t seed)
    : scenario_(scenario),
      host_header_(std::move(host_header)),
      rng_(seed),
      values_(scenario.variables.size()),
      scratch_(scenario.variables.size()) {}

void RequestBuilder::Draw(int32_t var) {
  const size_t i = static_cast<size_t>(var);
  const Variable& v = scenario_.variables[i];
  char* buf = scratch_[i].data();
  switch (v.kind) {
    case Variable::Kind::kRandomInt:
    case Variable::Kind::kCounter: {
      int64_t n;
      if (v.kind == Variable::Kind::kCounter) {
        n = v.start + scenario_.counter->fetch_add(1, std::memory_order_relaxed);
      } else {
        uint64_t span = static_cast<uint64_t>(v.max - v.min) + 1;
        n = v.min + static_cast<int64_t>(span == 0 ? rng_() : rng_() % span);
      }
      auto [end, ec] = std::to_chars(buf, buf + 40, n);
      values_[i] = std::string_view(buf, static_cast<size_t>(end - buf));
      break;
    }
    case Variable::Kind::kPick:
      values_[i] = v.values[rng_() % v.values.size()];
      break;
    case Variable::Kind::kUuid: {
      static constexpr char kHex[] = "0123456789abcdef";
      uint64_t a = rng_(), b = rng_();
      a = (a & ~0xF000ull) | 0x4000ull;                         // version 4
      b = (b & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // variant 10
      int p = 0;
      for (int k = 0; k < 32; ++k) {
        if (k == 8 || k == 12 || k == 16 || k == 20) buf[p++] = '-';
        uint64_t word = k < 16 ? a : b;
        buf[p++] = kHex[(word >> (4 * (15 - (k % 16)))) & 0xF];
      }
      values_[i] = std::string_view(buf, 36);
      break;
    }
  }
}

const RequestTemplate& RequestBuilder::Build(std::string& out) {
  const auto& cum = scenario_.cumulative;
  size_t pick = 0;
  if (cum.size() > 1) {
    uint64_t x = rng_() % cum.back();
    pick = static_cast<size_t>(std::upper_bound(cum.begin(), cum.end(), x) - cum.begin());
  }
  const RequestTemplate& r = scenario_.requests[pick];
  for (int32_t v : r.vars) Draw(v);
  out.clear();
  out.append(r.method).append(" ");
  r.path.Render(values_, out);
  out.append(" HTTP/1.1\r\n");
  if (!r.has_host) out.append("Host: ").append(host_header_).append("\r\n");
  if (!r.has_agent) out.append("User-Agent: ficus-load\r\n");
  for (const auto& [name, value] : r.headers) {
    out.append(name).append(": ");
    value.Render(values_, out);
    out.append("\r\n");
  }
  if (r.body) {
    body_.clear();
    r.body->Render(values_, body_);
    char num[24];
    auto [end, ec] = std::to_chars(num, num + sizeof num, body_.size());
    out.append("Content-Length: ").append(num, static_cast<size_t>(end - num)).append("\r\n\r\n");
    out.append(body_);
  } else {
    out.append("\r\n");
  }
  return r;
}

}  // namespace ficus::load::internal
