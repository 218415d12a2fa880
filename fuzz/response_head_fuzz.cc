// Fuzzes ResponseHeadParser. Checks, for every input: results are 0, a head size <= input
// size, or kUpstreamProtocol blamed on the upstream; views lie inside the buffer; framing
// follows the method and status (RFC 9112 §6.3); the request method changes framing only;
// and parsing the input as it trickles in gives, at every prefix, what parsing that prefix at
// once gives.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

using ficus::ErrorKind;
using ficus::Result;
using ficus::Side;
using namespace ficus::http;
using ficus::fuzz::Outcome;

// Every response error is the upstream's protocol error.
Outcome UpstreamOutcome(const Result<size_t>& r) {
  if (!r.has_value()) {
    FUZZ_CHECK(r.error().kind == ErrorKind::kUpstreamProtocol);
    FUZZ_CHECK(r.error().side == Side::kUpstream);
  }
  return Outcome::Of(r);
}

bool Inside(std::string_view v, std::string_view buf) {
  return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
}

constexpr size_t kStorage = 100;

struct Parsed {
  std::array<Header, kStorage> storage;
  ResponseHead head;
  Outcome outcome{};
};

void ParseOnce(std::string_view buf, Method m, const Limits& limits, Parsed& p) {
  ResponseHeadParser parser(limits, p.storage);
  p.outcome = UpstreamOutcome(parser.Parse(buf, m, p.head));
}

void CheckHead(const ResponseHead& h, std::string_view buf, size_t size, Method m) {
  FUZZ_CHECK(size > 0 && size <= buf.size() && h.head_size == size);
  const std::string_view head = buf.substr(0, size);
  FUZZ_CHECK(h.status >= 100 && h.status <= 999);
  FUZZ_CHECK(h.version_minor <= 1);
  FUZZ_CHECK(Inside(h.reason, head));
  for (unsigned char c : h.reason) FUZZ_CHECK(c >= 0x20 ? c != 0x7f : c == '\t');
  FUZZ_CHECK(h.headers.size() <= kStorage);
  for (const Header& f : h.headers) FUZZ_CHECK(Inside(f.name, head) && Inside(f.value, head));
  const bool no_body = m == Method::kHead || h.status < 200 || h.status == 204 || h.status == 304 ||
                       (m == Method::kConnect && h.status < 300);
  if (no_body) FUZZ_CHECK(h.framing == BodyFraming::kNone);
  if (!no_body) FUZZ_CHECK(h.framing != BodyFraming::kNone);
  if (h.framing == BodyFraming::kUntilClose) FUZZ_CHECK(!h.keep_alive);
  if (h.framing == BodyFraming::kChunked) FUZZ_CHECK(h.version_minor == 1);
}

std::unique_ptr<char[]> Copy(std::string_view s) {
  std::unique_ptr<char[]> c(new char[s.size() + 1]);
  std::memcpy(c.get(), s.data(), s.size());
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Limits limits{};

  Parsed get;
  ParseOnce(input, Method::kGet, limits, get);
  if (get.outcome.ok && get.outcome.value > 0) {
    CheckHead(get.head, input, get.outcome.value, Method::kGet);
  }
  // The method decides framing, nothing else.
  for (Method m : {Method::kHead, Method::kConnect, Method::kPost}) {
    Parsed other;
    ParseOnce(input, m, limits, other);
    FUZZ_CHECK(other.outcome == get.outcome);
    if (other.outcome.ok && other.outcome.value > 0) {
      CheckHead(other.head, input, other.outcome.value, m);
      FUZZ_CHECK(other.head.status == get.head.status);
      FUZZ_CHECK(other.head.content_length == get.head.content_length);
      FUZZ_CHECK(other.head.headers.size() == get.head.headers.size());
    }
  }

  // Trickled (byte by byte when short, else in random steps), in a buffer that moves.
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : input) seed = (seed ^ c) * 0x100000001b3ull;
  std::array<Header, kStorage> storage;
  ResponseHeadParser parser(limits, storage);
  ResponseHead head;
  Parsed one;
  std::unique_ptr<char[]> keep;
  for (size_t n = 0;;) {
    if (size <= 160) {  // O(n^2) checks: keep them short
      n += 1;
    } else {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      n += 1 + (seed >> 33) % (size / 16 + 1);
    }
    if (n > size) n = size;
    keep = Copy(input.substr(0, n));
    const std::string_view buf(keep.get(), n);
    const Outcome t = UpstreamOutcome(parser.Parse(buf, Method::kGet, head));
    ParseOnce(buf, Method::kGet, limits, one);
    FUZZ_CHECK(t == one.outcome);
    if (!t.ok || t.value != 0) {
      FUZZ_CHECK(t == get.outcome);
      if (t.ok) {
        CheckHead(head, buf, t.value, Method::kGet);
        FUZZ_CHECK(head.status == get.head.status && head.framing == get.head.framing &&
                   head.keep_alive == get.head.keep_alive && head.reason == get.head.reason &&
                   head.headers.size() == get.head.headers.size());
        for (size_t i = 0; i < head.headers.size(); ++i) {
          FUZZ_CHECK(head.headers[i].name == get.head.headers[i].name);
          FUZZ_CHECK(head.headers[i].value == get.head.headers[i].value);
          FUZZ_CHECK(head.headers[i].role == get.head.headers[i].role);
        }
      }
      break;
    }
    if (n == size) {
      FUZZ_CHECK(get.outcome.ok && get.outcome.value == 0);
      break;
    }
  }
  return 0;
}
