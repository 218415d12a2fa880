// Byte ranges (RFC 9110 §14) as plain functions: the Range field against a length, If-Range,
// Content-Range and the multipart/byteranges body.
#include "cache/internal/range.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ficus::cache {
namespace {

std::string Ranges(std::string_view value, uint64_t length) {
  std::vector<ByteRange> out;
  switch (ParseRange(value, length, out)) {
    case RangeVerdict::kIgnore:
      return "ignore";
    case RangeVerdict::kUnsatisfiable:
      return "416";
    case RangeVerdict::kSatisfiable:
      break;
  }
  std::string s;
  for (const ByteRange& r : out) {
    if (!s.empty()) s += ",";
    s += std::to_string(r.first) + "-" + std::to_string(r.last);
  }
  return s;
}

TEST(RangeTest, TheThreeFormsOfARangeSpec) {
  EXPECT_EQ(Ranges("bytes=0-1", 11), "0-1");
  EXPECT_EQ(Ranges("bytes=1-", 11), "1-10");       // absent last-pos: to the end
  EXPECT_EQ(Ranges("bytes=-1", 11), "10-10");      // suffix: the last byte
  EXPECT_EQ(Ranges("bytes=-50", 11), "0-10");      // a suffix longer than the body: all of it
  EXPECT_EQ(Ranges("bytes=5-999", 11), "5-10");    // last-pos past the end: clipped
  EXPECT_EQ(Ranges("BYTES = 2-3", 11), "ignore");  // no whitespace around '='
  EXPECT_EQ(Ranges("Bytes=2-3", 11), "2-3");       // the unit is case-insensitive
  EXPECT_EQ(Ranges(" bytes=2-3 ", 11), "2-3");
  EXPECT_EQ(Ranges("bytes=99999999999999999999999-", 11), "416");  // saturates, not wraps
}

TEST(RangeTest, AnInvalidSpecMakesTheWholeFieldIgnored) {
  EXPECT_EQ(Ranges("bytes=3-2", 11), "ignore");  // last < first
  EXPECT_EQ(Ranges("bytes=0-1,3-2", 11), "ignore");
  EXPECT_EQ(Ranges("bytes=a-b", 11), "ignore");
  EXPECT_EQ(Ranges("bytes=-", 11), "ignore");
  EXPECT_EQ(Ranges("bytes=", 11), "ignore");
  EXPECT_EQ(Ranges("bytes=1-2;x", 11), "ignore");
  EXPECT_EQ(Ranges("items=0-1", 11), "ignore");  // a unit ficus does not serve
  EXPECT_EQ(Ranges("0-1", 11), "ignore");
  std::string many = "bytes=";
  for (int i = 0; i <= static_cast<int>(kMaxRanges); ++i)
    many += std::to_string(i * 200) + "-" + std::to_string(i * 200) + ",";
  EXPECT_EQ(Ranges(many, 100000), "ignore");  // too many: the whole response instead
}

TEST(RangeTest, UnsatisfiableWhenNoRangeOverlapsTheBody) {
  EXPECT_EQ(Ranges("bytes=11-", 11), "416");
  EXPECT_EQ(Ranges("bytes=20-30,40-", 11), "416");
  EXPECT_EQ(Ranges("bytes=-0", 11), "416");         // a zero-length suffix selects nothing
  EXPECT_EQ(Ranges("bytes=0-", 0), "416");          // nothing in an empty body
  EXPECT_EQ(Ranges("bytes=20-30,0-0", 11), "0-0");  // one satisfiable is enough
}

TEST(RangeTest, SeveralRangesAreSortedAndCoalescedWhenTheyOverlapOrNearlyTouch) {
  EXPECT_EQ(Ranges("bytes=0-1, 5-6", 11), "0-6");  // a 3-byte gap: cheaper than a part
  EXPECT_EQ(Ranges("bytes=500-599,0-99", 1000), "0-99,500-599");
  EXPECT_EQ(Ranges("bytes=0-99,50-150,,900-", 1000), "0-150,900-999");
  EXPECT_EQ(Ranges("bytes=0-0,-1", 1000), "0-0,999-999");
}

TEST(RangeTest, IfRangeNeedsAStrongMatch) {
  const std::string_view lm = "Sun, 06 Nov 1994 08:49:37 GMT";
  EXPECT_TRUE(IfRangeAllows("\"v1\"", "\"v1\"", lm));
  EXPECT_FALSE(IfRangeAllows("\"v2\"", "\"v1\"", lm));
  EXPECT_FALSE(IfRangeAllows("W/\"v1\"", "W/\"v1\"", lm));  // weak tags never validate a range
  EXPECT_FALSE(IfRangeAllows("\"v1\"", "W/\"v1\"", lm));
  EXPECT_TRUE(IfRangeAllows(lm, "\"v1\"", lm));
  EXPECT_FALSE(IfRangeAllows("Sun, 06 Nov 1994 08:49:38 GMT", "\"v1\"", lm));
  EXPECT_FALSE(IfRangeAllows(lm, "\"v1\"", ""));  // no Last-Modified to compare with
  EXPECT_FALSE(IfRangeAllows("yesterday", "\"v1\"", lm));
}

TEST(RangeTest, ContentRangeAndTheMultipartBody) {
  std::string cr;
  const ByteRange r{2, 4};
  AppendContentRange(&r, 10, cr);
  EXPECT_EQ(cr, "bytes 2-4/10");
  cr.clear();
  AppendContentRange(nullptr, 10, cr);
  EXPECT_EQ(cr, "bytes */10");
  const std::vector<ByteRange> ranges{{0, 1}, {8, 9}};
  std::string body;
  AppendMultipartBody("0123456789", ranges, "text/plain", "B", body);
  EXPECT_EQ(body,
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\n01\r\n"
            "--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 8-9/10\r\n\r\n89\r\n"
            "--B--\r\n");
  const std::string boundary = MultipartBoundary("abc");
  EXPECT_FALSE(boundary.empty());
  EXPECT_LE(boundary.size(), 70u);
  // Never a string the body holds.
  const std::string tricky = boundary + MultipartBoundary("") + "x";
  EXPECT_EQ(tricky.find(MultipartBoundary(tricky)), std::string::npos);
}

}  // namespace
}  // namespace ficus::cache
