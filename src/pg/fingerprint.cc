// Query fingerprints (pg_stat_statements-like normalisation over the SQL lexer, lexer.cc), the
// trace id of a sqlcommenter comment, and the statements that set session state.
#include <cctype>
#include <cstring>

#include "pg/internal/lexer.h"
#include "pg/pg.h"

namespace ficus::pg {

namespace {

// Drops ", ?" repeats inside "(?, ?, ?)" so that IN lists and VALUES rows of any length match.
void CollapseLists(std::string& out) {
  std::string r;
  r.reserve(out.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out.compare(i, 3, "(?,") == 0) {
      size_t j = i + 2;
      while (out.compare(j, 3, ", ?") == 0 || out.compare(j, 2, ",?") == 0) {
        j += out[j + 1] == ' ' ? 3 : 2;
      }
      if (j < out.size() && out[j] == ')') {
        r += "(?)";
        i = j;
        continue;
      }
    }
    r += out[i];
  }
  out = std::move(r);
}

}  // namespace

std::string Normalize(std::string_view s) {
  using internal::SqlToken;
  std::string out;
  out.reserve(s.size());
  bool space = false;  // white space or a comment since the last token emitted
  auto separate = [&] {
    if (space && !out.empty()) out += ' ';
    space = false;
  };
  internal::SqlLexer lexer(s);
  SqlToken t;
  while (lexer.Next(&t)) {
    if (t.space_before) space = true;
    switch (t.kind) {
      case SqlToken::Kind::kString:
      case SqlToken::Kind::kParam:
        separate();
        out += '?';
        break;
      case SqlToken::Kind::kNumber:
        // A minus sign right before a number is part of the literal when it follows an
        // operator.
        if (!out.empty() && out.back() == '-' && !space) {
          const size_t k = out.size() >= 2 ? out.size() - 2 : std::string::npos;
          if (k == std::string::npos || out[k] == ' ' || out[k] == '(' || out[k] == ',' ||
              out[k] == '=')
            out.pop_back();
        }
        separate();
        out += '?';
        break;
      case SqlToken::Kind::kQuoted:  // quoted identifiers keep their case
        separate();
        out += t.text;
        break;
      case SqlToken::Kind::kWord:
        separate();
        for (char ch : t.text)
          out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        break;
      case SqlToken::Kind::kPunct:
        // Operators and punctuation: no space before , ) and after ( so lists compare equal.
        for (char c : t.text) {
          if (c == ',' || c == ')' || c == ';') space = false;
          separate();
          out += c;
          if (c == ',') space = true;
        }
        break;
    }
  }
  while (!out.empty() && (out.back() == ';' || out.back() == ' ')) out.pop_back();
  CollapseLists(out);
  return out;
}

uint64_t Fingerprint(std::string_view normalized) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, then a final mix
  for (unsigned char c : normalized) {
    h ^= c;
    h *= 1099511628211ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::string_view TraceIdOf(std::string_view sql) {
  size_t at = sql.find("traceparent=");
  if (at == std::string_view::npos) return {};
  std::string_view v = sql.substr(at + 12);
  if (v.starts_with("'")) {
    v.remove_prefix(1);
  } else if (v.starts_with("%27")) {
    v.remove_prefix(3);
  } else {
    return {};
  }
  // 00-<32 hex>-<16 hex>-<2 hex>
  if (v.size() < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return {};
  auto hex = [](std::string_view h) {
    for (char c : h)
      if (!std::isxdigit(static_cast<unsigned char>(c)) ||
          std::isupper(static_cast<unsigned char>(c)))
        return false;
    return true;
  };
  std::string_view trace = v.substr(3, 32);
  if (!hex(v.substr(0, 2)) || !hex(trace) || !hex(v.substr(36, 16)) || !hex(v.substr(53, 2)))
    return {};
  if (trace.find_first_not_of('0') == std::string_view::npos) return {};
  return trace;
}

const char* SessionStateOf(std::string_view sql) {
  const std::string n = Normalize(sql);
  // Each statement of a multi-statement string.
  size_t start = 0;
  while (start <= n.size()) {
    size_t end = n.find(';', start);
    if (end == std::string::npos) end = n.size();
    std::string_view st = std::string_view(n).substr(start, end - start);
    while (st.starts_with(" ")) st.remove_prefix(1);
    auto has = [&](const char* w) { return st.find(w) != std::string_view::npos; };
    if (st.starts_with("set ") && !st.starts_with("set local ") &&
        !st.starts_with("set transaction ") && !st.starts_with("set constraints "))
      return st.starts_with("set role ") || st.starts_with("set session authorization ")
                 ? "set_role"
                 : "set";
    if (st.starts_with("reset ")) return "set";
    if (st.starts_with("listen ")) return "listen";
    if (st.starts_with("prepare ")) return "prepare";
    if (st.starts_with("load ")) return "load";
    if (st.starts_with("declare ") && has(" with hold ")) return "cursor_with_hold";
    if (st.starts_with("create ") &&
        (st.starts_with("create temp ") || st.starts_with("create temporary ") ||
         st.starts_with("create local temp") || st.starts_with("create global temp")))
      return "temp_table";
    if (has("pg_advisory_lock") || has("pg_try_advisory_lock") || has("pg_advisory_lock_shared") ||
        has("pg_try_advisory_lock_shared"))
      return "advisory_lock";
    if (has("set_config(") && !has(", true)") && !has(",true)")) return "set";
    start = end + 1;
  }
  return nullptr;
}

}  // namespace ficus::pg
