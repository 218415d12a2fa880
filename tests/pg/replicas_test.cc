// The read/write split's decisions: which statements and batches are provably read-only, WAL
// positions, and a replica's replay position against the primary's history (lag and the
// read-your-writes time).
#include "pg/internal/replicas.h"

#include <gtest/gtest.h>

namespace ficus::pg::internal {
namespace {

Access Of(std::string_view sql) {
  AccessClassifier c;
  c.AddSql(sql);
  return c.Result();
}

TEST(PgReadOnly, PlainReadsGoToReplicas) {
  EXPECT_EQ(Of("SELECT * FROM items WHERE id = $1"), Access::kRead);
  EXPECT_EQ(Of("select count(*), max(id) from items"), Access::kRead);
  EXPECT_EQ(Of("SELECT name FROM items ORDER BY lower(name) LIMIT 10 OFFSET 5"), Access::kRead);
  EXPECT_EQ(Of("WITH t AS (SELECT 1 AS x) SELECT x FROM t"), Access::kRead);
  EXPECT_EQ(Of("WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t WHERE n < 5) "
               "SELECT sum(n) FROM t"),
            Access::kRead);
  EXPECT_EQ(Of("SELECT id FROM a JOIN b USING (id) WHERE a.x IN (1, 2) AND EXISTS (SELECT 1)"),
            Access::kRead);
  EXPECT_EQ(Of("SELECT x::numeric(10, 2), CAST(y AS varchar(3)) FROM t"), Access::kRead);
  EXPECT_EQ(Of("SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY y) FROM t"), Access::kRead);
  EXPECT_EQ(Of("SELECT g FROM generate_series(1, 3) AS g(x)"), Access::kRead);
  EXPECT_EQ(Of("SELECT pg_catalog.pg_is_in_recovery(), inet_server_port()"), Access::kRead);
  EXPECT_EQ(Of("SHOW search_path"), Access::kRead);
  EXPECT_EQ(Of("VALUES (1), (2)"), Access::kRead);
  EXPECT_EQ(Of("TABLE items"), Access::kRead);
  EXPECT_EQ(Of("(SELECT 1) UNION (SELECT 2)"), Access::kRead);
  EXPECT_EQ(Of("EXPLAIN ANALYZE SELECT * FROM items"), Access::kRead);
  EXPECT_EQ(Of("SELECT 1; SELECT 2;"), Access::kRead);
  EXPECT_EQ(Of("BEGIN; SELECT 1; COMMIT"), Access::kRead);
  // Words in strings, quoted identifiers and comments are not keywords.
  EXPECT_EQ(Of("SELECT 'insert into x', $$update$$, \"delete\" FROM t -- for update\n"),
            Access::kRead);
  EXPECT_EQ(Of("SELECT 1 /* nextval('s') /* nested */ */"), Access::kRead);
}

TEST(PgReadOnly, WritesLocksAndUnknownFunctionsGoToThePrimary) {
  for (const char* sql : {
           "INSERT INTO items VALUES (1)",
           "UPDATE items SET name = 'x'",
           "DELETE FROM items",
           "SELECT * FROM items FOR UPDATE",
           "SELECT * FROM items FOR NO KEY UPDATE",
           "SELECT * FROM items FOR SHARE",
           "SELECT * FROM items FOR KEY SHARE SKIP LOCKED",
           "SELECT * INTO copy FROM items",
           "WITH d AS (DELETE FROM items RETURNING *) SELECT * FROM d",
           "SELECT nextval('seq')",
           "SELECT pg_advisory_xact_lock(1)",
           "SELECT my_function(1)",
           "SELECT public.lower(name) FROM items",
           "SELECT \"MyFunction\"(1)",
           "SELECT * FROM my_function(1) AS t",
           "SELECT txid_current()",
           "SELECT set_config('a.b', 'c', false)",
           "SET search_path = x",
           "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
           "COPY items TO STDOUT",
           "CREATE TEMP TABLE t (x int)",
           "LISTEN ch",
           "VACUUM",
           "CALL p()",
           "DO $$ BEGIN END $$",
           "PREPARE p AS SELECT 1",
           "SELECT 1; INSERT INTO t VALUES (1)",
           "BEGIN",
           "BEGIN; SELECT 1",
           "BEGIN READ WRITE",
           "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
           "COMMIT PREPARED 'x'",
           "",
       }) {
    if (*sql == '\0') continue;
    EXPECT_EQ(Of(sql), Access::kWrite) << sql;
  }
}

TEST(PgReadOnly, ReadOnlyTransactionsGoToReplicasWhatTheyContain) {
  EXPECT_EQ(Of("BEGIN READ ONLY"), Access::kReadOnlyTransaction);
  EXPECT_EQ(Of("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"), Access::kReadOnlyTransaction);
  EXPECT_EQ(Of("START TRANSACTION READ ONLY, DEFERRABLE"), Access::kReadOnlyTransaction);
  EXPECT_EQ(Of("BEGIN; SET TRANSACTION READ ONLY"), Access::kReadOnlyTransaction);
  // The server refuses a write in a READ ONLY transaction, on a replica as on the primary.
  EXPECT_EQ(Of("BEGIN READ ONLY; SELECT my_function()"), Access::kReadOnlyTransaction);
  EXPECT_EQ(Of("BEGIN READ ONLY; SELECT 1; COMMIT"), Access::kRead);
  EXPECT_EQ(Of("BEGIN READ ONLY; COMMIT; INSERT INTO t VALUES (1)"), Access::kWrite);
  EXPECT_EQ(Of("BEGIN READ ONLY; SELECT 1; COMMIT AND CHAIN"), Access::kReadOnlyTransaction);
  EXPECT_EQ(Of("INSERT INTO t VALUES (1); BEGIN READ ONLY"), Access::kWrite);
  EXPECT_EQ(KindOfOne("begin read only"), StatementKind::kBeginReadOnly);
  EXPECT_EQ(KindOfOne("ROLLBACK TO SAVEPOINT a"), StatementKind::kNeutral);
  EXPECT_EQ(KindOfOne("SELECT 1; SELECT 2"), StatementKind::kWrite);  // a Parse: one statement
}

TEST(PgReadOnly, ExtendedProtocolBatchesStatementByStatement) {
  AccessClassifier c;
  c.Add(StatementKind::kBegin);
  c.Add(StatementKind::kRead);
  EXPECT_EQ(c.Result(), Access::kWrite);  // a read-write transaction left open
  c.Add(StatementKind::kEnd);
  EXPECT_EQ(c.Result(), Access::kRead);
  AccessClassifier d;
  d.Add(StatementKind::kBegin);
  d.Add(StatementKind::kSetReadOnly);
  EXPECT_EQ(d.Result(), Access::kReadOnlyTransaction);
}

TEST(PgReplicas, WalPositions) {
  uint64_t lsn = 0;
  ASSERT_TRUE(ParseLsn("0/3000148", &lsn));
  EXPECT_EQ(lsn, 0x3000148u);
  ASSERT_TRUE(ParseLsn("1A/FF", &lsn));
  EXPECT_EQ(lsn, (uint64_t{0x1A} << 32) | 0xFF);
  EXPECT_FALSE(ParseLsn("3000148", &lsn));
  EXPECT_FALSE(ParseLsn("0/", &lsn));
  EXPECT_FALSE(ParseLsn("0/12x", &lsn));
  // A page header's bytes count as the page's start; anything past them is itself.
  EXPECT_EQ(NormalizeLsn(0x3002018), 0x3002000u);
  EXPECT_EQ(NormalizeLsn(0x3000028), 0x3000000u);
  EXPECT_EQ(NormalizeLsn(0x3002000), 0x3002000u);
  EXPECT_EQ(NormalizeLsn(0x3002030), 0x3002030u);
}

TEST(PgReplicas, ReplayPositionAgainstThePrimarysHistory) {
  std::deque<LsnSample> h;
  EXPECT_EQ(ReplayPosition(h, 100, 1000).lag_ms, -1);  // nothing to compare with yet
  h.push_back({1000, 3000, 100});                      // position 100 seen from t=1000 to t=3000
  h.push_back({4000, 4000, 200});
  h.push_back({5000, 6000, 300});
  // Caught up with the newest position: no lag, every commit before t=6000 is there.
  ReplayState s = ReplayPosition(h, 300, 6100);
  EXPECT_EQ(s.lag_ms, 0);
  EXPECT_EQ(s.caught_up_ms, 6000);
  // Halfway from 100 (last seen at 3000) to 200 (first seen at 4000): data as of t=3500.
  s = ReplayPosition(h, 150, 6100);
  EXPECT_EQ(s.lag_ms, 2600);
  EXPECT_EQ(s.caught_up_ms, 3000);  // read-your-writes: only commits before 3000 are certain
  s = ReplayPosition(h, 200, 6100);
  EXPECT_EQ(s.caught_up_ms, 4000);
  EXPECT_EQ(s.lag_ms, 2100);
  // Older than anything remembered: at least as old as the history.
  s = ReplayPosition(h, 50, 6100);
  EXPECT_EQ(s.caught_up_ms, 0);
  EXPECT_EQ(s.lag_ms, 5100);
}

}  // namespace
}  // namespace ficus::pg::internal
