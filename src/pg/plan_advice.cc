// Index advice from EXPLAIN (FORMAT JSON) (see internal/plan_advice.h).
#include "pg/internal/plan_advice.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "base/text.h"
#include "pg/internal/lexer.h"

namespace ficus::pg::internal {

namespace json = boost::json;

namespace {

// Words that stand where a column could but are not one.
constexpr std::string_view kNotColumns[] = {
    "all",
    "and",
    "any",
    "array",
    "between",
    "case",
    "current_date",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "else",
    "end",
    "exists",
    "false",
    "hashed",
    "in",
    "is",
    "like",
    "ilike",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "or",
    "session_user",
    "some",
    "subplan",
    "then",
    "true",
    "unknown",
    "user",
    "when",
    "initplan",
    "distinct",
    "from",
};

bool IsColumnWord(const SqlToken& t) {
  if (t.kind == SqlToken::Kind::kQuoted) return t.text.size() > 2;
  if (t.kind != SqlToken::Kind::kWord) return false;
  for (std::string_view w : kNotColumns)
    if (t.word(w)) return false;
  return true;
}

bool IsOperatorByte(const SqlToken& t) {
  return t.kind == SqlToken::Kind::kPunct && t.text.size() == 1 &&
         std::string_view("<>=!~").find(t.text[0]) != std::string_view::npos;
}

struct Ref {
  std::string_view qualifier, name;
  size_t end = 0;  // the token after it
};

// A column reference at tokens[i]: name, or qualifier.name; not a function call, not a type.
bool RefAt(const std::vector<SqlToken>& t, size_t i, Ref* out) {
  if (i >= t.size() || !IsColumnWord(t[i])) return false;
  if (i > 0 && (t[i - 1].text == "::" || t[i - 1].punct('.'))) return false;
  Ref r;
  size_t j = i + 1;
  if (j + 1 < t.size() && t[j].punct('.') && IsColumnWord(t[j + 1])) {
    r.qualifier = t[i].text;
    r.name = t[j + 1].text;
    j += 2;
  } else {
    r.name = t[i].text;
  }
  if (j < t.size() && (t[j].punct('(') || t[j].punct('.'))) return false;  // a call, a.b.c
  r.end = j;
  *out = r;
  return true;
}

// Past `)` and `::type` casts after a reference: (status)::text, created_at::date.
size_t SkipCasts(const std::vector<SqlToken>& t, size_t k) {
  for (;;) {
    size_t m = k;
    while (m < t.size() && t[m].punct(')')) ++m;
    if (m >= t.size() || t[m].text != "::") return k;
    ++m;
    while (m < t.size() && (t[m].kind == SqlToken::Kind::kWord || t[m].punct('[') ||
                            t[m].punct(']') || t[m].kind == SqlToken::Kind::kQuoted))
      ++m;
    if (m < t.size() && t[m].punct('(')) {  // varchar(20)
      while (m < t.size() && !t[m].punct(')')) ++m;
      if (m < t.size()) ++m;
    }
    k = m;
  }
}

// The operator at tokens[k] (adjacent operator bytes), and the index after it.
std::string OperatorAt(const std::vector<SqlToken>& t, size_t k, size_t* end) {
  std::string op;
  while (k < t.size() && IsOperatorByte(t[k]) && (op.empty() || !t[k].space_before)) {
    op += t[k].text;
    ++k;
  }
  *end = k;
  return op;
}

void AddUnique(std::vector<std::string>& v, std::string_view s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.emplace_back(s);
}

bool Wanted(const Ref& r, std::string_view alias) {
  return alias.empty() || r.qualifier.empty() || r.qualifier == alias;
}

}  // namespace

ConditionColumns ColumnsOf(std::string_view condition, std::string_view alias) {
  ConditionColumns out;
  std::vector<SqlToken> t;
  SqlLexer lexer(condition);
  for (SqlToken tok; lexer.Next(&tok) && t.size() < 4096;) t.push_back(tok);
  for (const SqlToken& tok : t) {
    if (tok.word("or")) {  // no one index serves a disjunction
      out.has_or = true;
      return out;
    }
  }
  for (size_t i = 0; i < t.size(); ++i) {
    Ref left;
    if (!RefAt(t, i, &left)) continue;
    size_t k = SkipCasts(t, left.end);
    size_t after = k;
    const std::string op = OperatorAt(t, k, &after);
    if (op == "=") {
      if (Wanted(left, alias)) AddUnique(out.equality, left.name);
      // col = other.col (a join): both sides are equality columns of their tables.
      size_t r = after;
      while (r < t.size() && t[r].punct('(')) ++r;
      Ref right;
      if (RefAt(t, r, &right) && Wanted(right, alias)) AddUnique(out.equality, right.name);
    } else if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      if (Wanted(left, alias)) AddUnique(out.range, left.name);
    } else if (op.empty() && k < t.size() && t[k].word("is") && k + 1 < t.size() &&
               t[k + 1].word("null")) {
      if (Wanted(left, alias)) AddUnique(out.equality, left.name);
    }
    i = left.end - 1;
  }
  // A column compared for equality needs no range part.
  std::erase_if(out.range, [&](const std::string& c) {
    return std::find(out.equality.begin(), out.equality.end(), c) != out.equality.end();
  });
  return out;
}

