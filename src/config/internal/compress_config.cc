// Section: a route's compress: (config::Compress, the compress module's policy).
#include <algorithm>

#include "config/internal/reader.h"

namespace ficus::config::internal {

namespace {

// A media type as Content-Type names one: "type/subtype" (a "*" subtype allowed), tokens only.
bool MediaRange(std::string_view s) {
  const size_t slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == s.size()) return false;
  for (char c : s) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '/' || c == '+' ||
                       c == '-' || c == '.' || c == '_' || c == '*';
    if (!token) return false;
  }
  return s.find('*') == std::string_view::npos || s.substr(slash + 1) == "*";
}

}  // namespace

void Loader::ReadCompress(const Value& v, std::optional<Compress>* out) {
  Fields f;
  if (!ReadMap(v, {"codings", "types", "min_size", "gzip_level", "brotli_level", "zstd_level"},
               &f)) {
    return;
  }
  Compress c;
  bool ok = true;
  // A list of strings, each checked by `valid` (which reports its own error).
  auto list = [&](std::string_view key, std::vector<std::string>* into, auto valid) {
    const Value* p = f.Get(key);
    if (p == nullptr) return;
    if (!ExpectList(*p)) {
      ok = false;
      return;
    }
    into->clear();
    size_t i = 0;
    for (auto it = p->node.begin(); it != p->node.end(); ++it, ++i) {
      const Value item = Item(*p, *it, i);
      auto s = String(item);
      if (!s) {
        ok = false;
        continue;
      }
      std::string lower = ToLower(*s);
      if (!valid(item, lower)) {
        ok = false;
      } else if (std::find(into->begin(), into->end(), lower) != into->end()) {
        Error(item, Quote(*s) + " is listed twice");
        ok = false;
      } else {
        into->push_back(std::move(lower));
      }
    }
    if (into->empty() && ok) {
      Error(*p, "expected at least one entry (leave compress: out to compress nothing)");
      ok = false;
    }
  };
  list("codings", &c.codings, [&](const Value& item, const std::string& s) {
    if (s == "gzip" || s == "br" || s == "zstd") return true;
    Error(item, "unknown coding " + Quote(s) + " (expected gzip, br or zstd)");
    return false;
  });
  list("types", &c.types, [&](const Value& item, const std::string& s) {
    if (MediaRange(s)) return true;
    Error(item, "expected a media type such as \"text/html\" or \"text/*\", got " + Quote(s));
    return false;
  });
  if (const Value* p = f.Get("min_size")) {
    if (auto n = SizeIn(*p, 0, 1ull << 30))
      c.min_size = *n;
    else
      ok = false;
  }
  auto level = [&](std::string_view key, int min, int max, int* into) {
    if (const Value* p = f.Get(key)) {
      if (auto n = Integer(*p, static_cast<uint64_t>(min), static_cast<uint64_t>(max)))
        *into = static_cast<int>(*n);
      else
        ok = false;
    }
  };
  level("gzip_level", 1, 9, &c.gzip_level);
  level("brotli_level", 0, 11, &c.brotli_level);
  level("zstd_level", 1, 19, &c.zstd_level);
  if (ok) *out = std::move(c);
}

}  // namespace ficus::config::internal
