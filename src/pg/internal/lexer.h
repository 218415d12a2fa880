// The one SQL lexer of the pg module: PostgreSQL's lexical rules for what the proxy reads in a
// query (the normaliser behind fingerprints, the read/write split's classifier) and in a plan
// (the filter and join conditions index advice reads). Comments vanish (`--` to the end of the
// line, `/* */` nested as the server nests them); string constants (`'..'` with `''`, E'' with
// backslash escapes, B'', X'', N''), dollar-quoted bodies ($$..$$, $tag$..$tag$), numbers and
// parameters ($n) are literals; identifiers are words or "quoted"; `::` is one token, every
// other punctuation byte is its own. Unterminated strings, quoted identifiers, dollar quotes
// and comments run to the end of the text. No allocation: tokens are views into the text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ficus::pg::internal {

struct SqlToken {
  enum class Kind : uint8_t {
    kWord,    // keyword or unquoted identifier, as written (compare without case)
    kQuoted,  // "quoted identifier", quotes included
    kString,  // a string constant or a dollar-quoted body, quotes included
    kNumber,  // 42, 1.5e-3, 0x1F, 1_000, .5
    kParam,   // $1 (also a lone `$`)
    kPunct,   // one byte, or `::`
  };
  Kind kind = Kind::kPunct;
  std::string_view text;
  bool space_before = false;  // white space or a comment separates it from the previous token
  bool literal() const {
    return kind == Kind::kString || kind == Kind::kNumber || kind == Kind::kParam;
  }
  bool punct(char c) const { return kind == Kind::kPunct && text.size() == 1 && text[0] == c; }
  // A word equal to `lower` (lower case) without regard to case.
  bool word(std::string_view lower) const;
};

class SqlLexer {
 public:
  explicit SqlLexer(std::string_view sql) : s_(sql) {}
  // The next token; false at the end of the text (white space and comments after the last
  // token are skipped).
  bool Next(SqlToken* out);

 private:
  size_t SkipBlockComment(size_t i) const;
  size_t EndOfString(size_t i, bool escapes) const;
  size_t EndOfQuoted(size_t i) const;
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace ficus::pg::internal
