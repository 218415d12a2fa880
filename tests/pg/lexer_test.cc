// The SQL lexer shared by the normaliser, the read/write split and index advice.
#include "pg/internal/lexer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ficus::pg::internal {
namespace {

std::string Kinds(std::string_view sql) {
  std::string out;
  SqlLexer lexer(sql);
  for (SqlToken t; lexer.Next(&t);) {
    if (!out.empty()) out += ' ';
    if (t.space_before) out += '_';
    switch (t.kind) {
      case SqlToken::Kind::kWord:
        out += "w";
        break;
      case SqlToken::Kind::kQuoted:
        out += "q";
        break;
      case SqlToken::Kind::kString:
        out += "s";
        break;
      case SqlToken::Kind::kNumber:
        out += "n";
        break;
      case SqlToken::Kind::kParam:
        out += "p";
        break;
      case SqlToken::Kind::kPunct:
        out += ".";
        break;
    }
    out += ':';
    out += t.text;
  }
  return out;
}

TEST(PgLexer, Tokens) {
  EXPECT_EQ(Kinds("SELECT a::int FROM \"T\" WHERE b = $1"),
            "w:SELECT _w:a .::: w:int _w:FROM _q:\"T\" _w:WHERE _w:b _.:= _p:$1");
  EXPECT_EQ(Kinds("'it''s' E'a\\'b' x'1F' $$x$$ $t$y$t$ 1.5e-3 .5"),
            "s:'it''s' _s:E'a\\'b' _s:x'1F' _s:$$x$$ _s:$t$y$t$ _n:1.5e-3 _n:.5");
  EXPECT_EQ(Kinds("a -- c\n/* x /* y */ z */b"), "w:a _w:b");
  EXPECT_EQ(Kinds("a<=b"), "w:a .:< .:= w:b");
  EXPECT_EQ(Kinds("'open"), "s:'open");  // unterminated: to the end
  EXPECT_EQ(Kinds("$tag$ body"), "s:$tag$ body");
  EXPECT_EQ(Kinds("$ $a"), "p:$ _p:$ w:a");
  EXPECT_EQ(Kinds("  "), "");
}

TEST(PgLexer, WordCompareIgnoresCase) {
  SqlLexer lexer("SeLeCt");
  SqlToken t;
  ASSERT_TRUE(lexer.Next(&t));
  EXPECT_TRUE(t.word("select"));
  EXPECT_FALSE(t.word("selec"));
  EXPECT_FALSE(lexer.Next(&t));
}

}  // namespace
}  // namespace ficus::pg::internal
