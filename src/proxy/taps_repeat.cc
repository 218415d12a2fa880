// The cacheability sample: 1 in `telemetry.repeat_sample` routed requests (a per-worker
// countdown, decremented in OnRouted) that is a GET or HEAD has its 200 response body hashed
// as RelayBody forwards it (payload bytes only, never chunk framing; the first 64 KiB and the
// length), keyed by method + host + path + query, and counted in the route's RepeatSketch when
// the whole body went out and the upstream lets a shared cache reuse it (cache::
// SharedCacheMayReuse). Everything here runs only for sampled requests.
#include "cache/cache.h"
#include "proxy/internal/taps.h"

namespace ficus::proxy {

void Taps::StartRepeatSample(const Exchange& ex, const Snapshot& snap) {
  const uint32_t every = snap.config->telemetry.repeat_sample;
  if (every == 0) {  // off: count down from the largest value, check again then
    worker_.repeat_countdown() = UINT32_MAX;
    return;
  }
  if (ex.head.method != http::Method::kGet && ex.head.method != http::Method::kHead) {
    worker_.repeat_countdown() = 1;  // the next routed request takes this sample
    return;
  }
  worker_.repeat_countdown() = every;
  // FNV-1a over the parts, each closed by a value no byte can take (0x100), so parts cannot
  // run into each other; then the splitmix64 finalizer (the sketch indexes by the low bits).
  uint64_t h = 0xcbf29ce484222325ull;
  for (std::string_view part : {ex.head.method_text, ex.head.host, ex.head.path, ex.head.query}) {
    for (char c : part) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    h = (h ^ 0x100) * 0x100000001b3ull;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  repeat_key_ = h;
  repeat_hasher_.Reset();
  repeat_sample_ = true;
}

void Taps::FinishRepeatSample(const Exchange& ex, const http::ResponseHead& resp) {
  repeat_sample_ = false;
  if (resp.status != 200 || ex.route_cell == nullptr) return;
  // A body the upstream forbids a shared cache to reuse (no-store, private, no-cache, a cookie,
  // credentials) is no evidence for a cache, however often it repeats.
  if (!cache::SharedCacheMayReuse(ex.head, resp)) return;
  if (ex.head.method == http::Method::kHead) {
    // No body to compare: what the upstream says about it (length and validators) stands in.
    const uint64_t length =
        resp.framing == http::BodyFraming::kContentLength ? resp.content_length : 0;
    repeat_hasher_.Update(reinterpret_cast<const char*>(&length), sizeof length);
    for (const http::Header& h : resp.headers) {
      if (http::EqualsIgnoreCase(h.name, "etag") || http::EqualsIgnoreCase(h.name, "last-modified"))
        repeat_hasher_.Update(h.value.data(), h.value.size());
    }
  }
  ex.route_cell->repeats.Add(repeat_key_, repeat_hasher_.Finish());
}

}  // namespace ficus::proxy
