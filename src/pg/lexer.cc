// The SQL lexer (see internal/lexer.h).
#include "pg/internal/lexer.h"

#include <cctype>
#include <cstring>

namespace ficus::pg::internal {

namespace {

bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; }
bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

// The end of a dollar-quoted body opened at s[i] == '$' ($$...$$ or $tag$...$tag$), or 0 when
// s[i] does not open one ($1 is a parameter: a tag never starts with a digit).
size_t EndOfDollarQuoted(std::string_view s, size_t i) {
  size_t j = i + 1;
  while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
  if (j >= s.size() || s[j] != '$') return 0;
  if (j > i + 1 && IsDigit(s[i + 1])) return 0;
  const std::string_view tag = s.substr(i, j - i + 1);
  const size_t end = s.find(tag, j + 1);
  return end == std::string_view::npos ? s.size() : end + tag.size();
}

}  // namespace

bool SqlToken::word(std::string_view lower) const {
  if (kind != Kind::kWord || text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i])) != lower[i]) return false;
  return true;
}

size_t SqlLexer::SkipBlockComment(size_t i) const {
  int depth = 0;  // PostgreSQL block comments nest
  while (i < s_.size()) {
    if (s_.compare(i, 2, "/*") == 0) {
      ++depth;
      i += 2;
    } else if (s_.compare(i, 2, "*/") == 0) {
      i += 2;
      if (--depth == 0) break;
    } else {
      ++i;
    }
  }
  return i;
}

// `i`: just after the opening quote. '' doubles a quote; E'' strings also escape with `\`.
size_t SqlLexer::EndOfString(size_t i, bool escapes) const {
  while (i < s_.size()) {
    if (escapes && s_[i] == '\\') {
      i += 2;
    } else if (s_[i] == '\'') {
      if (i + 1 < s_.size() && s_[i + 1] == '\'') {
        i += 2;
      } else {
        return i + 1;
      }
    } else {
      ++i;
    }
  }
  return s_.size();
}

// `i`: just after the opening `"`. `""` is a quote inside.
size_t SqlLexer::EndOfQuoted(size_t i) const {
  while (i < s_.size()) {
    if (s_[i] == '"') {
      if (i + 1 < s_.size() && s_[i + 1] == '"') {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return s_.size();
}

bool SqlLexer::Next(SqlToken* out) {
  const std::string_view s = s_;
  size_t& i = i_;
  bool space = false;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t start = i;
    SqlToken::Kind kind;
    if (std::isspace(c)) {
      space = true;
      ++i;
      continue;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      const size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl + 1;
      space = true;
      continue;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i = SkipBlockComment(i);
      space = true;
      continue;
    } else if (c == '\'' ||
               (std::strchr("EeBbXxNn", c) != nullptr && i + 1 < s.size() && s[i + 1] == '\'')) {
      i = EndOfString(i + (c == '\'' ? 1 : 2), c == 'E' || c == 'e');
      kind = SqlToken::Kind::kString;
    } else if (c == '$') {
      if (const size_t end = EndOfDollarQuoted(s, i)) {
        i = end;
        kind = SqlToken::Kind::kString;
      } else {
        ++i;
        while (i < s.size() && IsDigit(s[i])) ++i;
        kind = SqlToken::Kind::kParam;
      }
    } else if (IsDigit(static_cast<char>(c)) ||
               (c == '.' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      // 1e-5, 0x1F, 1_000 (a number that ends an identifier is part of the identifier).
      while (i < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == '_' ||
              ((s[i] == '-' || s[i] == '+') && (s[i - 1] == 'e' || s[i - 1] == 'E'))))
        ++i;
      kind = SqlToken::Kind::kNumber;
    } else if (c == '"') {
      i = EndOfQuoted(i + 1);
      kind = SqlToken::Kind::kQuoted;
    } else if (IsIdentStart(c)) {
      while (i < s.size() && IsIdentChar(static_cast<unsigned char>(s[i]))) ++i;
      kind = SqlToken::Kind::kWord;
    } else {
      i += c == ':' && i + 1 < s.size() && s[i + 1] == ':' ? 2 : 1;
      kind = SqlToken::Kind::kPunct;
    }
    out->kind = kind;
    out->text = s.substr(start, i - start);
    out->space_before = space;
    return true;
  }
  return false;
}

}  // namespace ficus::pg::internal
