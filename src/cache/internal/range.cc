// Byte ranges of a stored response (RFC 9110 §14); see range.h.
#include "cache/internal/range.h"

#include <algorithm>
#include <atomic>
#include <charconv>

#include "base/text.h"
#include "cache/internal/rfc.h"
#include "http/http.h"

namespace ficus::cache {

namespace {

// A gap smaller than what a part's delimiter and fields cost is sent rather than split on.
constexpr uint64_t kCoalesceGap = 80;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// 1*DIGIT from `s` at `i`, saturating at UINT64_MAX (a huge last-pos is valid: it is clipped).
bool ReadNumber(std::string_view s, size_t& i, uint64_t& n) {
  const size_t start = i;
  n = 0;
  while (i < s.size() && IsDigit(s[i])) {
    const uint64_t d = static_cast<uint64_t>(s[i] - '0');
    n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
    ++i;
  }
  return i > start;
}

bool IsOws(char c) { return c == ' ' || c == '\t'; }

void AppendNumber(uint64_t n, std::string& out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace

RangeVerdict ParseRange(std::string_view value, uint64_t length, std::vector<ByteRange>& out) {
  out.clear();
  value = http::TrimOws(value);
  const size_t eq = value.find('=');
  if (eq == std::string_view::npos || !http::EqualsIgnoreCase(value.substr(0, eq), "bytes")) {
    return RangeVerdict::kIgnore;  // no unit, or one ficus does not serve
  }
  std::string_view set = value.substr(eq + 1);
  size_t i = 0;
  size_t specs = 0;
  bool any = false;
  // 1#range-spec: elements separated by commas with optional whitespace; empty elements allowed.
  while (i <= set.size()) {
    while (i < set.size() && IsOws(set[i])) ++i;
    if (i == set.size()) break;
    if (set[i] == ',') {
      ++i;
      continue;
    }
    if (++specs > kMaxRanges) return RangeVerdict::kIgnore;
    ByteRange r;
    if (set[i] == '-') {  // suffix-range: the last N bytes
      ++i;
      uint64_t suffix = 0;
      if (!ReadNumber(set, i, suffix)) return RangeVerdict::kIgnore;
      if (suffix > 0 && length > 0) {
        r.first = length - std::min(suffix, length);
        r.last = length - 1;
        out.push_back(r);
      }
    } else {  // int-range: first-last or first-
      uint64_t first = 0;
      if (!ReadNumber(set, i, first) || i >= set.size() || set[i] != '-') {
        return RangeVerdict::kIgnore;
      }
      ++i;
      uint64_t last = UINT64_MAX;
      if (i < set.size() && IsDigit(set[i])) {
        ReadNumber(set, i, last);
        if (last < first) return RangeVerdict::kIgnore;  // invalid: the whole field is
      }
      if (first < length) {
        r.first = first;
        r.last = std::min(last, length - 1);
        out.push_back(r);
      }
    }
    while (i < set.size() && IsOws(set[i])) ++i;
    if (i < set.size() && set[i] != ',') return RangeVerdict::kIgnore;
    ++i;
    any = true;
  }
  if (!any) return RangeVerdict::kIgnore;  // "bytes=" with no range-spec
  if (out.empty()) return RangeVerdict::kUnsatisfiable;
  std::sort(out.begin(), out.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.first < b.first; });
  size_t n = 0;
  for (size_t k = 1; k < out.size(); ++k) {
    ByteRange& cur = out[n];
    if (out[k].first <= cur.last || out[k].first - cur.last <= kCoalesceGap) {
      cur.last = std::max(cur.last, out[k].last);
    } else {
      out[++n] = out[k];
    }
  }
  out.resize(n + 1);
  return RangeVerdict::kSatisfiable;
}

bool IfRangeAllows(std::string_view if_range, std::string_view etag,
                   std::string_view last_modified) {
  if_range = http::TrimOws(if_range);
  if (if_range.starts_with("W/")) return false;  // a weak tag never validates a range
  if (if_range.starts_with("\"")) {
    return !etag.empty() && !etag.starts_with("W/") && if_range == etag;
  }
  if (last_modified.empty()) return false;
  std::optional<int64_t> date = ParseHttpDate(if_range);
  std::optional<int64_t> modified = ParseHttpDate(last_modified);
  return date && modified && *date == *modified;
}

void AppendContentRange(const ByteRange* range, uint64_t length, std::string& out) {
  out.append("bytes ");
  if (range == nullptr) {
    out.push_back('*');
  } else {
    AppendNumber(range->first, out);
    out.push_back('-');
    AppendNumber(range->last, out);
  }
  out.push_back('/');
  AppendNumber(length, out);
}

void AppendMultipartBody(std::string_view body, std::span<const ByteRange> ranges,
                         std::string_view content_type, std::string_view boundary,
                         std::string& out) {
  for (const ByteRange& r : ranges) {
    out.append("--").append(boundary).append("\r\n");
    if (!content_type.empty()) out.append("Content-Type: ").append(content_type).append("\r\n");
    out.append("Content-Range: ");
    AppendContentRange(&r, body.size(), out);
    out.append("\r\n\r\n");
    out.append(body.substr(r.first, r.last - r.first + 1));
    out.append("\r\n");
  }
  out.append("--").append(boundary).append("--\r\n");
}

std::string MultipartBoundary(std::string_view body) {
  static std::atomic<uint64_t> counter{0};
  for (;;) {
    const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed) * 0x9E3779B97F4A7C15ULL ^
                       reinterpret_cast<uintptr_t>(body.data());
    uint8_t bytes[8];
    for (int k = 0; k < 8; ++k) bytes[k] = static_cast<uint8_t>(n >> (8 * k));
    std::string b = "ficus-byteranges-";
    const size_t at = b.size();
    b.resize(at + 16);
    WriteHexLower(bytes, 8, b.data() + at);
    if (body.find(b) == std::string_view::npos) return b;
  }
}

}  // namespace ficus::cache
