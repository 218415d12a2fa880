// Byte ranges of a stored response (RFC 9110 §14): the Range field read against the stored
// body's length, If-Range against its validators, and the multipart/byteranges body of several
// ranges. Plain functions with no state: the policy (serve.cc) answers with them, the unit tests
// and the fuzzer (fuzz/cache_fields_fuzz.cc) drive them directly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ficus::cache {

// One satisfiable range, both ends inclusive (as Content-Range writes them).
struct ByteRange {
  uint64_t first = 0;
  uint64_t last = 0;
};

enum class RangeVerdict : uint8_t {
  kIgnore,         // not a valid bytes ranges-specifier (or too many ranges): send the whole 200
  kUnsatisfiable,  // valid, but no range overlaps the body: 416
  kSatisfiable,    // `out` holds the ranges to send: one range, or several for multipart
};

// At most this many range-specs are read; a longer list is ignored (§14.2 lets a server ignore
// many small ranges: a defence against range amplification).
inline constexpr size_t kMaxRanges = 32;

// Reads a Range field value (§14.1.1: `bytes=` then a list of `first-last`, `first-` and
// `-suffix`; the unit case-insensitive) against a body of `length` bytes. An invalid range-spec
// (bad syntax, last < first) makes the whole field invalid. Satisfiable ranges are clipped to the
// body, sorted and coalesced where they overlap or lie closer than the cost of a part's header
// (§15.3.7.2 allows both), so one range may come out of several.
RangeVerdict ParseRange(std::string_view value, uint64_t length, std::vector<ByteRange>& out);

// §13.1.5: whether the Range applies given the request's If-Range. An entity-tag must match the
// stored strong ETag (a weak one never does); an HTTP-date must equal Last-Modified exactly.
bool IfRangeAllows(std::string_view if_range, std::string_view etag,
                   std::string_view last_modified);

// "bytes FIRST-LAST/LENGTH" (a 206's Content-Range) or "bytes */LENGTH" (a 416's), into `out`.
void AppendContentRange(const ByteRange* range, uint64_t length, std::string& out);

// A multipart/byteranges body (§14.6) of `ranges` of `body`, each part with the representation's
// `content_type` (when not empty) and its Content-Range, delimited by `boundary`.
void AppendMultipartBody(std::string_view body, std::span<const ByteRange> ranges,
                         std::string_view content_type, std::string_view boundary,
                         std::string& out);

// A boundary (RFC 2046 §5.1.1: up to 70 characters) that does not occur in `body`.
std::string MultipartBoundary(std::string_view body);

}  // namespace ficus::cache
