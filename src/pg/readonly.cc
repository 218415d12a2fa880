// Which statements are provably read-only, for the read/write split. The rule is conservative:
// a statement is a read only when it starts with SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN,
// names no writing or locking keyword anywhere (INSERT, UPDATE, DELETE, MERGE, INTO, FOR
// SHARE...), and calls no function outside a list of built-ins known not to write (a
// user-defined or schema-qualified function may write: nextval, pg_advisory_lock, an UPDATE in
// PL/pgSQL). Everything else goes to the primary.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <span>
#include <string_view>

#include "pg/internal/lexer.h"
#include "pg/internal/replicas.h"

namespace ficus::pg::internal {

namespace {

using Token = SqlToken;

bool Is(const Token& t, const char* word) { return t.word(word); }

bool IsPunct(const Token& t, std::string_view p) {
  return t.kind == Token::Kind::kPunct && t.text == p;
}

// Splits `s` into tokens (the module's one lexer, lexer.cc).
void Lex(std::string_view s, std::vector<Token>* out) {
  SqlLexer lexer(s);
  Token t;
  while (lexer.Next(&t)) out->push_back(t);
}

// Words that make a statement a write wherever they appear: a data-modifying CTE, SELECT INTO,
// a locking clause's UPDATE. (Statements that start with any other verb are writes anyway.)
constexpr const char* kWriteWords[] = {"delete", "insert", "into", "merge", "update"};

// Words that may stand before "(" without being a function call: keywords and syntax
// (IN (...), EXISTS (...), OVER (...), CAST(...)), type names with a modifier (numeric(10, 2)).
constexpr const char* kNotCalls[] = {
    "all",       "and",       "any",          "array",
    "as",        "between",   "bit",          "by",
    "case",      "cast",      "char",         "character",
    "coalesce",  "cube",      "current_time", "current_timestamp",
    "decimal",   "distinct",  "else",         "except",
    "exists",    "extract",   "filter",       "from",
    "greatest",  "group",     "grouping",     "having",
    "ilike",     "in",        "intersect",    "interval",
    "is",        "join",      "lateral",      "least",
    "like",      "limit",     "localtime",    "localtimestamp",
    "not",       "nullif",    "numeric",      "offset",
    "on",        "or",        "order",        "over",
    "overlay",   "partition", "position",     "range",
    "rollup",    "row",       "rows",         "select",
    "sets",      "similar",   "some",         "substring",
    "then",      "time",      "timestamp",    "timestamptz",
    "treat",     "trim",      "union",        "using",
    "values",    "varchar",   "when",         "where",
    "window",    "with",      "within",       "xmlelement",
    "xmlforest", "xmlparse",  "xmlroot",
};

bool InList(const Token& t, std::span<const char* const> list) {
  for (const char* w : list)
    if (Is(t, w)) return true;
  return false;
}

bool IsReadFunction(const Token& t) {
  if (t.kind != Token::Kind::kWord || t.text.size() > 40) return false;
  char lower[41];
  for (size_t i = 0; i < t.text.size(); ++i)
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(t.text[i])));
  return IsReadOnlyBuiltin(std::string_view(lower, t.text.size()));
}

bool HasWords(std::span<const Token> st, const char* a, const char* b) {
  for (size_t i = 0; i + 1 < st.size(); ++i)
    if (Is(st[i], a) && Is(st[i + 1], b)) return true;
  return false;
}

// The index of the ")" closing the "(" at `open`; st.size() when unbalanced.
size_t MatchingParen(std::span<const Token> st, size_t open) {
  int depth = 0;
  for (size_t i = open; i < st.size(); ++i) {
    if (IsPunct(st[i], "(")) ++depth;
    if (IsPunct(st[i], ")") && --depth == 0) return i;
  }
  return st.size();
}

// A statement starting with SELECT, WITH, VALUES, TABLE, SHOW, EXPLAIN or "(": read-only when no
// token in it writes, locks or calls a function that might.
bool ReadsOnly(std::span<const Token> st) {
  for (size_t i = 0; i < st.size(); ++i) {
    const Token& t = st[i];
    if (InList(t, kWriteWords)) return false;
    // FOR UPDATE / FOR NO KEY UPDATE / FOR SHARE / FOR KEY SHARE (UPDATE is a write word).
    if (Is(t, "for") && i + 1 < st.size() &&
        (Is(st[i + 1], "share") || Is(st[i + 1], "no") || Is(st[i + 1], "key")))
      return false;
    if (i + 1 >= st.size() || !IsPunct(st[i + 1], "(")) continue;
    if (t.kind == Token::Kind::kQuoted) {
      // "Name"(...): a quoted function name is a call, unless it is an alias's column list.
      if (i > 0 && Is(st[i - 1], "as")) continue;
      return false;
    }
    if (t.kind != Token::Kind::kWord) continue;
    if (i > 0 && (IsPunct(st[i - 1], "::") || Is(st[i - 1], "as"))) continue;  // type, alias
    if (i > 0 && IsPunct(st[i - 1], ".")) {
      if (i >= 2 && Is(st[i - 2], "pg_catalog") && IsReadFunction(t)) continue;
      return false;  // schema.function(): user code
    }
    if (InList(t, kNotCalls) || IsReadFunction(t)) continue;
    // WITH name(columns) AS (...): a common table expression's column list, not a call. (A call
    // in FROM with an alias, fn(x) AS t, has a name after AS, not "(".)
    if (size_t close = MatchingParen(st, i + 1);
        close + 2 < st.size() && Is(st[close + 1], "as") &&
        (IsPunct(st[close + 2], "(") || Is(st[close + 2], "materialized") ||
         Is(st[close + 2], "not")))
      continue;
    return false;
  }
  return true;
}

