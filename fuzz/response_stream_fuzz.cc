// Fuzzes a sequence of responses on one upstream connection, framed the way the proxy frames
// them: a head (interim 1xx heads skipped), then a body by Content-Length, chunked coding, or
// none (HEAD, 1xx, 204, 304), then the next response right after. The first input byte picks
// the request methods (bit i: HEAD for response i). Checks, for every input:
// - where each response ends does not depend on how the bytes arrive: the stream fed in random
//   pieces (a growing head buffer, the chunked scanner resumed across pieces) finds the same
//   boundaries and the same errors as the stream scanned at once;
// - a body-less response (HEAD, 204, 304) ends with its head: bytes after it are never taken
//   as its body, so they are stray bytes the pool must see (they start the next "response");
// - boundaries only move forward and stay inside the input.
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

using namespace ficus::http;

constexpr size_t kStorage = 100;
constexpr size_t kMaxResponses = 8;

struct Framing {
  std::vector<size_t> ends;  // offset after each complete response
  bool failed = false;       // a malformed head or body stopped the stream
};

// Frames `stream` fed in pieces of the sizes `steps` gives (0: all at once).
Framing Frame(std::string_view stream, uint8_t head_mask, uint64_t seed, bool split) {
  Framing f;
  std::array<Header, kStorage> storage;
  size_t pos = 0;    // start of the current response
  size_t avail = 0;  // bytes "received" so far
  auto next_piece = [&]() {
    if (avail == stream.size()) return false;
    if (!split) {
      avail = stream.size();
    } else {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      avail += 1 + (seed >> 33) % 24;
      if (avail > stream.size()) avail = stream.size();
    }
    return true;
  };
  next_piece();
  for (size_t i = 0; i < kMaxResponses && pos < stream.size(); ++i) {
    const Method m = (head_mask >> i) & 1 ? Method::kHead : Method::kGet;
    ResponseHeadParser parser(Limits{16 * 1024, kStorage}, storage);
    ResponseHead head;
    size_t head_end = 0;
    for (;;) {  // heads, interim ones skipped
      auto r = parser.Parse(stream.substr(pos, avail - pos), m, head);
      if (!r) {
        f.failed = true;
        return f;
      }
      if (*r == 0) {
        if (!next_piece()) return f;
        continue;
      }
      FUZZ_CHECK(*r <= avail - pos);
      if (head.status < 200 && head.status != 101) {
        pos += *r;
        parser.Reset();
        continue;
      }
      head_end = pos + *r;
      break;
    }
    if (head.status == 101) return f;  // a tunnel from here on
    const bool no_body = m == Method::kHead || head.status == 204 || head.status == 304;
    if (no_body) FUZZ_CHECK(head.framing == BodyFraming::kNone);
    size_t end = head_end;
    switch (head.framing) {
      case BodyFraming::kNone:
        break;
      case BodyFraming::kUntilClose:
        return f;  // the rest of the stream is its body
      case BodyFraming::kContentLength:
        if (head.content_length > stream.size() - head_end) return f;
        end = head_end + static_cast<size_t>(head.content_length);
        while (avail < end) next_piece();
        break;
      case BodyFraming::kChunked: {
        ChunkedScanner scanner;
        scanner.set_upstream(true);
        size_t at = head_end;
        while (!scanner.done()) {
          if (at == avail && !next_piece()) return f;
          auto r = scanner.Scan(stream.substr(at, avail - at));
          if (!r) {
            f.failed = true;
            return f;
          }
          FUZZ_CHECK(*r <= avail - at);
          if (!scanner.done()) FUZZ_CHECK(*r == avail - at);
          at += *r;
        }
        end = at;
        break;
      }
    }
    FUZZ_CHECK(end >= head_end && end <= stream.size());
    FUZZ_CHECK(end > pos);
    f.ends.push_back(end);
    pos = end;
  }
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 32 * 1024) return 0;
  const uint8_t head_mask = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const Framing whole = Frame(stream, head_mask, 0, false);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : stream) seed = (seed ^ c) * 0x100000001b3ull;
  for (int round = 0; round < 4; ++round) {
    const Framing pieces = Frame(stream, head_mask, seed + static_cast<uint64_t>(round), true);
    FUZZ_CHECK(pieces.ends == whole.ends);
    FUZZ_CHECK(pieces.failed == whole.failed);
  }
  return 0;
}
