// ChunkedScanner: sizes, extensions, data CRLF, trailers, limits, and that any split of the
// input gives the same result as scanning it at once.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "http/http.h"
#include "http_test_util.h"

namespace ficus::http {
namespace {

using testing::Cat;
using testing::Outcome;
using testing::Printable;
using namespace std::string_view_literals;

struct ScanResult {
  Outcome outcome;  // ok(consumed total) or the error
  bool done = false;
  uint64_t payload = 0;
  bool operator==(const ScanResult& o) const {
    return outcome == o.outcome && done == o.done && payload == o.payload;
  }
};
std::ostream& operator<<(std::ostream& os, const ScanResult& r) {
  return os << r.outcome << " done=" << r.done << " payload=" << r.payload;
}

// Scans `pieces` in order like the proxy would: stops at the first error or at done().
ScanResult ScanPieces(const std::vector<std::string_view>& pieces,
                      ChunkedScanner::Limits limits = {}, bool upstream = false) {
  ChunkedScanner s(limits);
  s.set_upstream(upstream);
  size_t total = 0;
  ScanResult out;
  for (std::string_view piece : pieces) {
    Result<size_t> r = s.Scan(piece);
    if (!r.has_value()) {
      out.outcome = Outcome::Of(r);
      out.done = s.done();
      out.payload = s.payload_bytes();
      return out;
    }
    EXPECT_LE(*r, piece.size());
    if (*r < piece.size()) {
      EXPECT_TRUE(s.done());
    }
    total += *r;
    if (s.done()) break;
  }
  out.outcome = Outcome::Of(Result<size_t>(total));
  out.done = s.done();
  out.payload = s.payload_bytes();
  return out;
}

ScanResult ScanAll(std::string_view body, ChunkedScanner::Limits limits = {}) {
  return ScanPieces({body}, limits);
}

void ExpectBody(std::string_view body, uint64_t payload) {
  const ScanResult r = ScanAll(body);
  EXPECT_TRUE(r.outcome.ok) << Printable(body) << " -> " << r;
  EXPECT_TRUE(r.done) << Printable(body);
  EXPECT_EQ(r.outcome.value, body.size()) << Printable(body);
  EXPECT_EQ(r.payload, payload) << Printable(body);
}

void ExpectError(std::string_view body, ErrorKind kind = ErrorKind::kBadRequest,
                 ChunkedScanner::Limits limits = {}) {
  const ScanResult r = ScanAll(body, limits);
  EXPECT_FALSE(r.outcome.ok) << Printable(body) << " accepted";
  EXPECT_EQ(r.outcome.kind, kind) << Printable(body) << " -> " << r;
  EXPECT_EQ(r.outcome.side, Side::kDownstream);
}

TEST(ChunkedTest, SimpleBody) {
  ExpectBody("5\r\nhello\r\n0\r\n\r\n", 5);
  ExpectBody("0\r\n\r\n", 0);
  ExpectBody("3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", 7);
  ExpectBody("000\r\n\r\n", 0);
}

TEST(ChunkedTest, HexSizes) {
  ExpectBody("a\r\n0123456789\r\n0\r\n\r\n", 10);
  ExpectBody("A\r\n0123456789\r\n0\r\n\r\n", 10);
  ExpectBody("0000000000000001\r\nx\r\n0\r\n\r\n", 1);  // 16 digits
  ExpectBody(Cat("1F\r\n", std::string(31, 'x'), "\r\n0\r\n\r\n"), 31);
}

TEST(ChunkedTest, StopsAtMessageEnd) {
  const std::string body = "2\r\nhi\r\n0\r\n\r\n";
  ChunkedScanner s;
  Result<size_t> r = s.Scan(Cat(body, "GET / HTTP/1.1\r\n"));
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, body.size());
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.payload_bytes(), 2u);
  r = s.Scan("more");  // nothing more belongs to this body
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
}

TEST(ChunkedTest, ConsumesEverythingUntilDone) {
  ChunkedScanner s;
  Result<size_t> r = s.Scan("10\r\n0123");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 8u);
  EXPECT_FALSE(s.done());
  EXPECT_EQ(s.payload_bytes(), 4u);
  r = s.Scan("");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 0u);
}

