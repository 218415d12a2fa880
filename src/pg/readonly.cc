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

#include "pg/internal/replicas.h"

namespace ficus::pg::internal {

namespace {

struct Token {
  enum class Kind : uint8_t { kWord, kQuoted, kLiteral, kPunct } kind;
  std::string_view text;  // words as written (compare without case)
};

bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_' || c >= 0x80; }
bool IsIdentChar(unsigned char c) { return std::isalnum(c) || c == '_' || c == '$' || c >= 0x80; }

bool Is(const Token& t, const char* word) {
  if (t.kind != Token::Kind::kWord || t.text.size() != std::strlen(word)) return false;
  for (size_t i = 0; i < t.text.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(t.text[i])) != word[i]) return false;
  return true;
}

bool IsPunct(const Token& t, std::string_view p) {
  return t.kind == Token::Kind::kPunct && t.text == p;
}

// Splits `s` into tokens; strings, dollar-quoted bodies, numbers and parameters become literals,
// comments vanish.
void Lex(std::string_view s, std::vector<Token>* out) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t start = i;
    if (std::isspace(c)) {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      const size_t nl = s.find('\n', i);
      i = nl == std::string_view::npos ? s.size() : nl + 1;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      int depth = 0;  // block comments nest
      while (i < s.size()) {
        if (s.compare(i, 2, "/*") == 0) {
          ++depth;
          i += 2;
        } else if (s.compare(i, 2, "*/") == 0) {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else if (c == '\'' || (std::strchr("EeBbXxNn", c) && i + 1 < s.size() && s[i + 1] == '\'')) {
      const bool escapes = c == 'E' || c == 'e';
      i += c == '\'' ? 1 : 2;
      while (i < s.size()) {
        if (escapes && s[i] == '\\') {
          i += 2;
        } else if (s[i] == '\'') {
          ++i;
          if (i < s.size() && s[i] == '\'') {
            ++i;
            continue;
          }
          break;
        } else {
          ++i;
        }
      }
      out->push_back({Token::Kind::kLiteral, s.substr(start, std::min(i, s.size()) - start)});
    } else if (c == '"') {
      ++i;
      while (i < s.size()) {
        if (s[i] == '"') {
          ++i;
          if (i < s.size() && s[i] == '"') {
            ++i;
            continue;
          }
          break;
        }
        ++i;
      }
      out->push_back({Token::Kind::kQuoted, s.substr(start, std::min(i, s.size()) - start)});
    } else if (c == '$') {
      size_t j = i + 1;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      const bool param = j > i + 1 && std::isdigit(static_cast<unsigned char>(s[i + 1]));
      if (!param && j < s.size() && s[j] == '$') {  // $tag$ ... $tag$
        const std::string_view tag = s.substr(i, j - i + 1);
        const size_t end = s.find(tag, j + 1);
        i = end == std::string_view::npos ? s.size() : end + tag.size();
      } else {
        i = j;
      }
      out->push_back({Token::Kind::kLiteral, s.substr(start, i - start)});
    } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() &&
                                   std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      while (i < s.size() &&
             (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '.' || s[i] == '_'))
        ++i;
      out->push_back({Token::Kind::kLiteral, s.substr(start, i - start)});
    } else if (IsIdentStart(c)) {
      while (i < s.size() && IsIdentChar(static_cast<unsigned char>(s[i]))) ++i;
      out->push_back({Token::Kind::kWord, s.substr(start, i - start)});
    } else if (c == ':' && i + 1 < s.size() && s[i + 1] == ':') {
      i += 2;
      out->push_back({Token::Kind::kPunct, s.substr(start, 2)});
    } else {
      ++i;
      out->push_back({Token::Kind::kPunct, s.substr(start, 1)});
    }
  }
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

// Built-in functions that never write (sorted: binary search). A function not here, or any
// schema-qualified function outside pg_catalog, makes the statement go to the primary.
constexpr const char* kReadFunctions[] = {
    "abs",
    "age",
    "array_agg",
    "array_append",
    "array_cat",
    "array_length",
    "array_lower",
    "array_position",
    "array_positions",
    "array_prepend",
    "array_remove",
    "array_replace",
    "array_to_json",
    "array_to_string",
    "array_upper",
    "ascii",
    "avg",
    "bit_and",
    "bit_length",
    "bit_or",
    "bool_and",
    "bool_or",
    "btrim",
    "cardinality",
    "cbrt",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "chr",
    "clock_timestamp",
    "col_description",
    "concat",
    "concat_ws",
    "count",
    "cume_dist",
    "current_database",
    "current_schema",
    "current_schemas",
    "current_setting",
    "date",
    "date_bin",
    "date_part",
    "date_trunc",
    "decode",
    "degrees",
    "dense_rank",
    "div",
    "encode",
    "every",
    "exp",
    "first_value",
    "floor",
    "format",
    "format_type",
    "gen_random_uuid",
    "generate_series",
    "generate_subscripts",
    "has_column_privilege",
    "has_database_privilege",
    "has_schema_privilege",
    "has_table_privilege",
    "inet_client_addr",
    "inet_client_port",
    "inet_server_addr",
    "inet_server_port",
    "initcap",
    "isfinite",
    "json_agg",
    "json_array_elements",
    "json_array_elements_text",
    "json_array_length",
    "json_build_array",
    "json_build_object",
    "json_each",
    "json_each_text",
    "json_extract_path",
    "json_extract_path_text",
    "json_object",
    "json_object_agg",
    "json_object_keys",
    "json_typeof",
    "jsonb_agg",
    "jsonb_array_elements",
    "jsonb_array_elements_text",
    "jsonb_array_length",
    "jsonb_build_array",
    "jsonb_build_object",
    "jsonb_each",
    "jsonb_each_text",
    "jsonb_extract_path",
    "jsonb_extract_path_text",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_object_agg",
    "jsonb_object_keys",
    "jsonb_path_exists",
    "jsonb_path_match",
    "jsonb_path_query",
    "jsonb_path_query_array",
    "jsonb_path_query_first",
    "jsonb_pretty",
    "jsonb_set",
    "jsonb_strip_nulls",
    "jsonb_typeof",
    "justify_days",
    "justify_hours",
    "justify_interval",
    "lag",
    "last_value",
    "lead",
    "left",
    "length",
    "ln",
    "log",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "make_interval",
    "make_time",
    "make_timestamp",
    "make_timestamptz",
    "max",
    "md5",
    "min",
    "mod",
    "mode",
    "now",
    "nth_value",
    "ntile",
    "obj_description",
    "octet_length",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "pg_backend_pid",
    "pg_column_size",
    "pg_database_size",
    "pg_get_constraintdef",
    "pg_get_expr",
    "pg_get_indexdef",
    "pg_get_userbyid",
    "pg_get_viewdef",
    "pg_indexes_size",
    "pg_is_in_recovery",
    "pg_last_wal_receive_lsn",
    "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp",
    "pg_postmaster_start_time",
    "pg_relation_size",
    "pg_size_pretty",
    "pg_table_is_visible",
    "pg_table_size",
    "pg_total_relation_size",
    "pg_typeof",
    "pi",
    "power",
    "quote_ident",
    "quote_literal",
    "quote_nullable",
    "radians",
    "random",
    "rank",
    "regexp_count",
    "regexp_instr",
    "regexp_like",
    "regexp_match",
    "regexp_matches",
    "regexp_replace",
    "regexp_split_to_array",
    "regexp_split_to_table",
    "regexp_substr",
    "repeat",
    "replace",
    "reverse",
    "right",
    "round",
    "row_number",
    "row_to_json",
    "rpad",
    "rtrim",
    "sha224",
    "sha256",
    "sha384",
    "sha512",
    "sign",
    "split_part",
    "sqrt",
    "starts_with",
    "statement_timestamp",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "string_to_array",
    "string_to_table",
    "strpos",
    "substr",
    "sum",
    "timeofday",
    "timezone",
    "to_char",
    "to_date",
    "to_hex",
    "to_json",
    "to_jsonb",
    "to_number",
    "to_timestamp",
    "transaction_timestamp",
    "translate",
    "trunc",
    "unnest",
    "upper",
    "var_pop",
    "var_samp",
    "variance",
    "version",
    "width_bucket",
};

constexpr bool Sorted(std::span<const char* const> list) {
  for (size_t i = 1; i < list.size(); ++i) {
    std::string_view a = list[i - 1], b = list[i];
    if (!(a < b)) return false;
  }
  return true;
}
static_assert(Sorted(kReadFunctions), "kReadFunctions must be sorted (binary search)");

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
  lower[t.text.size()] = '\0';
  return std::binary_search(std::begin(kReadFunctions), std::end(kReadFunctions), lower,
                            [](const char* a, const char* b) { return std::strcmp(a, b) < 0; });
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
