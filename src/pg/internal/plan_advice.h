// Index advice from a query plan: reads the JSON of `EXPLAIN (FORMAT JSON)` (with or without
// ANALYZE) and names the table and the columns of each index the plan lacks, in the order an
// index must have them (equality columns, then the sort key, then one range column: a B-tree
// serves a prefix of equalities, then either an order or a range).
//
// What is flagged (each an index the executor could have used instead of reading the table):
//  - a Seq Scan with a Filter that reads many rows to keep few: at least kMinRowsRead rows
//    read and at most a tenth of them kept. With ANALYZE the actual counts (rows, rows removed
//    by the filter, loops); without, the estimated rows kept against a lower bound of the rows
//    read from the scan's cost (the planner charges at most ~0.05 per row read for rows up to
//    a few hundred bytes with the default costs: rows read >= 20 x cost, ~0.017 per row on a
//    100,000-row table of 29-byte rows);
//  - a side of a join (Nested Loop's Join Filter, Hash Cond, Merge Cond) that is a Seq Scan
//    reading at least kMinRowsRead rows for at most a hundredth as many rows on the other side:
//    the join column of that table (after the scan's own equality columns), so each of the few
//    rows becomes an index lookup;
//  - a Sort under a Limit directly over a Seq Scan reading at least kMinRowsRead rows: its keys
//    (plain columns of that table) follow the equalities, so the index returns rows in order.
// Columns come from the conditions' text through the SQL lexer: `col = ...`, `col = ANY (...)`,
// `col IS NULL` are equalities; `<`, `<=`, `>`, `>=`, BETWEEN's pair are ranges; casts
// (`(col)::text`) are looked through; a condition with OR at its top level, or on an expression
// (`lower(email) = ...`), gives no column (an expression index is the user's call).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ficus::pg::internal {

struct IndexAdvice {
  std::string table;                 // as the plan names it (schema.table when it has Schema)
  std::vector<std::string> columns;  // in index order; quoted when the plan quotes them
  std::string reason;  // "Seq Scan on orders reads ~120000 rows to keep ~3 (Filter: ...)"
  // CREATE INDEX CONCURRENTLY ON table (columns);
  std::string Statement() const;
};

struct PlanAdvice {
  std::vector<IndexAdvice> indexes;  // at most one per table, columns merged
  double total_cost = 0;             // the plan's top node
};

inline constexpr double kMinRowsRead = 1000;

// `plan_json`: the single text value EXPLAIN (FORMAT JSON) returns. False with `error` when it
// is not such a document (never throws; any JSON is safe to pass).
bool AdviseIndexes(std::string_view plan_json, PlanAdvice* out, std::string* error);

// The column names an index would use from one condition's text ("((a = 1) AND (b > 2))"),
// equalities and ranges apart; `alias`: only columns qualified with it or unqualified
// (empty: any). Exposed for tests and the fuzz target.
struct ConditionColumns {
  std::vector<std::string> equality, range;
  bool has_or = false;
};
ConditionColumns ColumnsOf(std::string_view condition, std::string_view alias);

}  // namespace ficus::pg::internal
