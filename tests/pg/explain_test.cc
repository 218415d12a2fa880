// EXPLAIN on demand: what is sampled (bounded, renewed every 10 s, a Parse's first Bind), and the
// messages that run it (read-only transaction, statement timeout, EXPLAIN, ROLLBACK; refusals).
#include "pg/internal/explain.h"

#include <gtest/gtest.h>

namespace ficus::pg::internal {
namespace {

std::string ParseBody(std::string_view name, std::string_view query) {
  std::string b(name);
  b += '\0';
  b += query;
  b += '\0';
  AppendInt16(b, 1);
  AppendInt32(b, 23);  // int4
  return b;
}

std::string BindBody(std::string_view value, uint16_t result_formats) {
  std::string b("p1\0s1\0", 6);
  AppendInt16(b, 0);  // parameters in text
  AppendInt16(b, 1);
  AppendInt32(b, static_cast<uint32_t>(value.size()));
  b += value;
  AppendInt16(b, result_formats);
  for (uint16_t i = 0; i < result_formats; ++i) AppendInt16(b, 1);
  return b;
}

TEST(ExplainTest, SamplesAreBoundedAndRenewed) {
  Explainer e(2);
  const std::string db = "shop", user = "app";
  e.OnQuery(0, 7, "SELECT 1 WHERE 1 = 5", db, user, 1000);
  e.OnQuery(0, 7, "SELECT 1 WHERE 1 = 6", db, user, 5000);  // fresh: kept
  ParamSample s;
  ASSERT_TRUE(e.Find(7, &s));
  EXPECT_EQ(s.sql, "SELECT 1 WHERE 1 = 5");
  EXPECT_EQ(s.database, "shop");
  e.OnQuery(1, 7, "SELECT 1 WHERE 1 = 8", db, user, 1000 + Explainer::kRefreshMs);
  ASSERT_TRUE(e.Find(7, &s));
  EXPECT_EQ(s.sql, "SELECT 1 WHERE 1 = 8");  // the newest of any worker
  e.OnQuery(0, 8, std::string(Explainer::kMaxBytes + 1, 'x'), db, user, 1000);
  EXPECT_FALSE(e.Find(8, &s));
  for (uint64_t fp = 100; fp < 100 + Explainer::kMaxSamples + 10; ++fp)
    e.OnQuery(0, fp, "SELECT 2", db, user, 1000);
  EXPECT_TRUE(e.Find(100, &s));
  EXPECT_FALSE(e.Find(100 + Explainer::kMaxSamples + 5, &s));
}

TEST(ExplainTest, ExtendedProtocolRunsWithTheBindValues) {
  Explainer e(1);
  const std::string db = "shop", user = "app";
  e.OnParse(0, 9, ParseBody("s1", "SELECT name FROM items WHERE id > $1"), db, user, 1000);
  ParamSample s;
  EXPECT_FALSE(e.Find(9, &s));  // no Bind yet
  e.OnBind(0, 9, BindBody("77", 3));
  e.OnBind(0, 9, BindBody("78", 3));  // the Parse's first Bind is the sample
  ASSERT_TRUE(e.Find(9, &s));
  std::string error;
  const std::string m = ExplainMessages(s, false, &error);
  ASSERT_FALSE(m.empty()) << error;
  EXPECT_NE(m.find("BEGIN READ ONLY; SET LOCAL statement_timeout = 10000"), std::string::npos);
  EXPECT_NE(m.find(std::string("EXPLAIN SELECT name FROM items WHERE id > $1\0", 45)),
            std::string::npos);
  EXPECT_NE(m.find("77"), std::string::npos);
  EXPECT_EQ(m.find("78"), std::string::npos);
  EXPECT_NE(m.find("ROLLBACK"), std::string::npos);
  // The Bind asks no binary result (the EXPLAIN has one text column): parameters, then 0.
  std::string bind("\0\0", 2);
  AppendInt16(bind, 0);
  AppendInt16(bind, 1);
  AppendInt32(bind, 2);
  bind += "77";
  AppendInt16(bind, 0);
  std::string want;
  AppendMessage(want, 'B', bind);
  EXPECT_NE(m.find(want), std::string::npos);
}

TEST(ExplainTest, Refusals) {
  std::string error;
  ParamSample s;
  s.sql = "UPDATE items SET name = 'a' WHERE id = 1";
  EXPECT_FALSE(ExplainMessages(s, false, &error).empty());
  EXPECT_TRUE(ExplainMessages(s, true, &error).empty());
  EXPECT_NE(error.find("only a SELECT"), std::string::npos) << error;
  s.sql = "SELECT 1; DELETE FROM items";
  EXPECT_TRUE(ExplainMessages(s, false, &error).empty());
  EXPECT_NE(error.find("several statements"), std::string::npos) << error;
  s.sql = "SELECT 1;";
  EXPECT_NE(ExplainMessages(s, true, &error).find("EXPLAIN (ANALYZE, BUFFERS) SELECT 1;"),
            std::string::npos);
}

}  // namespace
}  // namespace ficus::pg::internal
