// The generic readers: maps, lists, strings, numbers, durations, sizes, names, shares.
#include "config/internal/reader.h"

#include <charconv>

#include "base/duration.h"
#include "config/internal/slo_values.h"
#include "config/internal/values.h"

namespace ficus::config::internal {

Loc LocOf(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0) return {};
  return {m.line + 1, m.column + 1};
}

std::string Sub(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (char c : text.substr(0, kMax)) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      out.push_back('?');  // keep messages on one line
    } else {
      out.push_back(c);
    }
  }
  if (text.size() > kMax) out.append("...");
  return out + "'";
}

std::string KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

std::string ToLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string ToUpper(std::string s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Generic readers

bool Loader::ReadMap(const Value& v, const std::vector<std::string>& allowed, Fields* out) {
  if (!v.node.IsMap()) {
    Error(v, "expected a map with keys " + JoinNames(allowed) + ", got " + KindOf(v.node));
    return false;
  }
  for (auto it = v.node.begin(); it != v.node.end(); ++it) {
    const YAML::Node key = it->first;
    const Loc key_loc = LocOf(key.Mark());
    if (!key.IsScalar()) {
      Error(key_loc, v.path,
            "expected a key (one of: " + JoinNames(allowed) + "), got " + KindOf(key));
      continue;
    }
    const std::string& name = key.Scalar();
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      Error(key_loc, Sub(v.path, name),
            "unknown key " + Quote(name) + "; expected one of: " + JoinNames(allowed));
      continue;
    }
    if (const Value* first = out->Get(name)) {
      Error(key_loc, Sub(v.path, name),
            "duplicate key " + Quote(name) + " (first at line " + std::to_string(first->loc.line) +
                ")");
      continue;
    }
    const YAML::Node value = it->second;
    Loc loc = value.IsNull() ? key_loc : LocOf(value.Mark());
    if (loc.line == 0) loc = key_loc;
    out->entries().push_back({name, Value{value, loc, Sub(v.path, name)}});
  }
  return true;
}

void Loader::Require(const Fields& f, const Value& parent, std::string_view key) {
  if (!f.Get(key))
    Error(parent.loc, Sub(parent.path, key), "missing required key '" + std::string(key) + "'");
}

bool Loader::ExpectList(const Value& v) {
  if (v.node.IsSequence()) return true;
  Error(v, "expected a list, got " + KindOf(v.node));
  return false;
}

Value Loader::Item(const Value& list, const YAML::Node& item, size_t i) const {
  Loc loc = LocOf(item.Mark());
  if (item.IsNull() || loc.line == 0) loc = list.loc;
  return Value{item, loc, Index(list.path, i)};
}

std::optional<std::string> Loader::String(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a string, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::vector<std::string> unset;
  Parsed p = SubstituteEnv(v.node.Scalar(), options_.getenv, options_.offline ? &unset : nullptr);
  if (!p.ok()) {
    Error(v, p.error);
    return std::nullopt;
  }
  if (!unset.empty()) unset_env_paths_.push_back(v.path);
  for (const std::string& name : unset)
    Warn(v.loc, v.path,
         "environment variable " + name +
             " is not set: read as empty here (`ficus run` and the tools that reach the "
             "gateway need it)");
  if (std::string bad = CheckText(p.value); !bad.empty()) {
    Error(v, "value " + bad);
    return std::nullopt;
  }
  return std::move(p.value);
}

std::optional<uint64_t> Loader::Integer(const Value& v, uint64_t min, uint64_t max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected an integer, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
  const std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (s->empty() || ptr != s->data() + s->size() || ec == std::errc::invalid_argument) {
    Error(v, "expected an integer " + range + ", got " + Quote(*s));
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || n < min || n > max) {
    Error(v, "must be " + range + ", got " + *s);
    return std::nullopt;
  }
  return n;
}

std::optional<Duration> Loader::DurationIn(const Value& v, Duration min, Duration max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected " + std::string(kDurationForm) + ", got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::string why;
  std::optional<Duration> d = ParseDuration(*s, &why);
  if (!d) {
    Error(v, why);
    return std::nullopt;
  }
  if (*d < min || *d > max) {
    Error(v,
          "must be between " + FormatDuration(min) + " and " + FormatDuration(max) + ", got " + *s);
    return std::nullopt;
  }
  return d;
}

std::optional<uint64_t> Loader::SizeIn(const Value& v, uint64_t min, uint64_t max) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a size like 64KiB or 1MiB, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::optional<uint64_t> n = ParseSize(*s);
  if (!n) {
    Error(v, "expected a size like 64KiB or 1MiB, got " + Quote(*s));
    return std::nullopt;
  }
  if (*n < min || *n > max) {
    Error(v, "must be between " + FormatSize(min) + " and " + FormatSize(max) + ", got " + *s);
    return std::nullopt;
  }
  return n;
}

std::optional<bool> Loader::Bool(const Value& v) {
  if (v.node.IsScalar()) {
    std::optional<std::string> s = String(v);
    if (!s) return std::nullopt;
    if (*s == "true" || *s == "True" || *s == "TRUE") return true;
    if (*s == "false" || *s == "False" || *s == "FALSE") return false;
  }
  Error(v, "expected true or false, got " + KindOf(v.node));
  return std::nullopt;
}

std::optional<std::string> Loader::Name(const Value& v) {
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  if (std::string bad = CheckName(*s); !bad.empty()) {
    Error(v, "name " + bad);
    return std::nullopt;
  }
  return s;
}

// A share: a number 0..1 ("0.25") or a percentage ("25%").
std::optional<double> Loader::Ratio(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a ratio (0..1 or 0%..100%), got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::string_view text = *s;
  double scale = 1.0;
  if (text.ends_with('%')) {
    text.remove_suffix(1);
    scale = 100.0;
  }
  double d = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || !(d >= 0) ||
      d > scale) {
    Error(v, "expected a ratio 0..1 or a percentage 0%..100%, got " + Quote(*s));
    return std::nullopt;
  }
  return d / scale;
}

std::optional<double> Loader::Percent(const Value& v) {
  if (!v.node.IsScalar()) {
    Error(v, "expected a percentage like 99.9%, got " + KindOf(v.node));
    return std::nullopt;
  }
  std::optional<std::string> s = String(v);
  if (!s) return std::nullopt;
  std::string error;
  std::optional<double> p = ParsePercent(*s, &error);
  if (!p) Error(v, error);
  return p;
}

}  // namespace ficus::config::internal