namespace {

double Num(const json::object& o, std::string_view key, double fallback = 0) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr) return fallback;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return fallback;
}

std::string_view Str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(json::string_view(key.data(), key.size()));
  if (v == nullptr || !v->is_string()) return {};
  const json::string& s = v->get_string();
  return std::string_view(s.data(), s.size());
}

bool Has(const json::object& o, std::string_view key) {
  return o.if_contains(json::string_view(key.data(), key.size())) != nullptr;
}

std::vector<const json::object*> Children(const json::object& o) {
  std::vector<const json::object*> out;
  const json::value* plans = o.if_contains("Plans");
  if (plans == nullptr || !plans->is_array()) return out;
  for (const json::value& p : plans->get_array())
    if (p.is_object()) out.push_back(&p.get_object());
  return out;
}

// The node that reads the rows under wrappers that pass them through.
const json::object* Unwrap(const json::object* o) {
  for (int i = 0; o != nullptr && i < 8; ++i) {
    const std::string_view type = Str(*o, "Node Type");
    if (type != "Hash" && type != "Materialize" && type != "Sort" && type != "Memoize" &&
        type != "Gather")
      break;
    const auto kids = Children(*o);
    if (kids.size() != 1) break;
    o = kids[0];
  }
  return o;
}

bool IsSeqScan(const json::object& o) {
  return Str(o, "Node Type") == "Seq Scan" && !Str(o, "Relation Name").empty();
}

bool Analyzed(const json::object& o) { return Has(o, "Actual Rows"); }

// Rows a scan reads per loop: the actual figures with ANALYZE; else the estimate of the rows it
// returns without a filter, and with one a lower bound from its cost (the planner charges at
// most ~0.05 per row read with the default costs for rows up to a few hundred bytes).
double RowsRead(const json::object& o) {
  if (Analyzed(o)) return Num(o, "Actual Rows") + Num(o, "Rows Removed by Filter");
  if (!Has(o, "Filter")) return Num(o, "Plan Rows");
  return std::max(Num(o, "Plan Rows"), Num(o, "Total Cost") * 20);
}
double RowsKept(const json::object& o) {
  return Analyzed(o) ? Num(o, "Actual Rows") : Num(o, "Plan Rows");
}
double Loops(const json::object& o) { return std::max(1.0, Num(o, "Actual Loops", 1)); }

std::string Quoted(std::string_view name) {
  bool plain =
      !name.empty() && (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name)
    plain = plain && (std::islower(static_cast<unsigned char>(c)) ||
                      std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '$');
  if (plain) return std::string(name);
  std::string q = "\"";
  for (char c : name) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + '"';
}

