// Answers from a stored response: the client's conditionals (304), byte ranges (206 / 416,
// RFC 9110 §14), the whole stored response otherwise; and a HEAD's 200 updating the stored GET
// response (RFC 9111 §4.3.5).
#include <charconv>

#include "cache/internal/cache_policy.h"

namespace ficus::cache {

using policy::Context;
using policy::Decision;

namespace {

thread_local std::string t_field;
thread_local std::vector<ByteRange> t_ranges;

std::string_view Number(int64_t n, char (&buf)[24]) {
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  return {buf, static_cast<size_t>(end - buf)};
}

}  // namespace

Decision CachePolicy::Serve(Context& ctx, const Object& o, std::string_view cache_status) {
  char buf[24];
  ctx.AddResponseHeader("Age", Number(CurrentAge(o.timing, ctx.now_ms()), buf));
  ctx.AddResponseHeader("Cache-Status", cache_status);
  const http::RequestHead& req = ctx.request();
  const auto& headers = req.headers;
  bool not_modified = false;
  // Preconditions apply only to what would be a 2xx (RFC 9110 §13.2.1).
  const bool success = o.status >= 200 && o.status < 300;
  if (auto inm = FindField(headers, "If-None-Match"); success && inm) {
    not_modified = IfNoneMatchMatches(*inm, o.etag);
  } else if (auto ims = FindField(headers, "If-Modified-Since"); success && !inm && ims) {
    // §4.3.2: Last-Modified, else Date.
    std::optional<int64_t> since = ParseHttpDate(*ims);
    std::optional<int64_t> modified = o.last_modified.empty()
                                          ? std::optional<int64_t>(o.timing.date_s)
                                          : ParseHttpDate(o.last_modified);
    not_modified = since && modified && *modified <= *since;
  }
  if (not_modified) return Decision::Respond({304, o.headers_304, {}, {}});
  // §14.2: Range is defined for GET only, and only a 200 has a range to select; If-Range
  // (§13.1.5) that does not match asks for the whole response.
  if (req.method == http::Method::kGet && o.status == 200) {
    if (auto range = FindField(headers, "Range")) {
      auto if_range = FindField(headers, "If-Range");
      if (!if_range || IfRangeAllows(*if_range, o.etag, o.last_modified)) {
        return ServeRange(ctx, o, *range);
      }
    }
  }
  return Decision::Respond({o.status, o.headers, {}, *o.body});
}

Decision CachePolicy::ServeRange(Context& ctx, const Object& o, std::string_view range) {
  const std::string_view body = *o.body;
  switch (ParseRange(range, body.size(), t_ranges)) {
    case RangeVerdict::kIgnore:
      return Decision::Respond({o.status, o.headers, {}, body});
    case RangeVerdict::kUnsatisfiable:
      // §15.5.17: a 416 says the current length.
      t_field.clear();
      AppendContentRange(nullptr, body.size(), t_field);
      ctx.AddResponseHeader("Content-Range", t_field);
      return Decision::Respond({416, {}, {}, {}});
    case RangeVerdict::kSatisfiable:
      break;
  }
  if (t_ranges.size() == 1) {
    // One range: the stored fields (Content-Type included) and a view into the stored body.
    const ByteRange r = t_ranges[0];
    t_field.clear();
    AppendContentRange(&r, body.size(), t_field);
    ctx.AddResponseHeader("Content-Range", t_field);
    return Decision::Respond({206, o.headers, {}, body.substr(r.first, r.last - r.first + 1)});
  }
  // Several: multipart/byteranges (§14.6), each part with the representation's Content-Type;
  // the top-level Content-Type is the multipart one. Built for this exchange (a rare path).
  Fill& f = AnswerStorage(ctx);
  f.built_headers.clear();
  std::vector<http::Header> fields;
  ParseStoredFields(o.headers, fields);
  std::string_view content_type;
  for (const http::Header& h : fields) {
    if (http::EqualsIgnoreCase(h.name, "Content-Type")) {
      if (content_type.empty()) content_type = h.value;
      continue;
    }
    f.built_headers.append(h.name).append(": ").append(h.value).append("\r\n");
  }
  const std::string boundary = MultipartBoundary(body);
  f.built_body.clear();
  AppendMultipartBody(body, t_ranges, content_type, boundary, f.built_body);
  f.built_content_type.assign("multipart/byteranges; boundary=").append(boundary);
  return Decision::Respond({206, f.built_headers, f.built_content_type, f.built_body});
}

Fill& CachePolicy::AnswerStorage(Context& ctx) {
  uint64_t& state = ctx.state();
  if (Fill* f = FillOf(state)) return *f;
  // A plain hit pins only its object: the pin moves into a Fill, which End deletes.
  auto* f = new Fill(*this, {}, Fill::Mode::kMiss);
  f->served = reinterpret_cast<Object*>(state);
  state = reinterpret_cast<uint64_t>(f) | kFillTag;
  return *f;
}

bool CachePolicy::UpdateFromHead(const Fill& f, const http::ResponseHead& r, int64_t now_ms) {
  const Object& stored = *f.stale;
  // The validators the HEAD response carries must name the stored response (the upstream's own
  // ETag, not the weak one of a variant ficus encoded), and its Content-Length the stored length.
  bool match = true;
  if (auto etag = FindField(r.headers, "ETag")) match = *etag == stored.validator;
  if (auto lm = FindField(r.headers, "Last-Modified"); match && lm) {
    match = *lm == stored.last_modified;
  }
  if (auto cl = FindField(r.headers, "Content-Length"); match && cl) {
    // A list of identical values is valid (RFC 9110 §8.6): the first one says it.
    std::optional<int64_t> n = ParseDelta(http::TrimOws(cl->substr(0, cl->find(','))));
    match = n && !stored.transformed && static_cast<uint64_t>(*n) == stored.body->size();
  }
  if (!match) {
    const size_t n = store_->Invalidate(f.key);
    store_->stats().invalidated.fetch_add(n, std::memory_order_relaxed);
    return false;
  }
  store_->Insert(Refresh(stored, r, f.request_time_ms, now_ms));
  Stats::Add(store_->stats().revalidated);
  return true;
}

}  // namespace ficus::cache
