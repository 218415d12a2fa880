#include "base/json.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace ficus {
namespace {

TEST(JsonString, EscapesQuotesBackslashAndControlBytes) {
  EXPECT_EQ(JsonString("plain"), "\"plain\"");
  EXPECT_EQ(JsonString("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(JsonString("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(JsonString(std::string_view("\x01\x1f\x7f", 3)), "\"\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(JsonString(std::string_view("\0", 1)), "\"\\u0000\"");
  EXPECT_EQ(JsonString(""), "\"\"");
}

TEST(JsonString, PassesValidUtf8Through) {
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(JsonString("\xe2\x82\xac \xf0\x9f\x8c\xb3 \xef\xbf\xbf \xf4\x8f\xbf\xbf"),
            "\"\xe2\x82\xac \xf0\x9f\x8c\xb3 \xef\xbf\xbf \xf4\x8f\xbf\xbf\"");
}

TEST(JsonString, EscapesLineAndParagraphSeparators) {
  EXPECT_EQ(JsonString("a\xe2\x80\xa8z\xe2\x80\xa9"), "\"a\\u2028z\\u2029\"");
  EXPECT_EQ(JsonString("\xe2\x80\xa7"), "\"\xe2\x80\xa7\"");  // U+2027 is plain
}

TEST(JsonString, ReplacesEveryByteOfInvalidUtf8) {
  const std::string r = "\\ufffd";
  EXPECT_EQ(JsonString("\xe9"), "\"" + r + "\"");                  // Latin-1, not UTF-8
  EXPECT_EQ(JsonString("a\x80z"), "\"a" + r + "z\"");              // stray continuation
  EXPECT_EQ(JsonString("\xc3"), "\"" + r + "\"");                  // truncated at the end
  EXPECT_EQ(JsonString("\xc3z"), "\"" + r + "z\"");                // truncated in the middle
  EXPECT_EQ(JsonString("\xc0\xaf"), "\"" + r + r + "\"");          // overlong '/'
  EXPECT_EQ(JsonString("\xe0\x80\xaf"), "\"" + r + r + r + "\"");  // overlong, 3 bytes
  EXPECT_EQ(JsonString("\xed\xa0\x80"), "\"" + r + r + r + "\"");  // a surrogate
  EXPECT_EQ(JsonString("\xf4\x90\x80\x80"), "\"" + r + r + r + r + "\"");  // above U+10FFFF
  EXPECT_EQ(JsonString("\xff\xfe"), "\"" + r + r + "\"");
}

// The cursor form writes at most MaxJsonStringBytes: the access log sizes its lines by it.
TEST(JsonString, NeverWritesMoreThanTheBound) {
  const std::string worst[] = {std::string(100, '\x01'),
                               std::string(100, '\xff'),
                               std::string(100, '"'),
                               [] {
                                 std::string s;
                                 for (int i = 0; i < 50; ++i) s += "\xe2\x80\xa8";
                                 return s;
                               }(),
                               std::string("\xc3"),
                               std::string(1, '\0')};
  for (const std::string& s : worst) {
    std::string buf(MaxJsonStringBytes(s.size()) + 16, '#');
    char* end = WriteJsonString(buf.data(), s);
    EXPECT_LE(static_cast<size_t>(end - buf.data()), MaxJsonStringBytes(s.size()));
    EXPECT_EQ(buf[MaxJsonStringBytes(s.size())], '#');
  }
}

TEST(JsonString, AppendsToWhatIsThere) {
  std::string out = "x=";
  AppendJsonString(out, "y");
  AppendJsonUint(out, 18446744073709551615u);
  EXPECT_EQ(out, "x=\"y\"18446744073709551615");
}

TEST(JsonWriter, InsertsCommasAndColons) {
  JsonWriter w;
  w.BeginObject()
      .Key("a")
      .Uint(1)
      .Key("b\"")
      .BeginArray()
      .String("x")
      .Null()
      .Bool(true)
      .Int(-2)
      .Number(0.25)
      .Number(3)
      .EndArray()
      .Key("c")
      .BeginObject()
      .EndObject()
      .Key("d")
      .Raw("[1,2]")
      .EndObject();
  EXPECT_EQ(w.Take(), R"({"a":1,"b\"":["x",null,true,-2,0.25,3],"c":{},"d":[1,2]})");
}

TEST(JsonWriter, WritesNullForNumbersJsonLacks) {
  JsonWriter w;
  constexpr double kInf = std::numeric_limits<double>::infinity();
  w.BeginArray().Number(kInf).Number(-kInf).Number(std::numeric_limits<double>::quiet_NaN());
  w.EndArray();
  EXPECT_EQ(w.Take(), "[null,null,null]");
}

}  // namespace
}  // namespace ficus
