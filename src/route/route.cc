#include "route/route.h"

#include <boost/regex.hpp>
#include <cstring>
#include <string>
#include <string_view>

namespace ficus::route {

namespace {

constexpr size_t kMaxHostBytes = 255;  // DNS names are at most 253 bytes

inline char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Lower(c);
  return out;
}

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

// Copies the Host value, lower-cased, without port and trailing dot, into `buf`
// (kMaxHostBytes + 1 bytes). Returns the length, or -1 when no named host can match it.
int NormalizeHost(std::string_view host, char* buf) {
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return -1;
    host = host.substr(0, close + 1);
  } else if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  if (host.ends_with('.')) host.remove_suffix(1);
  if (host.empty() || host.size() > kMaxHostBytes) return -1;
  for (size_t i = 0; i < host.size(); ++i) buf[i] = Lower(host[i]);
  return static_cast<int>(host.size());
}

struct HostPattern {
  std::string text;  // exact name, or the suffix ".example.com" of "*.example.com"
  bool suffix = false;
};

struct HeaderCondition {
  std::string name;  // lower-case
  std::string value;
  bool has_value = false;
  bool invert = false;
};

enum class PathKind : uint8_t { kAny, kExact, kPrefix, kRegex };

struct CompiledRoute {
  bool any_host = true;
  std::vector<HostPattern> hosts;
  PathKind path_kind = PathKind::kAny;
  std::string path;                     // exact path or prefix
  std::unique_ptr<boost::regex> regex;  // kRegex; null if it did not compile (never matches)
  std::string regex_prefix;  // every path the regex matches starts with this: a cheap reject
  std::vector<std::string> methods;  // empty = any
  std::vector<HeaderCondition> headers;
};

// The literal text every match of `pattern` starts with ("" when unsure). Conservative: stops
// at the first metacharacter or escape, drops a character a quantifier may repeat zero times,
// and gives up on a top-level alternation ("/a|/b").
std::string LiteralPrefix(std::string_view pattern) {
  int depth = 0;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      if (c == ']') in_class = false;
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      --depth;
    } else if (c == '|' && depth == 0) {
      return "";
    }
  }
  if (pattern.starts_with('^')) pattern.remove_prefix(1);
  size_t n = 0;
  while (n < pattern.size() &&
         std::string_view("\\^$.|?*+()[]{}#").find(pattern[n]) == std::string_view::npos) {
    ++n;
  }
  if (n < pattern.size() && n > 0 &&
      std::string_view("?*{").find(pattern[n]) != std::string_view::npos) {
    --n;  // "/ab?": the b is optional
  }
  return std::string(pattern.substr(0, n));
}

bool HostMatches(const CompiledRoute& r, std::string_view host) {
  for (const HostPattern& p : r.hosts) {
    if (p.suffix) {
      // "*.example.com" needs at least one label before ".example.com".
      if (host.size() > p.text.size() && host.ends_with(p.text)) return true;
    } else if (host == p.text) {
      return true;
    }
  }
  return false;
}

bool HeadersMatch(const CompiledRoute& r, std::span<const http::Header> fields) {
  for (const HeaderCondition& c : r.headers) {
    bool found = false;
    for (const http::Header& h : fields) {
      if (EqualsIgnoreCase(h.name, c.name) && (!c.has_value || h.value == c.value)) {
        found = true;
        break;
      }
    }
    if (found == c.invert) return false;
  }
  return true;
}

enum class RegexResult { kMatch, kNoMatch, kCannotDecide };

RegexResult RegexMatches(const boost::regex& re, std::string_view path) {
  if (path.size() > RouteTable::kMaxRegexPathBytes) return RegexResult::kCannotDecide;
  // Reused so that matching does not allocate: boost sizes it once per thread (and grows it
  // only for a regex with more groups); its backtracking stack comes from boost's block cache.
  static thread_local boost::match_results<const char*> results;
  try {
    const bool ok = boost::regex_match(path.data(), path.data() + path.size(), results, re,
                                       boost::match_default | boost::match_any);
    return ok ? RegexResult::kMatch : RegexResult::kNoMatch;
  } catch (...) {
    // boost's complexity bound ("eternal match") or its backtracking-stack limit.
    return RegexResult::kCannotDecide;
  }
}

}  // namespace

