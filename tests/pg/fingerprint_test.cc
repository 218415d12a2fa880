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

// Fingerprints are stored in telemetry and compared across versions: these must never change.
// (Pinned from the normaliser before it moved onto the shared SQL lexer, internal/lexer.h.)
struct Pinned {
  const char* sql;
  const char* normalized;
  uint64_t fingerprint;
};
constexpr Pinned kPinned[] = {
    {"SELECT * FROM users WHERE id = 42", "select * from users where id = ?",
     0x42603570ed91be56ull},
    {"select *\n  from USERS where id=$1", "select * from users where id=?", 0xf084f9494432d4b8ull},
    {"SELECT 'it''s', E'a\\'b', $$x$$, $tag$y$tag$, 1.5e-3, -7", "select ?, ?, ?, ?, ?, ?",
     0x0e34861da4211e47ull},
    {"SELECT \"Name\" FROM t -- comment\n WHERE a = 'x' /* c /* nested */ */",
     "select \"Name\" from t where a = ?", 0x270f1e0b086e73d5ull},
    {"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
     "select abalance from pgbench_accounts where aid = ?", 0xb510c57e14cd55a1ull},
    {"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
     "update pgbench_accounts set abalance = abalance + ? where aid = ?", 0x85b84771d01e1a4bull},
    {"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 3, -4, "
     "CURRENT_TIMESTAMP);",
     "insert into pgbench_history (tid, bid, aid, delta, mtime) values (?, ?, ?, ?, "
     "current_timestamp)",
     0x87af081c39504a6cull},
    {"SELECT * FROM t WHERE id IN (1, 2, 3) AND x IN ($1,$2) AND y = ANY($3)",
     "select * from t where id in (?) and x in (?) and y = any(?)", 0x1d535351909443b9ull},
    {"SELECT a::int, b :: text, c::numeric(10,2) FROM t WHERE d = -1 AND e=-2 AND f - 3 > 0 AND "
     "g-4 < 1",
     "select a::int, b :: text, c::numeric(?) from t where d = ? and e=? and f - ? > ? and g-? < ?",
     0xfe555c6ad41565aaull},
    {"select x'1F', b'0101', n'nat', X'AB' from t", "select ?, ?, ?, ? from t",
     0xc954fbbd8668c505ull},
    {"SELECT $1abc, $ 1, $a, $a$ unterminated", "select ?abc, ? ?, ?a, ?", 0x1624685e16afd42aull},
    {"SELECT 1_000, 0x1F, .5, 5., 1e10, 2E+3 FROM t", "select ?, ?, ?, ?, ?, ? from t",
     0x53d9efc5909461e0ull},
    {"SELECT \"we\"\"ird\" FROM \"Tab le\" WHERE \"C\" = 'v'",
     "select \"we\"\"ird\" from \"Tab le\" where \"C\" = ?", 0x12ff5015038a7434ull},
    {"SELECT * FROM orders "
     "/*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
     "select * from orders", 0x57b03ad7a944b5e2ull},
    {"  BEGIN ; SELECT 1 ; COMMIT ;  ", "begin; select ?; commit", 0x7b593089301a88a0ull},
    {"WITH x AS (SELECT id FROM a WHERE v > 10) SELECT * FROM x JOIN b ON b.id = x.id ORDER BY 1 "
     "LIMIT 5",
     "with x as (select id from a where v > ?) select * from x join b on b.id = x.id order by ? "
     "limit ?",
     0x11949332081a6f84ull},
    {"select f( 1 , 2 ),g(  ) from t", "select f( ?, ?), g() from t", 0xb2f121ca0139ffe0ull},
    {"SELECT 'unterminated", "select ?", 0x9fec2d34eef38675ull},
    {"SELECT /* unterminated comment", "select", 0x78a565a3f1686800ull},
    {"SELECT e'\\\\' , E'x\\'' FROM t", "select ?, ? from t", 0x55e799547bd7e83bull},
    {"SELECT naïve, café FROM t WHERE ü = 'ß'", "select naïve, café from t where ü = ?",
     0xec9eb0ff6d0674e9ull},
    {"INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')", "insert into t values (?), (?), (?)",
     0xfab97917b5983418ull},
    {"SELECT a<>b, a!=b, a<=b, a>=b, a||b, a->>'k', a#>'{a}' FROM t",
     "select a<>b, a!=b, a<=b, a>=b, a||b, a->>?, a#>? from t", 0x7e4aacf180e2f72bull},
    {"DO $body$ BEGIN PERFORM 1; END $body$", "do ?", 0xec4469ed16f91b3full},
    {"select * from t where a in (?)", "select * from t where a in (?)", 0xdd400aba0bc619c4ull},
    {"SELECT\tcount(*)\r\nFROM\tt\fWHERE\vx=1", "select count(*) from t where x=?",
     0xf6eea5d021418e74ull},
    {"SELECT 1.5e-3-2, 3e, 4e-, -5.5 FROM t", "select ?-?, ?, ?, ? from t", 0xa1fb5b2c0d036aa8ull},
    {"SELECT ( -1 ), (-2), [-3], x*-4, x=-5, x,-6", "select ( ?), (?), [-?], x*-?, x=?, x, ?",
     0xfc391857c6d29718ull},
    {"SELECT E'\\'", "select ?", 0x9fec2d34eef38675ull},
    {"", "", 0xe36f5519ee926a53ull},
    {"   ", "", 0xe36f5519ee926a53ull},
    {";", "", 0xe36f5519ee926a53ull},
    {"SET search_path TO app, public", "set search_path to app, public", 0xbeaf0d17d9b73506ull},
};

TEST(PgFingerprint, PinnedFingerprintsNeverChange) {
  for (const Pinned& p : kPinned) {
    EXPECT_EQ(Normalize(p.sql), p.normalized) << p.sql;
    EXPECT_EQ(Fingerprint(Normalize(p.sql)), p.fingerprint) << p.sql;
  }
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
