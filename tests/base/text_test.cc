#include "base/text.h"

#include <gtest/gtest.h>

namespace ficus {
namespace {

TEST(JsonString, EscapesQuotesBackslashAndControlBytes) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(JsonString(std::string_view("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonString(std::string_view("\0", 1)), "\"\\u0000\"");
}

TEST(JsonString, PassesUtf8Through) { EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\""); }

TEST(JsonString, AppendsToWhatIsThere) {
  std::string out = "x=";
  AppendJsonString(out, "y");
  EXPECT_EQ(out, "x=\"y\"");
}

TEST(HtmlEscape, EscapesMarkupAndDropsControlBytes) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">Tom's & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape(std::string_view("a\x01\x1b"
                                        "b\tc\nd",
                                        8)),
            "ab\tc\nd");
  EXPECT_EQ(HtmlEscape("caf\xc3\xa9"), "caf\xc3\xa9");
}

}  // namespace
}  // namespace ficus
