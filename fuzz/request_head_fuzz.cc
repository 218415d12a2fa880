// Fuzzes RequestHeadParser. Beyond "does not crash" it checks, for every input:
//  - a result is 0, a head size <= input size, or an error of a request kind;
//  - every view of a parsed head lies inside the buffer, fields are trimmed tokens/values;
//  - parsing the input as it trickles in (random splits, byte by byte for short inputs, and in
//    a buffer that moves on every call) gives, at every prefix, what parsing that prefix at
//    once gives, and the same head;
//  - a parsed head serialized again parses to the same head;
//  - smaller limits only ever turn a result into kHeadTooLarge;
//  - pipelined input after a head parses with the same parser.
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "http/http.h"

namespace {

using ficus::ErrorKind;
using ficus::Result;
using namespace ficus::http;
using ficus::fuzz::Outcome;

bool Inside(std::string_view v, std::string_view buf) {
  return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
}

bool IsTchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Offset of a view inside its buffer, to compare heads parsed from different buffers.
size_t Off(std::string_view v, std::string_view buf) {
  return v.empty() ? 0 : static_cast<size_t>(v.data() - buf.data());
}

void CheckHead(const RequestHead& h, std::string_view buf, size_t size, size_t max_fields) {
  FUZZ_CHECK(size > 0 && size <= buf.size());
  FUZZ_CHECK(h.head_size == size);
  const std::string_view head = buf.substr(0, size);
  FUZZ_CHECK(Inside(h.method_text, head) && !h.method_text.empty());
  FUZZ_CHECK(Inside(h.target, head) && !h.target.empty());
  FUZZ_CHECK(h.path == "/" || Inside(h.path, head));  // "/" is static for "http://host"
  FUZZ_CHECK(Inside(h.query, head) && Inside(h.host, head));
  FUZZ_CHECK(Inside(h.upgrade_protocol, head) && Inside(h.request_id, head));
  FUZZ_CHECK(h.version_minor <= 1);
  FUZZ_CHECK(h.headers.size() <= max_fields);
  FUZZ_CHECK(ParseMethod(h.method_text) == h.method);
  for (unsigned char c : h.target) FUZZ_CHECK(c > 0x20 && c < 0x7f);
  for (const Header& f : h.headers) {
    FUZZ_CHECK(Inside(f.name, head) && Inside(f.value, head) && !f.name.empty());
    for (unsigned char c : f.name) FUZZ_CHECK(IsTchar(c));
    for (unsigned char c : f.value) FUZZ_CHECK(c >= 0x20 ? c != 0x7f : c == '\t');
    if (!f.value.empty()) {
      FUZZ_CHECK(f.value.front() != ' ' && f.value.front() != '\t');
      FUZZ_CHECK(f.value.back() != ' ' && f.value.back() != '\t');
    }
    if (f.role == HeaderRole::kTransferEncoding) FUZZ_CHECK(h.framing == BodyFraming::kChunked);
    if (f.role == HeaderRole::kContentLength) {
      FUZZ_CHECK(h.framing == BodyFraming::kContentLength);
    }
  }
  FUZZ_CHECK(h.framing != BodyFraming::kUntilClose);
  if (h.framing == BodyFraming::kChunked) FUZZ_CHECK(h.version_minor == 1);
  if (h.version_minor == 1) {
    // HTTP/1.1 has exactly one Host field, and a Connection option never demotes it.
    size_t hosts = 0;
    for (const Header& f : h.headers) hosts += f.role == HeaderRole::kHost;
    FUZZ_CHECK(hosts == 1);
  }
  if (h.method == Method::kConnect) FUZZ_CHECK(h.path.empty() && h.host == h.target);
  if (h.upgrade) FUZZ_CHECK(h.version_minor == 1);
}

bool SameHead(const RequestHead& a, std::string_view abuf, const RequestHead& b,
              std::string_view bbuf) {
  auto same = [&](std::string_view x, std::string_view y) {
    return x == y && (x.empty() || x == "/" || Off(x, abuf) == Off(y, bbuf));
  };
  if (!(a.method == b.method && same(a.method_text, b.method_text) && same(a.target, b.target) &&
        same(a.path, b.path) && same(a.query, b.query) && a.version_minor == b.version_minor &&
        same(a.host, b.host) && a.framing == b.framing && a.content_length == b.content_length &&
        a.keep_alive == b.keep_alive && a.expect_continue == b.expect_continue &&
        a.upgrade == b.upgrade && same(a.upgrade_protocol, b.upgrade_protocol) &&
        same(a.request_id, b.request_id) && a.head_size == b.head_size &&
        a.headers.size() == b.headers.size())) {
    return false;
  }
  for (size_t i = 0; i < a.headers.size(); ++i) {
    if (!same(a.headers[i].name, b.headers[i].name) ||
        !same(a.headers[i].value, b.headers[i].value) || a.headers[i].role != b.headers[i].role) {
      return false;
    }
  }
  return true;
}

constexpr size_t kStorage = 100;

struct Parsed {
  std::array<Header, kStorage> storage;
  RequestHead head;
  Outcome outcome{};
};

// One-shot parse of `buf` with a fresh parser.
void ParseOnce(std::string_view buf, const Limits& limits, Parsed& p) {
  RequestHeadParser parser(limits, p.storage);
  p.outcome = Outcome::Of(parser.Parse(buf, p.head));
}

// An exactly-sized heap copy, so that ASan sees any read past the bytes given.
std::unique_ptr<char[]> Copy(std::string_view s) {
  std::unique_ptr<char[]> c(new char[s.size() + 1]);
  std::memcpy(c.get(), s.data(), s.size());
  return c;
}

// Feeds growing prefixes; cut points come from a seed derived from the input.
void CheckTrickle(std::string_view input, const Limits& limits, const Parsed& whole) {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (unsigned char c : input) seed = (seed ^ c) * 0x100000001b3ull;
  std::array<Header, kStorage> storage;
  RequestHeadParser parser(limits, storage);
  RequestHead head;
  Parsed one;
  const bool bytewise = input.size() <= 160;  // O(n^2) checks: keep them short
  std::unique_ptr<char[]> keep;               // the buffer of the last call
  size_t n = 0;
  for (;;) {
    if (bytewise) {
      n += 1;
    } else {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      n += 1 + (seed >> 33) % (input.size() / 16 + 1);
    }
    if (n > input.size()) n = input.size();
    // Alternate between a buffer that stays (the input) and one that moves every call.
    const bool moving = ((seed >> 17) & 1) != 0 || bytewise;
    std::string_view buf = input.substr(0, n);
    if (moving) {
      keep = Copy(buf);
      buf = std::string_view(keep.get(), n);
    }
    const Outcome t = Outcome::Of(parser.Parse(buf, head));
    ParseOnce(buf, limits, one);
    FUZZ_CHECK(t == one.outcome);
    if (!t.ok || t.value != 0) {
      if (t.ok) {
        CheckHead(head, buf, t.value, limits.max_header_count);
        FUZZ_CHECK(SameHead(head, buf, one.head, buf));
        FUZZ_CHECK(whole.outcome == t);
        FUZZ_CHECK(SameHead(head, buf, whole.head, input));
      } else {
        FUZZ_CHECK(whole.outcome == t);
      }
      return;
    }
    if (n == input.size()) {
      FUZZ_CHECK(whole.outcome.ok && whole.outcome.value == 0);
      return;
    }
  }
}

// Serializes a parsed head again and expects the same head from it.
void CheckReserialized(const RequestHead& h) {
  std::string s(h.method_text);
  s += ' ';
  s += h.target;
  s += h.version_minor == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n";
  for (const Header& f : h.headers) {
    s += f.name;
    s += ": ";
    s += f.value;
    s += "\r\n";
  }
  s += "\r\n";
  Parsed again;
  Limits roomy;  // ": " after each name may make the head a little longer than the original
  roomy.max_head_bytes = 256 * 1024;
  ParseOnce(s, roomy, again);
  FUZZ_CHECK(again.outcome.ok && again.outcome.value == s.size());
  const RequestHead& g = again.head;
  FUZZ_CHECK(g.method == h.method && g.target == h.target && g.path == h.path &&
             g.query == h.query && g.host == h.host && g.framing == h.framing &&
             g.content_length == h.content_length && g.keep_alive == h.keep_alive &&
             g.expect_continue == h.expect_continue && g.upgrade == h.upgrade &&
             g.request_id == h.request_id && g.headers.size() == h.headers.size());
  for (size_t i = 0; i < g.headers.size(); ++i) {
    FUZZ_CHECK(g.headers[i].name == h.headers[i].name);
    FUZZ_CHECK(g.headers[i].value == h.headers[i].value);
    FUZZ_CHECK(g.headers[i].role == h.headers[i].role);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Limits limits{};

  Parsed whole;
  ParseOnce(input, limits, whole);
  const Outcome& o = whole.outcome;
  if (o.ok) {
    if (o.value > 0) CheckHead(whole.head, input, o.value, limits.max_header_count);
  } else {
    FUZZ_CHECK(o.kind == ErrorKind::kBadRequest || o.kind == ErrorKind::kHeadTooLarge ||
               o.kind == ErrorKind::kNotImplemented || o.kind == ErrorKind::kBadVersion);
    FUZZ_CHECK(!o.context.empty());
  }

  CheckTrickle(input, limits, whole);

  if (o.ok && o.value > 0) {
    CheckReserialized(whole.head);
    // Pipelining: the same parser goes on with the rest of the bytes.
    std::array<Header, kStorage> storage;
    RequestHeadParser parser(limits, storage);
    RequestHead first, second;
    FUZZ_CHECK(Outcome::Of(parser.Parse(input, first)) == o);
    const std::string_view rest = input.substr(o.value);
    Parsed fresh;
    ParseOnce(rest, limits, fresh);
    FUZZ_CHECK(Outcome::Of(parser.Parse(rest, second)) == fresh.outcome);
  }

  // Tighter limits can only turn the result into kHeadTooLarge.
  Limits small;
  small.max_head_bytes = static_cast<uint32_t>(size / 2 + 8);
  small.max_header_count = 3;
  Parsed tight;
  ParseOnce(input, small, tight);
  FUZZ_CHECK(tight.outcome == o ||
             (!tight.outcome.ok && tight.outcome.kind == ErrorKind::kHeadTooLarge));
  if (tight.outcome.ok && tight.outcome.value > 0) {
    FUZZ_CHECK(SameHead(tight.head, input, whole.head, input));
  }
  return 0;
}
