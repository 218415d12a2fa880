// `ficus replay`: a JSON Lines capture (written by the gateway's route `record:`) turned into
// serialized requests on a timeline scaled by the replay speed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/http.h"

namespace ficus::load::internal {

struct CaptureOptions {
  double speed = 1;                 // 2 = twice as fast
  int64_t max_wait_ns = INT64_MAX;  // longest gap between two requests, after scaling
  bool loop = false;
  // What to keep. A request is kept when, for each key, one of its positive filters matches and
  // none of its negated ones does ("route=a route=b header:x-api-key!=k": a or b, not from k).
  struct Filter {
    std::string key;    // "method", "path" (a prefix), "route", "header:NAME" (any case)
    std::string value;  // a header filter matches the field's first value exactly
    bool negate = false;
  };
  std::vector<Filter> filters;
  std::string host_header;    // used when a captured request has no Host
  std::string host_override;  // not empty: replaces every captured Host (`--host`)
  std::string extra_headers;  // "Name: value\r\n" fields added to every request
};

struct Capture {
  struct Request {
    int64_t at_ns = 0;  // from the first request, scaled and with gaps capped
    std::string bytes;  // the serialized request
    http::Method method = http::Method::kGet;
  };
  std::vector<Request> requests;
  int64_t span_ns = 0;  // one pass: the last request's time plus one mean gap
  bool loop = false;
  uint64_t truncated_bodies = 0;  // captured bodies cut at record.max_body_bytes
  uint64_t skipped = 0;           // lines the filters left out

  // Global request n (0-based): its time and its entry (n modulo the capture when looping).
  // TimeOf is INT64_MAX past the end without loop.
  int64_t TimeOf(uint64_t n) const;
  const Request& At(uint64_t n) const { return requests[n % requests.size()]; }
  // Requests intended in [0, t_ns] (for the per-second targets).
  double CountAt(int64_t t_ns) const;
};

// Reads a capture. Errors (unreadable file, a line that is not a capture record, nothing left
// after the filters) name the file and line.
std::optional<Capture> LoadCapture(const std::string& path, const CaptureOptions& options,
                                   std::string* error);

}  // namespace ficus::load::internal