TEST(ChunkedTest, ValidExtensions) {
  ExpectBody("1;a\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a=b\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a=\"quoted value\"\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a=\"esc\\\"aped\\\\\"\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1 ;a\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1; a\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a = b\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a=b;c;d=\"e\" ;f\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("1;a ;b\r\nx\r\n0\r\n\r\n", 1);
  ExpectBody("0;last=yes\r\n\r\n", 0);
}

TEST(ChunkedTest, InvalidExtensions) {
  ExpectError("1;\r\nx\r\n0\r\n\r\n");
  ExpectError("1 \r\nx\r\n0\r\n\r\n");
  ExpectError("1;a \r\nx\r\n0\r\n\r\n");
  ExpectError("1;=b\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a=\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a=\"open\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a=b c\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a\x01\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a=\"\x01\"\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a=\"x\"y\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a@b\r\nx\r\n0\r\n\r\n");
  ExpectError("1;a\n\nx\r\n0\r\n\r\n");
}

TEST(ChunkedTest, ExtensionLengthLimit) {
  ChunkedScanner::Limits limits;
  limits.max_extension_bytes = 8;
  EXPECT_TRUE(ScanAll("1;abcdefg\r\nx\r\n0\r\n\r\n", limits).done);  // 8 bytes after the size
  ExpectError("1;abcdefgh\r\nx\r\n0\r\n\r\n", ErrorKind::kBadRequest, limits);
  // The default bound stops an endless extension.
  ExpectError(Cat("1;", std::string(1000, 'a')));
}

TEST(ChunkedTest, InvalidSizes) {
  ExpectError("\r\n\r\n");                             // empty size
  ExpectError("00000000000000001\r\nx\r\n0\r\n\r\n");  // 17 digits
  ExpectError("FFFFFFFFFFFFFFFFF\r\n");                // 17 digits
  ExpectError("0x5\r\nhello\r\n0\r\n\r\n");
  ExpectError("-5\r\nhello\r\n0\r\n\r\n");
  ExpectError("+5\r\nhello\r\n0\r\n\r\n");
  ExpectError(" 5\r\nhello\r\n0\r\n\r\n");
  ExpectError("5g\r\nhello\r\n0\r\n\r\n");
  ExpectError("z\r\n");
}

TEST(ChunkedTest, DataMustBeFollowedByCrlf) {
  ExpectError("5\r\nhelloX\r\n0\r\n\r\n");
  ExpectError("5\r\nhello\n0\r\n\r\n");
  ExpectError("5\r\nhello\rX0\r\n\r\n");
  ExpectError("5\r\nhello\r\r\n0\r\n\r\n");
  ExpectError("5\r\nhelloo\r\n0\r\n\r\n");
}

TEST(ChunkedTest, BareLfAndCrRejected) {
  ExpectError("5\nhello\r\n0\r\n\r\n");
  ExpectError("5\rhello\r\n0\r\n\r\n");
  ExpectError("5\r\nhello\r\n0\n\r\n");
  ExpectError("5\r\nhello\r\n0\r\n\n");
  ExpectError("5\r\nhello\r\n0\r\n\rX");
}

TEST(ChunkedTest, Trailers) {
  ExpectBody("0\r\nX-Checksum: abc\r\n\r\n", 0);
  ExpectBody("1\r\nx\r\n0\r\nA: 1\r\nB:\r\nC: v\tw \x80\r\n\r\n", 1);
  ExpectError("0\r\nX-Checksum : abc\r\n\r\n");  // whitespace before colon
  ExpectError("0\r\n: abc\r\n\r\n");             // empty name
  ExpectError("0\r\nA: 1\r\n b\r\n\r\n");        // obs-fold
  ExpectError("0\r\nA: 1\n\r\n");                // bare LF
  ExpectError("0\r\nA: 1\rB\r\n\r\n");           // bare CR
  ExpectError("0\r\nA: \x01\r\n\r\n");           // control character
  ExpectError("0\r\nA: x\0y\r\n\r\n"sv);         // NUL
  ExpectError("0\r\nNoColon\r\n\r\n");
  ExpectError("0\r\nA@B: 1\r\n\r\n");
}

TEST(ChunkedTest, TrailerSizeLimit) {
  ChunkedScanner::Limits limits;
  limits.max_trailer_bytes = 10;
  EXPECT_TRUE(ScanAll("0\r\nA: 1234\r\n\r\n", limits).done);  // 8 + final CR = 10... counted
  ExpectError("0\r\nA: 12345\r\n\r\n", ErrorKind::kBadRequest, limits);
  ExpectError(Cat("0\r\nA: ", std::string(10000, 'x'), "\r\n\r\n"));  // default 8 KiB
}

TEST(ChunkedTest, BodyLimit) {
  ChunkedScanner::Limits limits;
  limits.max_body_bytes = 10;
  EXPECT_TRUE(ScanAll("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", limits).done);
  ExpectError("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", ErrorKind::kBodyTooLarge, limits);
  ExpectError("b\r\n", ErrorKind::kBodyTooLarge, limits);  // refused before any data arrives
  ExpectError("FFFFFFFFFFFFFFFF\r\n", ErrorKind::kBodyTooLarge, limits);
  // Without a limit the largest size is accepted (and the data awaited).
  ChunkedScanner s;
  Result<size_t> r = s.Scan("FFFFFFFFFFFFFFFF\r\nabc");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 21u);
  EXPECT_EQ(s.payload_bytes(), 3u);
}

