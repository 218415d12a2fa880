// What a stored response keeps of its fields and what it derives from them.
#include <algorithm>

#include "cache/internal/cache_policy.h"

namespace ficus::cache {

namespace {

bool Dropped(const http::Header& h) {
  switch (h.role) {
    case http::HeaderRole::kHopByHop:
    case http::HeaderRole::kContentLength:
    case http::HeaderRole::kTransferEncoding:
    case http::HeaderRole::kXRequestId:
      return true;
    default:
      break;
  }
  // Proxy-Connection and friends carry kHopByHop already; these are end-to-end but per answer.
  return http::EqualsIgnoreCase(h.name, "Age") || http::EqualsIgnoreCase(h.name, "Set-Cookie") ||
         http::EqualsIgnoreCase(h.name, "Connection") ||
         http::EqualsIgnoreCase(h.name, "Keep-Alive");
}

void AppendLine(std::string_view name, std::string_view value, std::string& out) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// Space-separated members of Surrogate-Key (space-separated) and Cache-Tag (comma-separated).
void AppendTags(std::string_view value, std::string& out) {
  size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ' ' || value[i] == ',' || value[i] == '\t')) ++i;
    size_t j = i;
    while (j < value.size() && value[j] != ' ' && value[j] != ',' && value[j] != '\t') ++j;
    if (j > i) {
      if (!out.empty()) out.push_back(' ');
      out.append(value.substr(i, j - i));
    }
    i = j;
  }
}

}  // namespace

void AppendStoredFields(std::span<const http::Header> fields, std::string& out,
                        const CacheControl* cc) {
  for (const http::Header& h : fields) {
    if (Dropped(h) || (cc != nullptr && OmittedField(*cc, h.name))) continue;
    AppendLine(h.name, h.value, out);
  }
}

void ParseStoredFields(std::string_view raw, std::vector<http::Header>& out) {
  out.clear();
  while (!raw.empty()) {
    const size_t end = raw.find("\r\n");
    std::string_view line = raw.substr(0, end);
    raw = end == std::string_view::npos ? std::string_view() : raw.substr(end + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    out.push_back(http::Header{line.substr(0, colon), http::TrimOws(line.substr(colon + 1)),
                               http::HeaderRole::kOther});
  }
}

void Describe(Object& o, std::span<const http::Header> fields, const Settings& settings,
              int64_t request_time_ms, int64_t response_time_ms, int64_t upstream_age) {
  const CacheControl cc = ResponseDirectives(fields);
  o.timing = ComputeTiming(o.status, fields, cc, settings.rules, request_time_ms, response_time_ms,
                           upstream_age);
  const bool forced = settings.rules.force_ttl;
  o.no_cache = cc.no_cache && !forced;
  // s-maxage implies proxy-revalidate (§5.2.2.10); proxy-revalidate is must-revalidate for us.
  o.must_revalidate = cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage >= 0;
  o.stale_while_revalidate_s = cc.stale_while_revalidate >= 0 ? cc.stale_while_revalidate
                                                              : settings.stale_while_revalidate_s;
  o.stale_if_error_s = cc.stale_if_error >= 0 ? cc.stale_if_error : settings.stale_if_error_s;
  o.etag.clear();
  o.last_modified.clear();
  o.tags.clear();
  o.headers_304.clear();
  for (const http::Header& h : fields) {
    auto is = [&h](std::string_view n) { return http::EqualsIgnoreCase(h.name, n); };
    if (is("ETag") && o.etag.empty()) o.etag = h.value;
    if (is("Last-Modified") && o.last_modified.empty()) o.last_modified = h.value;
    if (is("Surrogate-Key") || is("Cache-Tag")) AppendTags(h.value, o.tags);
    if (is("Cache-Control") || is("Content-Location") || is("Date") || is("ETag") ||
        is("Expires") || is("Vary") || is("Last-Modified") || is("CDN-Cache-Control")) {
      AppendLine(h.name, h.value, o.headers_304);
    }
  }
}

}  // namespace ficus::cache
