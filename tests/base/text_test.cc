#include "base/text.h"

#include <gtest/gtest.h>

namespace ficus {
namespace {

TEST(HtmlEscape, EscapesMarkupAndDropsControlBytes) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">Tom's & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp; co&lt;/a&gt;");
  EXPECT_EQ(HtmlEscape(std::string_view("a\x01\x1b"
                                        "b\tc\nd",
                                        8)),
            "ab\tc\nd");
  EXPECT_EQ(HtmlEscape("caf\xc3\xa9"), "caf\xc3\xa9");
}

TEST(Format, PrintsWhateverLengthItTakes) {
  EXPECT_EQ(Format("%d req/s at %.1f ms", 250, 12.34), "250 req/s at 12.3 ms");
  EXPECT_EQ(Format("%s", ""), "");
  EXPECT_EQ(Format("%s!", std::string(5000, 'x').c_str()).size(), 5001u);
}

}  // namespace
}  // namespace ficus