struct RouteTable::Impl {
  std::vector<CompiledRoute> routes;
};

RouteTable::RouteTable(const config::Config& config) : impl_(std::make_unique<Impl>()) {
  impl_->routes.reserve(config.routes.size());
  for (const config::Route& route : config.routes) {
    const config::RouteMatch& m = route.match;
    CompiledRoute r;
    for (const std::string& h : m.hosts) {
      std::string host = ToLower(h);
      if (host == "*") {
        r.hosts.clear();
        break;
      }
      if (host.ends_with('.')) host.pop_back();
      if (host.starts_with("*.")) {
        r.hosts.push_back({host.substr(1), true});
      } else {
        r.hosts.push_back({host, false});
      }
    }
    r.any_host = r.hosts.empty();
    if (!m.path.empty()) {
      r.path_kind = PathKind::kExact;
      r.path = m.path;
    } else if (!m.path_prefix.empty()) {
      r.path_kind = PathKind::kPrefix;
      r.path = m.path_prefix;
    } else if (!m.path_regex.empty()) {
      r.path_kind = PathKind::kRegex;
      r.regex_prefix = LiteralPrefix(m.path_regex);
      try {
        r.regex = std::make_unique<boost::regex>(m.path_regex, boost::regex::ECMAScript);
      } catch (const std::exception&) {
        r.regex.reset();  // REQUIRES says validated; if not, the route never matches
      }
    }
    r.methods = m.methods;
    for (const config::HeaderMatcher& h : m.headers) {
      r.headers.push_back({ToLower(h.name), h.exact.value_or(""), h.exact.has_value(), h.invert});
    }
    impl_->routes.push_back(std::move(r));
  }
}

RouteTable::~RouteTable() = default;
RouteTable::RouteTable(RouteTable&&) noexcept = default;
RouteTable& RouteTable::operator=(RouteTable&&) noexcept = default;

size_t RouteTable::size() const { return impl_->routes.size(); }

int RouteTable::Match(const http::RequestHead& head) const {
  char host_buf[kMaxHostBytes + 1];
  const int host_len = NormalizeHost(head.host, host_buf);
  const std::string_view host =
      host_len < 0 ? std::string_view() : std::string_view(host_buf, static_cast<size_t>(host_len));
  const std::span<const http::Header> fields(head.headers.data(), head.headers.size());

  const std::vector<CompiledRoute>& routes = impl_->routes;
  for (size_t i = 0; i < routes.size(); ++i) {
    const CompiledRoute& r = routes[i];
    if (!r.any_host && (host_len < 0 || !HostMatches(r, host))) continue;
    if (!r.methods.empty()) {
      bool ok = false;
      for (const std::string& m : r.methods) {
        if (head.method_text == m) {
          ok = true;
          break;
        }
      }
      if (!ok) continue;
    }
    if (r.path_kind == PathKind::kExact && head.path != r.path) continue;
    if (r.path_kind == PathKind::kPrefix && !head.path.starts_with(r.path)) continue;
    if (!r.headers.empty() && !HeadersMatch(r, fields)) continue;
    if (r.path_kind == PathKind::kRegex) {
      if (!r.regex || !head.path.starts_with(r.regex_prefix)) continue;
      switch (RegexMatches(*r.regex, head.path)) {
        case RegexResult::kMatch:
          break;
        case RegexResult::kNoMatch:
          continue;
        case RegexResult::kCannotDecide:
          return -1;
      }
    }
    return static_cast<int>(i);
  }
  return -1;
}

}  // namespace ficus::route
