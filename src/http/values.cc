// Cookie and query parameter lookup: scans over views, no allocation, no decoding.
#include "http/http.h"
#include "http/internal/chars.h"

namespace ficus::http {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The value of the first `name`=value item in a list separated by `sep`.
std::string_view PairValue(std::string_view list, char sep, std::string_view name, bool unquote) {
  while (!list.empty()) {
    const size_t end = list.find(sep);
    std::string_view item = Trim(list.substr(0, end));
    list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || Trim(item.substr(0, eq)) != name) continue;
    std::string_view v = Trim(item.substr(eq + 1));
    if (unquote && v.size() >= 2 && v.front() == '"' && v.back() == '"') {
      v = v.substr(1, v.size() - 2);
    }
    return v;
  }
  return {};
}

}  // namespace

std::string_view TrimOws(std::string_view s) { return internal::TrimOws(s); }

std::string_view CookieValue(std::string_view cookie_field, std::string_view name) {
  return PairValue(cookie_field, ';', name, true);
}

std::string_view QueryValue(std::string_view query, std::string_view name) {
  return PairValue(query, '&', name, false);
}

void DropUnderscoreFields(RequestHead& head) {
  for (Header& h : head.headers) {
    if (h.name.find('_') != std::string_view::npos) h.role = HeaderRole::kHopByHop;
  }
}

}  // namespace ficus::http
