#include "base/json.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
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

// Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80                 ? 1
               : c >= 0xC2 && c <= 0xDF ? 2
               : c >= 0xE0 && c <= 0xEF ? 3
               : c >= 0xF0 && c <= 0xF4 ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1F : n == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n;
  }
  return true;
}

// Any bytes at all: the output is one JSON string literal in valid UTF-8, within the bound.
TEST(JsonString, RandomBytesGiveValidJsonWithinTheBound) {
  std::mt19937 rng(42);
  const std::string pieces[] = {
      "\xe2\x80\xa8", "\xc3\xa9", "\xf0\x9f\x8c\xb3", "\xed\xa0\x80", "\"", "\\", "a"};
  for (int round = 0; round < 20000; ++round) {
    std::string in;
    const int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) {
      if (rng() % 3 == 0) {
        in += pieces[rng() % std::size(pieces)];
      } else {
        in.push_back(static_cast<char>(rng() & 0xFF));
      }
    }
    std::string buf(MaxJsonStringBytes(in.size()), '\0');
    const size_t len = static_cast<size_t>(WriteJsonString(buf.data(), in) - buf.data());
    ASSERT_LE(len, buf.size());
    const std::string_view out(buf.data(), len);
    ASSERT_TRUE(IsValidUtf8(out)) << round;
    ASSERT_GE(out.size(), 2u);
    ASSERT_EQ(out.front(), '"');
    ASSERT_EQ(out.back(), '"');
    for (size_t i = 1; i + 1 < out.size(); ++i) {
      const auto c = static_cast<unsigned char>(out[i]);
      ASSERT_GE(c, 0x20) << round;
      ASSERT_NE(c, 0x7F) << round;
      if (c == '\\') {
        ++i;  // the escaped character
      } else {
        ASSERT_NE(c, '"') << round;
      }
    }
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

// The sixteen-byte scan for plain runs finds an odd byte wherever it sits in a long string: in
// the first block, across a block boundary, in the tail after the last whole block.
TEST(JsonTest, EscapesAtEveryPositionOfALongString) {
  const std::pair<std::string, std::string> odd[] = {
      {"\"", "\\\""},           {"\\", "\\\\"},      {"\x01", "\\u0001"}, {"\x7f", "\\u007f"},
      {"\xc3\xa9", "\xc3\xa9"}, {"\xff", "\\ufffd"}, {"\n", "\\n"}};
  for (const auto& [raw, escaped] : odd) {
    for (size_t at = 0; at <= 40; ++at) {
      const std::string in = std::string(at, 'a') + raw + std::string(40 - at, 'b');
      const std::string want =
          "\"" + std::string(at, 'a') + escaped + std::string(40 - at, 'b') + "\"";
      EXPECT_EQ(JsonString(in), want) << "at " << at;
    }
  }
}

}  // namespace ficus
