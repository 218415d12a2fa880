// Index advice from EXPLAIN (FORMAT JSON): the plans are PostgreSQL 15's own output (trimmed of
// fields the advice does not read) for a 100,000-row `orders` and a 5,000-row `customers`.
#include "pg/internal/plan_advice.h"

#include <gtest/gtest.h>

namespace ficus::pg::internal {
namespace {

using Cols = std::vector<std::string>;

PlanAdvice Advise(const std::string& json) {
  PlanAdvice a;
  std::string error;
  EXPECT_TRUE(AdviseIndexes(json, &a, &error)) << error;
  return a;
}

std::string Scan(const std::string& table, const std::string& alias, double cost, double rows,
                 const std::string& filter, const std::string& extra = "") {
  std::string s = R"j({"Node Type": "Seq Scan", "Relation Name": ")j" + table +
                  R"j(", "Alias": ")j" + alias + R"j(", "Startup Cost": 0.00, "Total Cost": )j" +
                  std::to_string(cost) + R"j(, "Plan Rows": )j" + std::to_string(rows);
  if (!filter.empty()) s += R"j(, "Filter": ")j" + filter + "\"";
  return s + extra + "}";
}

std::string Top(const std::string& node) { return R"j([{"Plan": )j" + node + "}]"; }

TEST(PgPlanAdvice, FilteredScanGetsEqualityThenRangeColumns) {
  const PlanAdvice a =
      Advise(Top(Scan("orders", "orders", 2236, 1,
                      "((customer_id = 42) AND (created_at > (now() - '1 day'::interval)))")));
  ASSERT_EQ(a.indexes.size(), 1u);
  EXPECT_EQ(a.indexes[0].table, "orders");
  EXPECT_EQ(a.indexes[0].columns, (Cols{"customer_id", "created_at"}));
  EXPECT_EQ(a.indexes[0].Statement(),
            "CREATE INDEX CONCURRENTLY ON orders (customer_id, created_at);");
  EXPECT_NE(a.indexes[0].reason.find("Seq Scan on orders"), std::string::npos);
  EXPECT_DOUBLE_EQ(a.total_cost, 2236);
}

TEST(PgPlanAdvice, AnalyzedScanUsesTheActualRowsRemoved) {
  const std::string extra =
      R"j(, "Actual Rows": 20, "Actual Loops": 1, "Rows Removed by Filter": 99980)j";
  PlanAdvice a = Advise(Top(Scan("orders", "orders", 1986, 20, "(customer_id = 42)", extra)));
  ASSERT_EQ(a.indexes.size(), 1u);
  EXPECT_EQ(a.indexes[0].columns, (Cols{"customer_id"}));
  EXPECT_NE(a.indexes[0].reason.find("reads ~100000 rows to keep ~20"), std::string::npos)
      << a.indexes[0].reason;
  // Most rows kept: an index would not help.
  const std::string most =
      R"j(, "Actual Rows": 90000, "Actual Loops": 1, "Rows Removed by Filter": 10000)j";
  EXPECT_TRUE(
      Advise(Top(Scan("orders", "orders", 1986, 90000, "(total > 5)", most))).indexes.empty());
}

TEST(PgPlanAdvice, SmallOrUnselectiveScansGetNothing) {
  // A small table: reading it is cheaper than an index.
  EXPECT_TRUE(Advise(Top(Scan("flags", "flags", 1.1, 1, "(name = 'x'::text)"))).indexes.empty());
  // Half the rows kept.
  EXPECT_TRUE(Advise(Top(Scan("orders", "orders", 1986, 50000, "(total > 5)"))).indexes.empty());
  // No filter.
  EXPECT_TRUE(Advise(Top(Scan("orders", "orders", 1736, 100000, ""))).indexes.empty());
  // OR: no one index; an expression: an expression index is the user's call.
  EXPECT_TRUE(Advise(Top(Scan("customers", "customers", 102, 2,
                              "(((name)::text = 'c1'::text) OR (id = 4))")))
                  .indexes.empty());
  EXPECT_TRUE(Advise(Top(Scan("customers", "customers", 102, 2, "(lower(name) = 'c1'::text)")))
                  .indexes.empty());
}

TEST(PgPlanAdvice, SortUnderALimitFollowsTheEqualities) {
  const std::string plan = Top(
      R"j({"Node Type": "Limit", "Total Cost": 2236.02, "Plan Rows": 2, "Plans": [{"Node Type": "Sort", "Sort Key": ["created_at DESC"], "Plans": [)j" +
      Scan("orders", "orders", 2236, 2, "((status = 'open'::text) AND (customer_id = 7))") +
      "]}]}");
  const PlanAdvice a = Advise(plan);
  ASSERT_EQ(a.indexes.size(), 1u);
  EXPECT_EQ(a.indexes[0].columns, (Cols{"status", "customer_id", "created_at"}));
  // Without a filter: the sort key alone. Mixed directions keep DESC.
  const PlanAdvice b = Advise(Top(
      R"j({"Node Type": "Limit", "Plans": [{"Node Type": "Sort", "Sort Key": ["customer_id", "created_at DESC"], "Plans": [)j" +
      Scan("orders", "orders", 1736, 100000, "") + "]}]}"));
  ASSERT_EQ(b.indexes.size(), 1u);
  EXPECT_EQ(b.indexes[0].columns, (Cols{"customer_id", "created_at DESC"}));
  // A sort on an expression: nothing.
  EXPECT_TRUE(
      Advise(
          Top(R"j({"Node Type": "Limit", "Plans": [{"Node Type": "Sort", "Sort Key": ["(total * 2)"], "Plans": [)j" +
              Scan("orders", "orders", 1736, 100000, "") + "]}]}"))
          .indexes.empty());
}