StatementKind KindOf(std::span<const Token> st) {
  if (st.empty()) return StatementKind::kNeutral;
  const Token& first = st[0];
  if (Is(first, "begin") || (Is(first, "start") && st.size() > 1 && Is(st[1], "transaction"))) {
    if (HasWords(st, "read", "only")) return StatementKind::kBeginReadOnly;
    return StatementKind::kBegin;
  }
  if (Is(first, "commit") || Is(first, "end") || Is(first, "rollback") || Is(first, "abort")) {
    if (st.size() > 1 && (Is(st[1], "prepared") || Is(st[1], "to"))) {
      // COMMIT/ROLLBACK PREPARED change another transaction; ROLLBACK TO a savepoint stays in
      // this one.
      return Is(st[1], "to") ? StatementKind::kNeutral : StatementKind::kWrite;
    }
    if (HasWords(st, "and", "chain") && !HasWords(st, "no", "chain"))
      return StatementKind::kEndChain;
    return StatementKind::kEnd;
  }
  if (Is(first, "savepoint") || Is(first, "release")) return StatementKind::kNeutral;
  if (Is(first, "set") && st.size() > 1) {
    if (Is(st[1], "transaction")) {
      if (HasWords(st, "read", "only")) return StatementKind::kSetReadOnly;
      if (HasWords(st, "read", "write")) return StatementKind::kWrite;
      return StatementKind::kNeutral;  // isolation level, deferrable
    }
    if (Is(st[1], "local") && !(st.size() > 2 && (Is(st[2], "role") || Is(st[2], "session"))))
      return StatementKind::kNeutral;  // ends with the transaction
    return StatementKind::kWrite;      // session state: pins to the primary
  }
  if (Is(first, "select") || Is(first, "with") || Is(first, "values") || Is(first, "table") ||
      Is(first, "show") || Is(first, "explain") || IsPunct(first, "(")) {
    return ReadsOnly(st) ? StatementKind::kRead : StatementKind::kWrite;
  }
  return StatementKind::kWrite;
}

}  // namespace

void ClassifyStatements(std::string_view sql, std::vector<StatementKind>* out) {
  out->clear();
  std::vector<Token> tokens;
  tokens.reserve(sql.size() / 4 + 8);  // one allocation for typical SQL
  Lex(sql, &tokens);
  size_t start = 0;
  for (size_t i = 0; i <= tokens.size(); ++i) {
    if (i < tokens.size() && !IsPunct(tokens[i], ";")) continue;
    if (i > start) out->push_back(KindOf(std::span<const Token>(tokens).subspan(start, i - start)));
    start = i + 1;
  }
}

StatementKind KindOfOne(std::string_view sql) {
  std::vector<StatementKind> kinds;
  ClassifyStatements(sql, &kinds);
  if (kinds.empty()) return StatementKind::kNeutral;
  return kinds.size() == 1 ? kinds[0] : StatementKind::kWrite;
}

void AccessClassifier::Add(StatementKind kind) {
  switch (kind) {
    case StatementKind::kNeutral:
    case StatementKind::kRead:
      break;
    case StatementKind::kWrite:
      // Inside a READ ONLY transaction the server refuses a write itself, on a replica as on
      // the primary: the same answer either way.
      if (!(in_tx_ && tx_read_only_)) write_ = true;
      break;
    case StatementKind::kBegin:
    case StatementKind::kBeginReadOnly:
      if (!in_tx_) {  // BEGIN inside a transaction is a warning and changes nothing
        in_tx_ = true;
        tx_read_only_ = kind == StatementKind::kBeginReadOnly;
      }
      break;
    case StatementKind::kSetReadOnly:
      if (in_tx_) tx_read_only_ = true;
      break;
    case StatementKind::kEnd:
      in_tx_ = false;
      tx_read_only_ = false;
      break;
    case StatementKind::kEndChain:
      break;  // the next transaction has the same characteristics
  }
}

void AccessClassifier::AddSql(std::string_view sql) {
  std::vector<StatementKind> kinds;
  ClassifyStatements(sql, &kinds);
  for (StatementKind k : kinds) Add(k);
}

Access AccessClassifier::Result() const {
  if (write_) return Access::kWrite;
  if (in_tx_) return tx_read_only_ ? Access::kReadOnlyTransaction : Access::kWrite;
  return Access::kRead;
}

}  // namespace ficus::pg::internal
