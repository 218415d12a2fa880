// Fuzzes the W3C Trace Context parsers (http::ParseTraceParent, http::ValidTraceState).
// Invariants, for every input:
//  - a traceparent that parses formats back to the same bytes (version 00; later versions
//    compare their first 55 bytes with the version replaced), and its ids are not all zero;
//  - a traceparent accepted has only lower-case hex and '-' in its first 55 bytes;
//  - a tracestate accepted is at most 512 bytes of printable ASCII, space and tab, and stops
//    being valid when its first key is repeated;
//  - a tracestate split at any comma into two fields (TraceStateList) gets the same verdict as
//    the whole value: several fields are one list.
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

bool IsLowerHexOrDash(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
}

void CheckTraceParent(std::string_view in) {
  ficus::http::TraceParent tp;
  if (!ficus::http::ParseTraceParent(in, &tp)) return;
  FUZZ_CHECK(in.size() >= ficus::http::kTraceParentSize);
  FUZZ_CHECK(tp.version != 0xFF);
  FUZZ_CHECK(tp.version != 0 || in.size() == ficus::http::kTraceParentSize);
  for (size_t i = 0; i < ficus::http::kTraceParentSize; ++i) FUZZ_CHECK(IsLowerHexOrDash(in[i]));
  char out[ficus::http::kTraceParentSize];
  ficus::http::FormatTraceParent(tp.trace_id, tp.parent_id, tp.flags, out);
  FUZZ_CHECK(std::memcmp(out + 2, in.data() + 2, ficus::http::kTraceParentSize - 2) == 0);
  bool trace_zero = true, parent_zero = true;
  for (uint8_t b : tp.trace_id) trace_zero &= b == 0;
  for (uint8_t b : tp.parent_id) parent_zero &= b == 0;
  FUZZ_CHECK(!trace_zero && !parent_zero);
  // Reformatted as version 00 it parses again to the same ids.
  ficus::http::TraceParent again;
  FUZZ_CHECK(ficus::http::ParseTraceParent({out, sizeof out}, &again));
  FUZZ_CHECK(std::memcmp(again.trace_id, tp.trace_id, 16) == 0);
  FUZZ_CHECK(std::memcmp(again.parent_id, tp.parent_id, 8) == 0 && again.flags == tp.flags);
}

void CheckTraceState(std::string_view in) {
  const bool whole = ficus::http::ValidTraceState(in);
  for (size_t comma = in.find(','); comma != std::string_view::npos;
       comma = in.find(',', comma + 1)) {
    ficus::http::TraceStateList list;
    list.Add(in.substr(0, comma));
    list.Add(in.substr(comma + 1));
    FUZZ_CHECK(list.valid() == whole);
  }
  if (!whole) return;
  FUZZ_CHECK(in.size() <= 512);
  for (char c : in) {
    const auto u = static_cast<unsigned char>(c);
    FUZZ_CHECK((u >= 0x20 && u <= 0x7E) || c == '\t');
  }
  // The first member's key, repeated, must make the list invalid.
  size_t start = in.find_first_not_of(" \t,");
  if (start == std::string_view::npos) return;
  size_t eq = in.find('=', start);
  FUZZ_CHECK(eq != std::string_view::npos);
  std::string dup(in);
  dup.append(",").append(in.substr(start, eq - start)).append("=x");
  if (dup.size() <= 512) FUZZ_CHECK(!ficus::http::ValidTraceState(dup));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckTraceParent(in);
  CheckTraceState(in);
  return 0;
}