TEST(PgPlanAdvice, JoinToABigTableFromFewRowsIndexesItsJoinColumn) {
  const std::string plan = Top(
      R"j({"Node Type": "Hash Join", "Total Cost": 2088.24, "Plan Rows": 20, "Hash Cond": "(o.customer_id = c.id)", "Plans": [)j" +
      Scan("orders", "o", 1736, 100000, "") +
      R"j(, {"Node Type": "Hash", "Plan Rows": 1, "Plans": [)j" +
      Scan("customers", "c", 89.5, 1, "((name)::text = 'c42'::text)") + "]}]}");
  const PlanAdvice a = Advise(plan);
  ASSERT_EQ(a.indexes.size(), 2u);
  EXPECT_EQ(a.indexes[0].table, "orders");
  EXPECT_EQ(a.indexes[0].columns, (Cols{"customer_id"}));
  EXPECT_NE(a.indexes[0].reason.find("Hash Cond"), std::string::npos);
  EXPECT_EQ(a.indexes[1].table, "customers");
  EXPECT_EQ(a.indexes[1].columns, (Cols{"name"}));
  // Both sides big: a hash join is the right plan.
  const std::string big =
      Top(R"j({"Node Type": "Hash Join", "Hash Cond": "(o.customer_id = c.id)", "Plans": [)j" +
          Scan("orders", "o", 1736, 100000, "") +
          R"j(, {"Node Type": "Hash", "Plan Rows": 5000, "Plans": [)j" +
          Scan("customers", "c", 77, 5000, "") + "]}]}");
  EXPECT_TRUE(Advise(big).indexes.empty());
}

TEST(PgPlanAdvice, NamesAreQuotedAndSchemaQualified) {
  const PlanAdvice a = Advise(Top(
      R"j({"Node Type": "Seq Scan", "Relation Name": "Order Lines", "Schema": "shop", "Alias": "l", "Total Cost": 5000, "Plan Rows": 3, "Filter": "(\"OrderId\" = 5)"})j"));
  ASSERT_EQ(a.indexes.size(), 1u);
  EXPECT_EQ(a.indexes[0].Statement(),
            "CREATE INDEX CONCURRENTLY ON shop.\"Order Lines\" (\"OrderId\");");
}

TEST(PgPlanAdvice, NotAPlan) {
  PlanAdvice a;
  std::string error;
  EXPECT_FALSE(AdviseIndexes("QUERY PLAN", &a, &error));
  EXPECT_NE(error.find("not JSON"), std::string::npos);
  EXPECT_FALSE(AdviseIndexes(R"j([{"Planning Time": 1}])j", &a, &error));
  EXPECT_NE(error.find("\"Plan\""), std::string::npos);
  EXPECT_TRUE(AdviseIndexes(R"j({"Plan": {"Node Type": "Result"}})j", &a, &error));
  EXPECT_TRUE(a.indexes.empty());
}

TEST(PgPlanAdvice, ConditionColumns) {
  ConditionColumns c = ColumnsOf("((a = 1) AND (b >= 2) AND (c <> 3) AND (d IS NULL))", "");
  EXPECT_EQ(c.equality, (Cols{"a", "d"}));
  EXPECT_EQ(c.range, (Cols{"b"}));
  c = ColumnsOf("((x.a = y.b) AND (x.c = ANY ('{1,2}'::integer[])))", "x");
  EXPECT_EQ(c.equality, (Cols{"a", "c"}));
  c = ColumnsOf("((x.a = y.b))", "y");
  EXPECT_EQ(c.equality, (Cols{"b"}));
  c = ColumnsOf("((status)::text = 'or'::text)", "");  // 'or' in a string is no OR
  EXPECT_FALSE(c.has_or);
  EXPECT_EQ(c.equality, (Cols{"status"}));
  c = ColumnsOf("((a > 1) AND (a = 2))", "");
  EXPECT_EQ(c.equality, (Cols{"a"}));
  EXPECT_TRUE(c.range.empty());
  EXPECT_TRUE(ColumnsOf("((a = 1) OR (b = 2))", "").has_or);
  EXPECT_TRUE(ColumnsOf("(upper(a) = 'X'::text)", "").equality.empty());
}

}  // namespace
}  // namespace ficus::pg::internal
