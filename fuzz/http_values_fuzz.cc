// Fuzzes http::CookieValue and http::QueryValue (hash keys and affinity cookies come from
// them). Input: one byte n, then a name of n % 16 bytes, then the field or query text. Checks:
//  - never crashes; the answer is a view into the input (or empty);
//  - the answer holds no separator and no surrounding whitespace;
//  - it agrees with a reference that splits into owned strings first (written separately).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

std::string Strip(const std::string& s) {
  size_t a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t");
  return s.substr(a, b - a + 1);
}

std::string Reference(std::string_view text, char sep, std::string_view name, bool unquote) {
  std::vector<std::string> items;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      items.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  items.push_back(cur);
  for (const std::string& raw : items) {
    std::string item = Strip(raw);
    size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    if (Strip(item.substr(0, eq)) != name) continue;
    std::string v = Strip(item.substr(eq + 1));
    if (unquote && v.size() >= 2 && v.front() == '"' && v.back() == '"')
      v = v.substr(1, v.size() - 2);
    return v;
  }
  return "";
}

void Check(std::string_view text, char sep, std::string_view name, bool unquote,
           std::string_view got) {
  if (!got.empty()) {
    FUZZ_CHECK(got.data() >= text.data() && got.data() + got.size() <= text.data() + text.size());
    FUZZ_CHECK(got.find(sep) == std::string_view::npos);
  }
  FUZZ_CHECK(std::string(got) == Reference(text, sep, name, unquote));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t n = std::min<size_t>(data[0] % 16, size - 1);
  std::string_view name(reinterpret_cast<const char*>(data) + 1, n);
  std::string_view text(reinterpret_cast<const char*>(data) + 1 + n, size - 1 - n);
  Check(text, ';', name, true, ficus::http::CookieValue(text, name));
  Check(text, '&', name, false, ficus::http::QueryValue(text, name));
  return 0;
}
