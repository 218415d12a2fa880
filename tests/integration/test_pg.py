"""The PostgreSQL proxy (listeners of kind postgres) against a real PostgreSQL 15 and real
clients: psql, pgbench (simple, extended and prepared protocols), psycopg2; session and
transaction pooling, SET never leaking between clients, pool exhaustion (wait, then a clear
error), cancel, md5 servers, malformed messages, metrics and the admin endpoints.
"""

import json
import os
import subprocess
import sys
import threading
import time
import unittest

from harness import FicusTestCase, Ficus, free_port, request, FICUS_BIN
import pg_server
from pg_server import PostgresServer, RawPg, APP_PASSWORD, LEGACY_PASSWORD

try:
    import psycopg2
    import psycopg2.errors
except ImportError:  # scripts/install-deps.sh installs python3-psycopg2 for Debian's python3
    sys.path.append("/usr/lib/python3/dist-packages")  # when another python3 runs the tests
    try:
        import psycopg2
        import psycopg2.errors
    except ImportError:
        psycopg2 = None

TOKEN = "pg-admin-token-0123456789"


def pg_config(pg_port, listen_port, mode="transaction", pool_size=2, wait_timeout="2s",
              max_waiting=100, workers=2):
    return {
        "workers": workers,
        "admin": {"listen": "127.0.0.1:%d" % free_port(), "token": TOKEN},
        "listeners": [{"name": "public", "listen": "127.0.0.1:%d" % free_port()},
                      {"name": "db", "listen": "127.0.0.1:%d" % listen_port, "kind": "postgres"}],
        "clusters": [{"name": "app", "endpoints": ["127.0.0.1:9"]}],
        "routes": [{"match": {"path_prefix": "/"}, "cluster": "app"}],
        "postgres": {
            "databases": [
                {"name": "shop", "primary": "127.0.0.1:%d" % pg_port, "pool_size": pool_size,
                 "pool_mode": mode, "wait_timeout": wait_timeout, "max_waiting": max_waiting},
                {"name": "legacy_shop", "primary": "127.0.0.1:%d" % pg_port, "dbname": "shop",
                 "pool_size": 2, "pool_mode": mode},
            ],
            "users": [{"name": "app", "password": "${PG_APP_PASSWORD}"},
                      {"name": "legacy", "password": LEGACY_PASSWORD}],
            "slow_query": "50ms",
        },
    }


class PgProxyTestCase(FicusTestCase):
    mode = "transaction"
    pool_size = 2

    @classmethod
    def setUpClass(cls):
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        cls.pg = PostgresServer()
        cls.addClassCleanup(cls.pg.stop)
        cls.pg.start()
        cls.port = free_port()
        cls.ficus = cls.start_ficus_for_class(
            pg_config(cls.pg.port, cls.port, mode=cls.mode, pool_size=cls.pool_size))

    def env(self, user="app", password=APP_PASSWORD):
        e = dict(os.environ)
        e.update(PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER=user, PGPASSWORD=password,
                 PGDATABASE="shop", PGSSLMODE="disable", PGCONNECT_TIMEOUT="10")
        return e

    def psql(self, sql, user="app", password=APP_PASSWORD, db="shop", check=True):
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                           env=self.env(user, password), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r

    def connect(self, **kw):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        args = dict(host="127.0.0.1", port=self.port, user="app", password=APP_PASSWORD,
                    dbname="shop", sslmode="disable", connect_timeout=10)
        args.update(kw)
        return psycopg2.connect(**args)

    def status(self):
        r = request(self.ficus.admin_port, "GET", "/pg")
        self.assertEqual(r.status, 200)
        return json.loads(r.body)