std::string TableOf(const json::object& scan) {
  const std::string_view schema = Str(scan, "Schema");
  std::string t = schema.empty() ? "" : Quoted(schema) + ".";
  return t + Quoted(Str(scan, "Relation Name"));
}

std::string_view AliasOf(const json::object& scan) {
  const std::string_view a = Str(scan, "Alias");
  return a.empty() ? Str(scan, "Relation Name") : a;
}

std::string Count(double v) { return Format("%.0f", v); }

class Walker {
 public:
  explicit Walker(PlanAdvice* out) : out_(out) {}

  void Walk(const json::object& node, const json::object* parent, int depth) {
    if (depth > 100) return;
    const std::string_view type = Str(node, "Node Type");
    if (IsSeqScan(node)) Scan(node);
    if (type == "Nested Loop" || type == "Hash Join" || type == "Merge Join") Join(node);
    if (type == "Sort" && parent != nullptr && Str(*parent, "Node Type") == "Limit") Sort(node);
    for (const json::object* c : Children(node)) Walk(*c, &node, depth + 1);
  }

 private:
  IndexAdvice& For(const json::object& scan) {
    const std::string table = TableOf(scan);
    for (IndexAdvice& a : out_->indexes)
      if (a.table == table) return a;
    out_->indexes.push_back(IndexAdvice{table, {}, {}});
    return out_->indexes.back();
  }
  void Add(IndexAdvice& a, const std::vector<std::string>& columns, const std::string& reason) {
    if (columns.empty()) return;
    for (const std::string& c : columns) AddUnique(a.columns, c);
    if (!a.reason.empty()) a.reason += "; ";
    a.reason += reason;
  }
  // The equality columns of a scan's own filter (they lead any index on its table).
  static ConditionColumns FilterColumns(const json::object& scan) {
    return ColumnsOf(Str(scan, "Filter"), {});
  }
  static bool Selective(const json::object& scan) {
    const double read = RowsRead(scan) * Loops(scan);
    return Has(scan, "Filter") && read >= kMinRowsRead &&
           RowsKept(scan) * Loops(scan) <= 0.1 * read;
  }

  void Scan(const json::object& scan) {
    if (!Selective(scan)) return;
    const ConditionColumns f = FilterColumns(scan);
    if (f.has_or) return;
    std::vector<std::string> cols = f.equality;
    if (!f.range.empty()) cols.push_back(f.range.front());
    Add(For(scan), cols,
        Format("Seq Scan on %s reads ~%s rows to keep ~%s (Filter: %s)", TableOf(scan).c_str(),
               Count(RowsRead(scan) * Loops(scan)).c_str(),
               Count(RowsKept(scan) * Loops(scan)).c_str(),
               std::string(Str(scan, "Filter")).c_str()));
  }

  void Join(const json::object& join) {
    std::string_view cond;
    const char* label = nullptr;
    for (const char* k : {"Hash Cond", "Merge Cond", "Join Filter"}) {
      if (!(cond = Str(join, k)).empty()) {
        label = k;
        break;
      }
    }
    const auto kids = Children(join);
    if (label == nullptr || kids.size() != 2) return;
    for (int side = 0; side < 2; ++side) {
      const json::object* s = Unwrap(kids[static_cast<size_t>(side)]);
      const json::object* other = kids[static_cast<size_t>(1 - side)];
      if (s == nullptr || !IsSeqScan(*s)) continue;
      const double read = RowsRead(*s);  // per loop: the table (or what its filter reads)
      const double few =
          Analyzed(*other) ? Num(*other, "Actual Rows") * Loops(*other) : Num(*other, "Plan Rows");
      if (read < kMinRowsRead || few * 100 > read) continue;
      const ConditionColumns j = ColumnsOf(cond, AliasOf(*s));
      const ConditionColumns f = FilterColumns(*s);
      if (j.has_or || j.equality.empty()) continue;
      std::vector<std::string> cols = f.has_or ? std::vector<std::string>{} : f.equality;
      for (const std::string& c : j.equality) AddUnique(cols, c);
      Add(For(*s), cols,
          Format("%s reads ~%s rows of %s for ~%s rows of the other side (%s: %s)",
                 std::string(Str(join, "Node Type")).c_str(), Count(read).c_str(),
                 TableOf(*s).c_str(), Count(few).c_str(), label, std::string(cond).c_str()));
    }
  }