TEST(ChunkedTest, UpstreamErrors) {
  ScanResult r = ScanPieces({"5\r\nhelloX"}, {}, /*upstream=*/true);
  EXPECT_FALSE(r.outcome.ok);
  EXPECT_EQ(r.outcome.kind, ErrorKind::kUpstreamProtocol);
  EXPECT_EQ(r.outcome.side, Side::kUpstream);
  ChunkedScanner::Limits limits;
  limits.max_body_bytes = 1;
  r = ScanPieces({"5\r\n"}, limits, /*upstream=*/true);
  EXPECT_EQ(r.outcome.kind, ErrorKind::kBodyTooLarge);
  EXPECT_EQ(r.outcome.side, Side::kUpstream);
}

TEST(ChunkedTest, ErrorIsSticky) {
  ChunkedScanner s;
  Result<size_t> r = s.Scan("x");
  ASSERT_FALSE(r.has_value());
  const std::string first = r.error().context;
  r = s.Scan("5\r\nhello\r\n0\r\n\r\n");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(first, r.error().context);
  r = s.Scan("");
  EXPECT_FALSE(r.has_value());
}

TEST(ChunkedTest, ResetStartsOver) {
  ChunkedScanner s;
  ASSERT_TRUE(s.Scan("0\r\n\r\n").has_value());
  EXPECT_TRUE(s.done());
  s.Reset({});
  EXPECT_FALSE(s.done());
  Result<size_t> r = s.Scan("1\r\nx\r\n0\r\n\r\n");
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.payload_bytes(), 1u);
}

const char* const kBodies[] = {
    "5\r\nhello\r\n0\r\n\r\n",
    "3;a=b;c=\"d;e\\\"\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0;x\r\nT: v\r\nU:\r\n\r\nNEXT",
    "5\r\nhelloX\r\n",
    "1;a=\"x\r\n",
    "0\r\nA: b\n\r\n",
    "2\r\nab\r\n0\r\n\r",
    "00000000000000001\r\n",
    "4\r\n\r\n\r\n\r\n0\r\n\r\n",
};

TEST(ChunkedTest, SplitAtEveryBoundaryEqualsOneShot) {
  for (std::string_view body : kBodies) {
    const ScanResult whole = ScanAll(body);
    for (size_t i = 0; i <= body.size(); ++i) {
      for (size_t j = i; j <= body.size(); ++j) {
        const ScanResult split =
            ScanPieces({body.substr(0, i), body.substr(i, j - i), body.substr(j)});
        ASSERT_EQ(split, whole) << Printable(body) << " split at " << i << "," << j;
      }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
    ASSERT_EQ(ScanPieces(bytes), whole) << Printable(body) << " byte by byte";
  }
}

}  // namespace
}  // namespace ficus::http

namespace ficus::http {
namespace {

struct Collected {
  std::string payload;
  static void Take(void* self, std::string_view piece) {
    static_cast<Collected*>(self)->payload.append(piece);
  }
};

TEST(ChunkedPayloadTest, ReportsDecodedPayloadAcrossSplits) {
  const std::string body =
      "4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX: y\r\n\r\n";
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    ChunkedScanner scanner;
    Collected got;
    auto a = scanner.Scan(std::string_view(body).substr(0, cut), &Collected::Take, &got);
    ASSERT_TRUE(a) << cut;
    auto b = scanner.Scan(std::string_view(body).substr(cut), &Collected::Take, &got);
    ASSERT_TRUE(b) << cut;
    EXPECT_TRUE(scanner.done());
    EXPECT_EQ(got.payload, "Wikipedia in \r\n\r\nchunks.") << cut;
  }
}

}  // namespace
TEST(ChunkedTest, TrailerOffsetMarksWhereTheTrailerSectionBegins) {
  ChunkedScanner s;
  constexpr std::string_view kBody = "3\r\nabc\r\n0\r\nX-A: 1\r\n\r\nNEXT";
  auto r = s.Scan(kBody.substr(0, 14));  // through "0\r\nX"
  ASSERT_TRUE(r);
  EXPECT_TRUE(s.in_trailer_section());
  EXPECT_EQ(s.trailer_offset(), 11u);  // after "3\r\nabc\r\n0\r\n"
  r = s.Scan(kBody.substr(14));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, kBody.size() - 14 - 4);
  EXPECT_TRUE(s.done());
  EXPECT_FALSE(s.in_trailer_section());
  EXPECT_EQ(s.trailer_offset(), 0u);  // it began in the earlier call
  ChunkedScanner t;
  ASSERT_TRUE(t.Scan("0\r\n\r\n"));
  EXPECT_TRUE(t.done());
  EXPECT_EQ(t.trailer_offset(), 3u);
}

}  // namespace ficus::http
