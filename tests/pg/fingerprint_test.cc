// Query fingerprints, the sqlcommenter trace id, and the statements that set session state.
#include <gtest/gtest.h>

#include "pg/pg.h"

namespace ficus::pg {
namespace {

TEST(PgFingerprint, LiteralsAndParametersBecomePlaceholders) {
  EXPECT_EQ(Normalize("SELECT * FROM users WHERE id = 42"), "select * from users where id = ?");
  EXPECT_EQ(Normalize("select *\n  from USERS where id=$1"), "select * from users where id=?");
  EXPECT_EQ(Normalize("SELECT 'it''s', E'a\\'b', $$x$$, $tag$y$tag$, 1.5e-3, -7"),
            "select ?, ?, ?, ?, ?, ?");
  EXPECT_EQ(Normalize("SELECT \"Name\" FROM t -- comment\n WHERE a = 'x' /* c /* nested */ */"),
            "select \"Name\" from t where a = ?");
  EXPECT_EQ(Normalize("SELECT t1.c2 FROM t1"), "select t1.c2 from t1");
  EXPECT_EQ(Fingerprint(Normalize("SELECT 1")), Fingerprint(Normalize("select   2;")));
  EXPECT_NE(Fingerprint(Normalize("SELECT a FROM t")), Fingerprint(Normalize("SELECT b FROM t")));
}

TEST(PgFingerprint, InListsCollapse) {
  EXPECT_EQ(Normalize("SELECT * FROM t WHERE id IN (1, 2, 3)"), "select * from t where id in (?)");
  EXPECT_EQ(Normalize("SELECT * FROM t WHERE id IN ($1,$2)"),
            Normalize("select * from t where id in (7)"));
}

TEST(PgFingerprint, TraceIdOfASqlcommenterComment) {
  const char* sql =
      "SELECT * FROM orders "
      "/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/";
  EXPECT_EQ(TraceIdOf(sql), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(TraceIdOf("/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',"
                      "route='%2Fapi'*/ SELECT 1"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(
      TraceIdOf("/*traceparent=%2700-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01%27*/"),
      "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(TraceIdOf("SELECT 1"), "");
  EXPECT_EQ(TraceIdOf("/*traceparent='00-00000000000000000000000000000000-00f067aa0ba902b7-01'*/"),
            "");
  EXPECT_EQ(TraceIdOf("/*traceparent='00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'*/"),
            "");
  EXPECT_EQ(TraceIdOf("/*traceparent='00-4bf9'*/"), "");
  // The comment never changes the fingerprint.
  EXPECT_EQ(Normalize(sql), "select * from orders");
}

TEST(PgFingerprint, SessionState) {
  EXPECT_STREQ(SessionStateOf("SET search_path = app"), "set");
  EXPECT_STREQ(SessionStateOf("set statement_timeout to 5"), "set");
  EXPECT_EQ(SessionStateOf("SET LOCAL statement_timeout = 5"), nullptr);
  EXPECT_EQ(SessionStateOf("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE"), nullptr);
  EXPECT_STREQ(SessionStateOf("SET ROLE reporting"), "set_role");
  EXPECT_STREQ(SessionStateOf("RESET ALL"), "set");
  EXPECT_STREQ(SessionStateOf("LISTEN jobs"), "listen");
  EXPECT_STREQ(SessionStateOf("SELECT pg_advisory_lock(1)"), "advisory_lock");
  EXPECT_EQ(SessionStateOf("SELECT pg_advisory_xact_lock(1)"), nullptr);
  EXPECT_STREQ(SessionStateOf("CREATE TEMP TABLE x (a int)"), "temp_table");
  EXPECT_STREQ(SessionStateOf("create temporary table x (a int)"), "temp_table");
  EXPECT_STREQ(SessionStateOf("DECLARE c CURSOR WITH HOLD FOR SELECT 1"), "cursor_with_hold");
  EXPECT_STREQ(SessionStateOf("PREPARE p AS SELECT 1"), "prepare");
  EXPECT_STREQ(SessionStateOf("SELECT set_config('search_path', 'x', false)"), "set");
  EXPECT_EQ(SessionStateOf("SELECT set_config('search_path', 'x', true)"), nullptr);
  EXPECT_STREQ(SessionStateOf("BEGIN; SELECT 1; SET search_path = x; COMMIT"), "set");
  EXPECT_EQ(SessionStateOf("SELECT 'SET x = 1'"), nullptr);
  EXPECT_EQ(SessionStateOf("UPDATE t SET a = 1"), nullptr);
}

}  // namespace
}  // namespace ficus::pg