  void Sort(const json::object& sort) {
    const auto kids = Children(sort);
    if (kids.size() != 1 || !IsSeqScan(*kids[0])) return;
    const json::object& scan = *kids[0];
    if (RowsRead(scan) * Loops(scan) < kMinRowsRead) return;
    const json::value* keys = sort.if_contains("Sort Key");
    if (keys == nullptr || !keys->is_array()) return;
    std::vector<std::string> sort_cols;
    std::string directions;
    for (const json::value& k : keys->get_array()) {
      if (!k.is_string()) return;
      const json::string& text = k.get_string();
      std::vector<SqlToken> t;
      SqlLexer lexer(std::string_view(text.data(), text.size()));
      for (SqlToken tok; lexer.Next(&tok) && t.size() < 64;) t.push_back(tok);
      Ref r;
      if (!RefAt(t, 0, &r) || !Wanted(r, AliasOf(scan))) return;  // an expression: no advice
      const bool desc = r.end < t.size() && t[r.end].word("desc");
      sort_cols.push_back(std::string(r.name) + (desc ? " DESC" : ""));
      directions += desc ? 'd' : 'a';
    }
    if (sort_cols.empty()) return;
    // One direction for every key: a B-tree reads either way, so the plain columns do.
    if (directions.find('a') == std::string::npos || directions.find('d') == std::string::npos)
      for (std::string& c : sort_cols)
        if (c.ends_with(" DESC")) c.resize(c.size() - 5);
    const ConditionColumns f = FilterColumns(scan);
    if (f.has_or) return;
    std::vector<std::string> cols = f.equality;
    for (const std::string& c : sort_cols) AddUnique(cols, c);
    if (!f.range.empty()) AddUnique(cols, f.range.front());
    Add(For(scan), cols,
        Format("Sort under a Limit reads ~%s rows of %s to return the first ones (Sort Key: %s)",
               Count(RowsRead(scan) * Loops(scan)).c_str(), TableOf(scan).c_str(),
               json::serialize(*keys).c_str()));
  }

  PlanAdvice* out_;
};

}  // namespace

std::string IndexAdvice::Statement() const {
  std::string s = "CREATE INDEX CONCURRENTLY ON " + table + " (";
  for (size_t i = 0; i < columns.size(); ++i) s += (i ? ", " : "") + columns[i];
  return s + ");";
}

bool AdviseIndexes(std::string_view plan_json, PlanAdvice* out, std::string* error) {
  *out = PlanAdvice{};
  json::parse_options opt;
  opt.max_depth = 512;
  std::error_code ec;
  json::value v = json::parse(json::string_view(plan_json.data(), plan_json.size()), ec,
                              json::storage_ptr(), opt);
  if (ec) {
    *error = "the plan is not JSON: " + ec.message();
    return false;
  }
  // EXPLAIN (FORMAT JSON): [ { "Plan": { ... }, ... } ]
  const json::value* top = v.is_array() && !v.get_array().empty() ? &v.get_array()[0] : &v;
  const json::value* plan = top->is_object() ? top->get_object().if_contains("Plan") : nullptr;
  if (plan == nullptr || !plan->is_object()) {
    *error = "not an EXPLAIN (FORMAT JSON) document: no \"Plan\" object";
    return false;
  }
  out->total_cost = Num(plan->get_object(), "Total Cost");
  Walker(out).Walk(plan->get_object(), nullptr, 0);
  std::erase_if(out->indexes, [](const IndexAdvice& a) { return a.columns.empty(); });
  return true;
}

}  // namespace ficus::pg::internal
