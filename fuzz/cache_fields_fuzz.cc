// Fuzzes the cache's field parsers (src/cache/internal/fields.cc, key.cc) and Accept-Encoding
// (src/compress/negotiate.cc): Cache-Control (and its targeted variants), HTTP dates,
// Accept-Encoding, If-None-Match, Vary, query keys, Range and If-Range (range.cc). Input: one
// selector byte, then the field text. Checks:
//  - never crashes or reads outside the input (ASan in the replay build);
//  - delta values are -1 (absent) or within 0..2^31; q-values within 0..1000;
//  - a parsed date formats and parses back to itself;
//  - parsing a Cache-Control value twice into one struct changes nothing (first one wins);
//  - a secondary key holds one line per Vary name and no CR;
//  - the canonical Accept-Encoding negotiates as the value does and is its own canonical form;
//  - satisfiable ranges lie inside the body, sorted, disjoint, at most kMaxRanges of them.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cache/internal/range.h"
#include "cache/internal/rfc.h"
#include "compress/compress.h"
#include "fuzz/fuzz_check.h"

using namespace ficus;

namespace {

bool DeltaOk(int64_t v) { return v == -1 || (v >= 0 && v <= cache::kMaxDelta); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t selector = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  cache::CacheControl cc;
  cache::ParseCacheControl(text, cc);
  for (int64_t v : {cc.max_age, cc.s_maxage, cc.stale_while_revalidate, cc.stale_if_error,
                    cc.min_fresh, cc.max_stale}) {
    FUZZ_CHECK(DeltaOk(v));
  }
  cache::CacheControl twice = cc;
  cache::ParseCacheControl(text, twice);
  FUZZ_CHECK(twice.max_age == cc.max_age && twice.s_maxage == cc.s_maxage &&
             twice.no_store == cc.no_store && twice.max_stale == cc.max_stale);

  // Targeted fields: a Structured Field Dictionary check, then the structured reading.
  if (cache::ValidStructuredDictionary(text)) {
    cache::CacheControl sf;
    cache::ParseCacheControl(text, sf, /*structured=*/true);
    FUZZ_CHECK(DeltaOk(sf.max_age) && DeltaOk(sf.s_maxage));
  }
  std::vector<http::Header> fields = {{"CDN-Cache-Control", text, http::HeaderRole::kOther},
                                      {"Age", text, http::HeaderRole::kOther}};
  (void)cache::ResponseDirectives(fields);
  FUZZ_CHECK(cache::AgeValue(fields) >= 0 && cache::AgeValue(fields) <= cache::kMaxDelta);

  if (auto t = cache::ParseHttpDate(text)) {
    FUZZ_CHECK(cache::ParseHttpDate(cache::FormatHttpDate(*t)) == t);
  }
  std::vector<compress::Accepted> codings;
  compress::ParseAcceptEncoding(text, codings);
  FUZZ_CHECK(codings.size() <= 16);
  for (const compress::Accepted& c : codings) {
    FUZZ_CHECK(c.q >= 0 && c.q <= 1000);
    FUZZ_CHECK(!c.name.empty() && c.name.data() >= text.data() &&
               c.name.data() + c.name.size() <= text.data() + text.size());
  }
  (void)cache::IfNoneMatchMatches(text, "\"a\"");
  compress::Offer offer;
  if (selector & 8)
    offer.order = {compress::Coding::kGzip, compress::Coding::kZstd, compress::Coding::kBrotli};
  offer.brotli = !(selector & 16);
  const auto chosen = compress::Negotiate(text, true, offer);
  // The canonical Accept-Encoding (the cache's secondary key) means the same and is stable.
  std::string canonical;
  compress::AppendCanonicalAcceptEncoding(text, canonical);
  FUZZ_CHECK(compress::Negotiate(canonical, true, offer) == chosen);
  std::string again;
  compress::AppendCanonicalAcceptEncoding(canonical, again);
  FUZZ_CHECK(again == canonical);

  // Vary: the text as a Vary value, the same text as the request's field values.
  const std::string_view name = (selector & 1) ? "Accept-Encoding" : "X-Fuzz";
  std::vector<http::Header> response{{"Vary", text, http::HeaderRole::kOther}};
  std::vector<http::Header> request{{name, text, http::HeaderRole::kOther}};
  std::vector<std::string> names;
  cache::VaryNames(response, names);
  std::string secondary;
  cache::AppendSecondaryKey(names, request, secondary);
  size_t lines = 0;
  for (char c : secondary) lines += c == '\n';
  if (text.find_first_of("\r\n") == std::string_view::npos) FUZZ_CHECK(lines == names.size());

  cache::KeyRules rules;
  rules.sort_query = selector & 2;
  if (selector & 4) rules.ignore_query = {"a"};
  std::string key;
  cache::AppendKey("h", "/", text, rules, key);
  (void)cache::LocationKey("h", text, rules, key);

  // Range against a body whose length the selector picks (0 included).
  const uint64_t length = static_cast<uint64_t>(selector) * 7;
  std::vector<cache::ByteRange> ranges;
  if (cache::ParseRange(text, length, ranges) == cache::RangeVerdict::kSatisfiable) {
    FUZZ_CHECK(!ranges.empty() && ranges.size() <= cache::kMaxRanges);
    for (size_t i = 0; i < ranges.size(); ++i) {
      FUZZ_CHECK(ranges[i].first <= ranges[i].last && ranges[i].last < length);
      if (i > 0) FUZZ_CHECK(ranges[i - 1].last < ranges[i].first);
    }
  }
  (void)cache::IfRangeAllows(text, "\"a\"", "Sun, 06 Nov 1994 08:49:37 GMT");
  return 0;
}