class TransactionMode(PgProxyTestCase):
    def test_psql_and_scram(self):
        self.assertEqual(self.psql("SELECT count(*) FROM items").stdout.decode().strip(), "100")
        r = self.psql("SELECT 1", password="wrong", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("password authentication failed for user \"app\"", r.stderr.decode())
        r = self.psql("SELECT 1", db="nosuchdb", check=False)
        self.assertIn("database \"nosuchdb\" does not exist", r.stderr.decode())

    def test_md5_server_authentication(self):
        out = self.psql("SELECT count(*) FROM items", user="legacy", password=LEGACY_PASSWORD,
                        db="legacy_shop")
        self.assertEqual(out.stdout.decode().strip(), "100")

    def test_pgbench_every_protocol_with_more_clients_than_servers(self):
        subprocess.run(["pgbench", "-i", "-q", "-s", "1"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        for protocol in ("simple", "extended", "prepared"):
            # One thread per client: pgbench prepares a statement with a blocking PQprepare, and
            # a client queued for a server would otherwise stall the clients sharing its thread.
            r = subprocess.run(["pgbench", "-n", "-c", "8", "-j", "8", "-t", "50", "-M", protocol],
                               env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=300)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertEqual(r.returncode, 0, out)
            self.assertIn("number of transactions actually processed: 400/400", out)
            self.assertNotIn("error", out.lower().replace("number of failed", ""))
        st = self.status()
        pool = [p for p in st["pools"] if p["pool"] == "shop/app"][0]
        self.assertLessEqual(pool["servers_open"], 2)
        m = self.ficus.metrics()
        self.assertGreater(m.get("ficus_pg_pool_transactions_total", pool="shop/app"), 1000)

    def test_prepared_statements_follow_the_client_across_servers(self):
        a = self.connect()
        a.autocommit = True
        b = self.connect()
        b.autocommit = True
        ca, cb = a.cursor(), b.cursor()
        # SQL-level PREPARE pins; protocol-level ones are covered by pgbench -M prepared. Here:
        # many short transactions interleaved on 2 server connections.
        for i in range(50):
            ca.execute("SELECT name FROM items WHERE id = %s", (i + 1,))
            self.assertEqual(ca.fetchone()[0], "item %d" % (i + 1))
            cb.execute("SELECT count(*) FROM items WHERE id <= %s", (i + 1,))
            self.assertEqual(cb.fetchone()[0], i + 1)
        a.close()
        b.close()

    def test_set_never_leaks_between_clients(self):
        a = self.connect()
        a.autocommit = True
        b = self.connect()
        b.autocommit = True
        ca, cb = a.cursor(), b.cursor()
        ca.execute("SET statement_timeout = '1234ms'")
        ca.execute("SET search_path = pg_catalog")
        for _ in range(10):
            cb.execute("SHOW statement_timeout")
            self.assertEqual(cb.fetchone()[0], "0")
            cb.execute("SHOW search_path")
            self.assertEqual(cb.fetchone()[0], '"$user", public')
            ca.execute("SHOW statement_timeout")
            self.assertEqual(ca.fetchone()[0], "1234ms")  # a is pinned: its SET holds
        # A transaction's SET LOCAL is not session state: no pin, and gone after COMMIT.
        before = self.ficus.metrics().sum("ficus_pg_pinned_total")
        b.autocommit = False
        cb.execute("SET LOCAL statement_timeout = '5s'")
        b.commit()
        cb.execute("SHOW statement_timeout")
        self.assertEqual(cb.fetchone()[0], "0")
        b.commit()
        self.assertEqual(self.ficus.metrics().sum("ficus_pg_pinned_total"), before)
        a.close()  # its server is reset (DISCARD ALL) before reuse
        c = self.connect()
        c.autocommit = True
        cc = c.cursor()
        for _ in range(4):
            cc.execute("SHOW statement_timeout")
            self.assertEqual(cc.fetchone()[0], "0")
        c.close()
        b.close()
        self.assertGreaterEqual(self.ficus.metrics().get("ficus_pg_pinned_total", reason="set"), 1)

    def test_cancel_reaches_the_right_server(self):
        a = self.connect()
        a.autocommit = True
        cur = a.cursor()
        timer = threading.Timer(0.5, a.cancel)
        timer.start()
        t0 = time.monotonic()
        with self.assertRaises(psycopg2.errors.QueryCanceled):
            cur.execute("SELECT pg_sleep(20)")
        self.assertLess(time.monotonic() - t0, 10)
        cur.execute("SELECT 1")  # the connection is still usable
        self.assertEqual(cur.fetchone()[0], 1)
        a.close()
        self.assertGreaterEqual(
            self.ficus.metrics().get("ficus_pg_cancels_total", result="forwarded"), 1)

    def test_malformed_messages_get_an_error_and_a_close(self):
        # An unknown message type after a real login.
        c = RawPg(self.port, "app", APP_PASSWORD, "shop")
        self.assertEqual(c.query("SELECT 1")[0], [["1"]])
        c.send(b"z", b"")
        t, body = c.read()
        self.assertEqual(t, b"E")
        self.assertEqual(pg_server.error_fields(body)["C"], "08P01")
        self.assertEqual(c.read(), (None, None))
        # A Bind whose parameter claims more bytes than the message has.
        c = RawPg(self.port, "app", APP_PASSWORD, "shop")
        c.send(b"B", b"\0\0\0\0\0\x01\0\0\0\x64ab\0\0")
        t, body = c.read()
        self.assertEqual(pg_server.error_fields(body)["C"], "08P01")
        self.assertEqual(c.read(), (None, None))
        # A message over max_message (16 MiB by default): refused from its header.
        c = RawPg(self.port, "app", APP_PASSWORD, "shop")
        c.s.sendall(b"Q\x7f\x00\x00\x00")
        t, body = c.read()
        self.assertEqual(pg_server.error_fields(body)["C"], "54000")
        # A startup packet with a bad length, and an unsupported protocol version.
        import socket
        import struct
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.sendall(struct.pack("!II", 3, 196608))
        self.assertIn(b"08P01", s.recv(1000))
        s.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        body = struct.pack("!I", 2 << 16) + b"user\0app\0\0"
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        self.assertIn(b"0A000", s.recv(1000))
        s.close()
        self.assertTrue(self.ficus.alive())
        self.assertEqual(self.psql("SELECT 2").stdout.decode().strip(), "2")
        self.assertGreaterEqual(self.ficus.metrics().get("ficus_pg_protocol_errors_total"), 4)

    def test_fingerprints_slow_queries_and_traces(self):
        a = self.connect()
        a.autocommit = True
        cur = a.cursor()
        trace = "4bf92f3577b34da6a3ce929d0e0e4736"
        for i in range(7):  # an N+1: one fingerprint seven times in one trace
            cur.execute("SELECT name FROM items WHERE id = %s "
                        "/*traceparent='00-" + trace + "-00f067aa0ba902b7-01'*/", (i + 1,))
        cur.execute("SELECT pg_sleep(0.06), 'secret-literal'")
        cur.execute("SELECT * FROM items WHERE id IN (1, 2, 3)")
        cur.execute("SELECT * FROM items WHERE id IN (4, 5, 6, 7, 8)")
        a.close()
        st = self.status()
        q = {x["query"]: x for x in st["queries"]}
        self.assertIn("select name from items where id = ?", q)
        self.assertGreaterEqual(q["select name from items where id = ?"]["calls"], 7)
        self.assertEqual(q["select * from items where id in (?)"]["calls"], 2)
        self.assertEqual(q["select * from items where id in (?)"]["rows"], 8)
        slow = [s for s in st["slow"] if "pg_sleep" in s["query"]]
        self.assertTrue(slow)
        self.assertNotIn("secret-literal", json.dumps(st))
        t = [x for x in st["traces"] if x["trace_id"] == trace]
        self.assertEqual(len(t), 1)
        self.assertEqual(t[0]["max_repeats"], 7)
        m = self.ficus.metrics()
        self.assertIn("ficus_pg_query_duration_seconds_bucket", m.names())

    def test_pause_and_resume_through_the_admin_api(self):
        cfg = self.ficus.config_path
        r = subprocess.run([FICUS_BIN, "pg", "pause", "-c", cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        done = []
        t = threading.Thread(target=lambda: done.append(self.psql("SELECT 42")))
        t.start()
        time.sleep(1.0)
        self.assertFalse(done)  # waits while paused
        r = subprocess.run([FICUS_BIN, "pg", "resume", "-c", cfg], stdout=subprocess.PIPE,
                           timeout=30)
        self.assertEqual(r.returncode, 0)
        t.join(30)
        self.assertEqual(done[0].stdout.decode().strip(), "42")
        r = request(self.ficus.admin_port, "POST", "/pg/pause")
        self.assertEqual(r.status, 401)
        audit = json.loads(request(self.ficus.admin_port, "GET", "/audit",
                                   headers={"Authorization": "Bearer " + TOKEN}).body)
        actions = [a["action"] for a in audit["audit"]]
        self.assertIn("POST /pg/pause", actions)
        self.assertIn("POST /pg/resume", actions)


class PoolExhaustion(FicusTestCase):
    def test_wait_then_clear_error(self):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        pg = PostgresServer()
        self.addCleanup(pg.stop)
        pg.start()
        port = free_port()
        f = Ficus(pg_config(pg.port, port, pool_size=1, wait_timeout="700ms", max_waiting=1,
                            workers=1))
        self.addCleanup(f.stop_and_check)
        f.start()
        conn = lambda: psycopg2.connect(host="127.0.0.1", port=port, user="app",
                                        password=APP_PASSWORD, dbname="shop", sslmode="disable")
        a = conn()  # logs in (the pool learns the server's parameters), then holds the server
        ca = a.cursor()
        ca.execute("SELECT 1")  # BEGIN (psycopg2 is not in autocommit): the transaction holds it
        b = RawPg(port, "app", APP_PASSWORD, "shop")
        results = []
        th = threading.Thread(target=lambda: results.append(b.query("SELECT 7")))
        th.start()
        time.sleep(0.2)
        # The queue is full (max_waiting 1): refused at once, with the pool named.
        c = RawPg(port, "app", APP_PASSWORD, "shop")
        t0 = time.monotonic()
        rows, err = c.query("SELECT 1")
        self.assertLess(time.monotonic() - t0, 0.5)
        self.assertEqual(err["C"], "53300")
        self.assertIn('too many clients waiting for a server connection of pool "shop/app"',
                      err["M"])
        th.join(10)
        rows, err = results[0]
        self.assertEqual(err["C"], "57014")
        self.assertIn('timed out after 700ms waiting for a server connection of pool "shop/app"',
                      err["M"])
        # A waiter that gets the connection when the holder commits.
        d = conn()
        d.autocommit = True
        results.clear()
        th = threading.Thread(target=lambda: (d.cursor().execute("SELECT 8"), results.append(1)))
        th.start()
        time.sleep(0.3)
        a.commit()
        th.join(10)
        self.assertEqual(results, [1])
        m = f.metrics()
        self.assertEqual(m.get("ficus_pg_pool_wait_timeouts_total", pool="shop/app"), 1)
        self.assertEqual(m.get("ficus_pg_pool_wait_rejected_total", pool="shop/app"), 1)
        self.assertLessEqual(m.get("ficus_pg_pool_servers_open", pool="shop/app"), 1)
        for x in (a, d):
            x.close()


class SessionMode(PgProxyTestCase):
    mode = "session"
    pool_size = 3

    def test_session_state_lives_for_the_session_and_is_reset_after(self):
        a = self.connect()
        a.autocommit = True
        cur = a.cursor()
        cur.execute("SET application_name = 'mine'")
        cur.execute("PREPARE p(int) AS SELECT name FROM items WHERE id = $1")
        for i in range(5):
            cur.execute("EXECUTE p(%s)", (i + 1,))
            self.assertEqual(cur.fetchone()[0], "item %d" % (i + 1))
        cur.execute("SHOW application_name")
        self.assertEqual(cur.fetchone()[0], "mine")
        a.close()
        for _ in range(3):  # whichever server comes next was reset
            b = self.connect()
            cb = b.cursor()
            cb.execute("SELECT count(*) FROM pg_prepared_statements")
            self.assertEqual(cb.fetchone()[0], 0)
            b.close()

    def test_pgbench_prepared(self):
        subprocess.run(["pgbench", "-i", "-q", "-s", "1"], env=self.env(), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        r = subprocess.run(["pgbench", "-n", "-c", "3", "-t", "100", "-M", "prepared"],
                           env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertIn("processed: 300/300", r.stdout.decode())


if __name__ == "__main__":
    unittest.main()
