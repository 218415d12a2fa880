// Cache keys (RFC 9111 §4.1): the primary key of a request with its query normalised, the keys
// an unsafe request invalidates (§4.4), and Vary's secondary keys.
#include <algorithm>

#include "cache/internal/rfc.h"
#include "compress/compress.h"

namespace ficus::cache {

namespace {

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

bool Ignored(std::string_view param, const KeyRules& rules) {
  const std::string_view name = param.substr(0, param.find('='));
  for (const std::string& i : rules.ignore_query) {
    if (name == i) return true;
  }
  return false;
}

void AppendQuery(std::string_view query, const KeyRules& rules, std::string& out) {
  if (query.empty()) return;
  if (!rules.sort_query && rules.ignore_query.empty()) {
    out.push_back('?');
    out.append(query);
    return;
  }
  // At most 64 parameters are normalised; the rest are kept in order (a key stays a key).
  std::string_view params[64];
  size_t n = 0;
  std::string_view rest = query;
  while (!rest.empty() && n < 64) {
    const size_t amp = rest.find('&');
    std::string_view p = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (!p.empty() && !Ignored(p, rules)) params[n++] = p;
  }
  if (rules.sort_query) std::sort(params, params + n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(i == 0 ? '?' : '&');
    out.append(params[i]);
  }
  if (!rest.empty()) out.append(n == 0 ? "?" : "&").append(rest);
}

void AppendHost(std::string_view host, std::string& out) {
  // The default port names the same origin.
  if (host.size() > 3 && host.substr(host.size() - 3) == ":80") host.remove_suffix(3);
  for (char c : host) out.push_back(Lower(c));
}

}  // namespace

void AppendKey(std::string_view host, std::string_view path, std::string_view query,
               const KeyRules& rules, std::string& out) {
  out.clear();
  out.append("http://");
  AppendHost(host, out);
  out.append(path);
  AppendQuery(query, rules, out);
}

bool LocationKey(std::string_view request_host, std::string_view location, const KeyRules& rules,
                 std::string& out) {
  location = http::TrimOws(location);
  std::string_view host = request_host;
  if (location.size() >= 7 && http::EqualsIgnoreCase(location.substr(0, 7), "http://")) {
    location.remove_prefix(7);
    const size_t slash = location.find('/');
    host = location.substr(0, slash);
    location = slash == std::string_view::npos ? "/" : location.substr(slash);
    std::string a, b;
    AppendHost(host, a);
    AppendHost(request_host, b);
    if (a != b) return false;  // another origin: an attacker's lever (§4.4)
  } else if (location.empty() || location.front() != '/' ||
             (location.size() > 1 && location[1] == '/')) {
    return false;  // https, network-path or relative references are not resolved
  }
  const size_t hash = location.find('#');
  if (hash != std::string_view::npos) location = location.substr(0, hash);
  const size_t q = location.find('?');
  AppendKey(host, location.substr(0, q),
            q == std::string_view::npos ? std::string_view() : location.substr(q + 1), rules, out);
  return true;
}

bool VaryNames(std::span<const http::Header> response, std::vector<std::string>& names) {
  names.clear();
  bool star = false;
  for (const http::Header& h : response) {
    if (!http::EqualsIgnoreCase(h.name, "Vary")) continue;
    std::string_view rest = h.value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view name = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      name = http::TrimOws(name);
      if (name.empty()) continue;
      if (name == "*") star = true;
      std::string lower;
      for (char c : name) lower.push_back(Lower(c));
      if (std::find(names.begin(), names.end(), lower) == names.end()) names.push_back(lower);
    }
  }
  return star;
}

void AppendSecondaryKey(std::span<const std::string> names, std::span<const http::Header> request,
                        std::string& out) {
  for (const std::string& name : names) {
    out.append(name);
    out.push_back(':');
    if (name == "accept-encoding") {
      // Canonical (same meaning, same text), so that clients spelling it differently share the
      // stored encoded variant.
      std::string joined;
      for (const http::Header& h : request) {
        if (!http::EqualsIgnoreCase(h.name, name)) continue;
        if (!joined.empty()) joined.push_back(',');
        joined.append(h.value);
      }
      compress::AppendCanonicalAcceptEncoding(joined, out);
      out.push_back('\n');
      continue;
    }
    bool first = true;
    for (const http::Header& h : request) {
      if (!http::EqualsIgnoreCase(h.name, name)) continue;
      std::string_view rest = h.value;
      // Each list member trimmed, joined with ','.
      while (true) {
        const size_t comma = rest.find(',');
        const std::string_view m = http::TrimOws(rest.substr(0, comma));
        if (!first) out.push_back(',');
        first = false;
        out.append(m);
        if (comma == std::string_view::npos) break;
        rest = rest.substr(comma + 1);
      }
    }
    out.push_back('\n');
  }
}

}  // namespace ficus::cache
