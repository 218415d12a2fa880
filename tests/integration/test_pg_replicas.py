"""The PostgreSQL proxy's read/write split against a real PostgreSQL 15 primary and a streaming
replica (pg_basebackup -R): reads land on the replica, writes and anything ambiguous on the
primary; read-your-writes; a replica whose replay is paused is excluded past max_replica_lag;
a killed replica is dropped from reads, which continue on the primary; with the primary down,
reads continue on the replica and writes get a prompt 08006 error (the client stays).
"""

import json
import os
import subprocess
import sys
import time
import unittest

from harness import FicusTestCase, free_port, request, wait_until, TIME_FACTOR
from pg_server import PostgresServer, PostgresReplica, RawPg, APP_PASSWORD, _msg

try:
    import psycopg2
    import psycopg2.errors
except ImportError:  # scripts/install-deps.sh installs python3-psycopg2 for Debian's python3
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import psycopg2
        import psycopg2.errors
    except ImportError:
        psycopg2 = None

TOKEN = "pg-admin-token-0123456789"


def replica_config(primary, replica, listen_port):
    database = lambda name, **kw: dict(
        {"name": name, "dbname": "shop", "primary": "127.0.0.1:%d" % primary.port,
         "replicas": ["127.0.0.1:%d" % replica.port], "pool_size": 4, "wait_timeout": "5s"}, **kw)
    return {
        "workers": 2,
        "admin": {"listen": "127.0.0.1:%d" % free_port(), "token": TOKEN},
        "listeners": [{"name": "public", "listen": "127.0.0.1:%d" % free_port()},
                      {"name": "db", "listen": "127.0.0.1:%d" % listen_port, "kind": "postgres"}],
        "clusters": [{"name": "app", "endpoints": ["127.0.0.1:9"]}],
        "routes": [{"match": {"path_prefix": "/"}, "cluster": "app"}],
        "postgres": {
            "databases": [
                # A lag bound the paused-replay tests never reach, one they pass in a second,
                # and a read-only database.
                database("shop", max_replica_lag="60s"),
                database("shop_lagbound", max_replica_lag="1s"),
                database("shop_ro", read_only=True),
            ],
            "users": [{"name": "app", "password": APP_PASSWORD}],
            "health_check_interval": "100ms",
            "health_check_timeout": "1s",
            "connect_timeout": "2s",
        },
    }


class ReplicaTestCase(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        if psycopg2 is None:
            raise unittest.SkipTest("python3-psycopg2 is not installed")
        cls.primary = PostgresServer()
        cls.addClassCleanup(cls.primary.stop)
        cls.primary.start()
        cls.replica = PostgresReplica(cls.primary)
        cls.addClassCleanup(cls.replica.stop)
        cls.replica.start()
        cls.replica.wait_replayed()
        cls.port = free_port()
        cls.ficus = cls.start_ficus_for_class(replica_config(cls.primary, cls.replica, cls.port))
        cls.wait_replica_usable()

    @classmethod
    def wait_replica_usable(self, database="shop"):
        def usable():
            for s in self.status()["servers"]:
                if s["database"] == database and s["role"] == "replica":
                    return s["up"] and s["lag_ms"] is not None and s["lag_ms"] < 1000
            return False
        if not wait_until(usable, 20 * TIME_FACTOR, interval=0.05):
            raise AssertionError("the replica never became usable: %r" % self.status())

    @classmethod
    def status(self):
        r = request(self.ficus.admin_port, "GET", "/pg")
        if r.status != 200:
            raise AssertionError("GET /pg -> %r" % r)
        return json.loads(r.body)

    @classmethod
    def server(self, database, role):
        return [s for s in self.status()["servers"]
                if s["database"] == database and s["role"] == role][0]

    def connect(self, db="shop", autocommit=True):
        c = psycopg2.connect(host="127.0.0.1", port=self.port, user="app", password=APP_PASSWORD,
                             dbname=db, sslmode="disable", connect_timeout=10)
        c.autocommit = autocommit
        return c

    def where(self, cur, sql="SELECT inet_server_port(), pg_is_in_recovery()"):
        cur.execute(sql)
        return cur.fetchone()


class ReadWriteSplit(ReplicaTestCase):
    def test_reads_on_the_replica_writes_and_ambiguous_statements_on_the_primary(self):
        reader = self.connect()
        cur = reader.cursor()
        for _ in range(5):
            self.assertEqual(self.where(cur), (self.replica.port, True))
        # A multi-statement read, a CTE, a read-only function of the catalogue: still reads.
        self.assertEqual(self.where(cur, "WITH t AS (SELECT count(*) AS n FROM items) "
                                         "SELECT inet_server_port(), n > 0 FROM t"),
                         (self.replica.port, True))
        # A locking read, an unknown function, a read-write transaction: the primary.
        self.assertEqual(self.where(cur, "SELECT inet_server_port(), pg_is_in_recovery() FROM "
                                         "items WHERE id = 1 FOR UPDATE"),
                         (self.primary.port, False))
        cur.execute("CREATE OR REPLACE FUNCTION port_of() RETURNS int LANGUAGE sql "
                    "AS 'SELECT inet_server_port()'")
        self.assertEqual(self.where(cur, "SELECT port_of(), 0"), (self.primary.port, 0))
        writer = self.connect(autocommit=False)  # psycopg2 sends BEGIN: read-write transaction
        wcur = writer.cursor()
        self.assertEqual(self.where(wcur), (self.primary.port, False))
        wcur.execute("INSERT INTO items VALUES (500, 'written') RETURNING inet_server_port()")
        self.assertEqual(wcur.fetchone()[0], self.primary.port)
        writer.commit()
        # A transaction the client declares READ ONLY goes to a replica, whatever it runs.
        ro = self.connect(autocommit=False)
        ro.set_session(readonly=True)
        rcur = ro.cursor()
        self.assertEqual(self.where(rcur), (self.replica.port, True))
        with self.assertRaises(psycopg2.errors.ReadOnlySqlTransaction):
            rcur.execute("INSERT INTO items VALUES (501, 'refused')")
        ro.rollback()
        for c in (reader, writer, ro):
            c.close()
        m = self.ficus.metrics()
        self.assertGreaterEqual(m.get("ficus_pg_server_transactions_total", database="shop",
                                      server="127.0.0.1:%d" % self.replica.port, role="replica",
                                      access="read"), 6)
        self.assertGreaterEqual(m.get("ficus_pg_server_transactions_total", database="shop",
                                      server="127.0.0.1:%d" % self.primary.port, role="primary",
                                      access="write"), 3)
        self.assertEqual(m.get("ficus_pg_server_up", database="shop", role="replica",
                               server="127.0.0.1:%d" % self.replica.port), 1)

    def test_a_write_pipelined_behind_a_read_still_reaches_the_primary(self):
        c = RawPg(self.port, "app", APP_PASSWORD, "shop")
        # Two simple Queries in one write: the read goes to the replica; the write waits for its
        # ReadyForQuery and is routed on its own.
        c.s.sendall(_msg(b"Q", b"SELECT inet_server_port()\0") +
                    _msg(b"Q", b"INSERT INTO items VALUES (700, 'piped') "
                               b"RETURNING inet_server_port()\0") +
                    _msg(b"Q", b"SELECT inet_server_port(), pg_is_in_recovery() "
                               b"FROM items WHERE id = 700 FOR SHARE\0"))
        ports = []
        while len(ports) < 3:
            t, b = c.read()
            self.assertIsNotNone(t)
            self.assertNotEqual(t, b"E", b)
            if t == b"D":
                ports.append(int(b[6:6 + int.from_bytes(b[2:6], "big")]))
        self.assertEqual(ports, [self.replica.port, self.primary.port, self.primary.port])
        c.close()

    def test_pgbench_reads_on_the_replica_and_tpcb_on_the_primary_in_every_protocol(self):
        env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(self.port), PGUSER="app",
                   PGPASSWORD=APP_PASSWORD, PGDATABASE="shop", PGSSLMODE="disable")
        subprocess.run(["pgbench", "-i", "-q", "-s", "1"], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        self.replica.wait_replayed()
        replica = "127.0.0.1:%d" % self.replica.port
        for protocol in ("simple", "extended", "prepared"):
            before = self.server("shop", "replica")["reads"]
            r = subprocess.run(["pgbench", "-n", "-S", "-c", "4", "-j", "4", "-t", "50", "-M",
                                protocol], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=300)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertEqual(r.returncode, 0, out)
            self.assertIn("actually processed: 200/200", out)
            # Nearly all on the replica (the first of each client may precede a lag sample).
            self.assertGreaterEqual(self.server("shop", "replica")["reads"] - before, 190, protocol)
            # The TPC-B-like mix writes inside BEGIN ... END: every transaction on the primary
            # (a write on the replica would fail with 25006 and pgbench would report it).
            r = subprocess.run(["pgbench", "-n", "-c", "4", "-j", "4", "-t", "25", "-M", protocol],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=300)
            out = r.stdout.decode() + r.stderr.decode()
            self.assertEqual(r.returncode, 0, out)
            self.assertIn("actually processed: 100/100", out)
        del replica

    def test_read_only_database_reads_and_refuses_writes(self):
        c = self.connect(db="shop_ro")
        cur = c.cursor()
        self.wait_replica_usable("shop_ro")
        self.assertEqual(self.where(cur), (self.replica.port, True))
        with self.assertRaises(psycopg2.errors.ReadOnlySqlTransaction):
            cur.execute("INSERT INTO items VALUES (900, 'no')")
        c.close()

    def test_read_your_writes_and_lag_bound_with_replay_paused(self):
        self.replica.pause_replay()
        try:
            writer = self.connect()
            other = self.connect()
            wcur, ocur = writer.cursor(), other.cursor()
            self.assertEqual(self.where(ocur)[0], self.replica.port)
            wcur.execute("INSERT INTO items VALUES (2000, 'mine')")
            # The writer reads its own write (from the primary: the replica has not replayed it).
            for _ in range(5):
                wcur.execute("SELECT name, inet_server_port() FROM items WHERE id = 2000")
                self.assertEqual(wcur.fetchone(), ("mine", self.primary.port))
            # Another client (no write of its own) still reads from the replica (lag under 60s).
            ocur.execute("SELECT count(*), inet_server_port() FROM items WHERE id = 2000")
            self.assertEqual(ocur.fetchone(), (0, self.replica.port))
            self.assertGreaterEqual(self.server("shop", "primary")["reads_on_primary"]
                                    ["read_your_writes"], 5)
            # Past the 1s bound, shop_lagbound's reads leave the replica.
            wait_until(lambda: (self.server("shop_lagbound", "replica")["lag_ms"] or 0) > 1000,
                       10 * TIME_FACTOR)
            bound = self.connect(db="shop_lagbound")
            self.assertEqual(self.where(bound.cursor()), (self.primary.port, False))
            self.assertGreaterEqual(self.server("shop_lagbound", "primary")["reads_on_primary"]
                                    ["replica_lag"], 1)
            self.assertGreater(self.ficus.metrics().get(
                "ficus_pg_server_lag_seconds", database="shop_lagbound",
                server="127.0.0.1:%d" % self.replica.port), 1.0)
        finally:
            self.replica.resume_replay()
        self.replica.wait_replayed()
        self.wait_replica_usable("shop_lagbound")
        # Caught up: the lag-bound database and the writer's reads come back to the replica.
        self.assertEqual(self.where(bound.cursor()), (self.replica.port, True))
        self.assertTrue(wait_until(lambda: self.where(wcur)[0] == self.replica.port,
                                   5 * TIME_FACTOR))
        wcur.execute("SELECT name FROM items WHERE id = 2000")
        self.assertEqual(wcur.fetchone()[0], "mine")
        for c in (writer, other, bound):
            c.close()

    def test_zz_a_killed_replica_is_dropped_and_reads_continue_on_the_primary(self):
        c = self.connect()
        cur = c.cursor()
        self.assertEqual(self.where(cur)[0], self.replica.port)  # a pooled replica connection
        self.replica.kill()
        # This client's next read may meet the pooled replica connection dying with its server
        # (08006, its connection closed: a transaction is never replayed elsewhere); after that
        # no read fails.
        try:
            self.assertEqual(self.where(cur), (self.primary.port, False))
        except psycopg2.OperationalError:
            c.close()
            c = self.connect()
            cur = c.cursor()
        t0 = time.monotonic()
        for _ in range(10):
            self.assertEqual(self.where(cur), (self.primary.port, False))
        self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR)
        self.assertTrue(wait_until(lambda: not self.server("shop", "replica")["up"],
                                   5 * TIME_FACTOR))
        for _ in range(10):  # fresh clients: the primary, no error
            fresh = self.connect()
            self.assertEqual(self.where(fresh.cursor())[0], self.primary.port)
            fresh.close()
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_pg_server_up", database="shop", role="replica",
                               server="127.0.0.1:%d" % self.replica.port), 0)
        self.assertGreaterEqual(m.get("ficus_pg_reads_on_primary_total", database="shop",
                                      reason="replica_down"), 1)
        c.close()


class PrimaryFailure(ReplicaTestCase):
    def test_reads_continue_on_the_replica_and_writes_fail_promptly(self):
        c = self.connect()
        cur = c.cursor()
        self.assertEqual(self.where(cur)[0], self.replica.port)
        self.primary.proc.kill()  # by PID, SIGKILL
        self.primary.proc.wait()
        self.assertTrue(wait_until(lambda: not self.server("shop", "primary")["up"],
                                   5 * TIME_FACTOR))
        # Reads: the replica has replayed all it received, so it is as fresh as anything left.
        self.wait_replica_usable()
        for _ in range(3):
            self.assertEqual(self.where(cur), (self.replica.port, True))
        t0 = time.monotonic()
        with self.assertRaises(psycopg2.OperationalError) as e:
            cur.execute("INSERT INTO items VALUES (3000, 'lost')")
        self.assertLess(time.monotonic() - t0, 3 * TIME_FACTOR)
        self.assertEqual(e.exception.pgcode, "08006", str(e.exception))
        self.assertIn("cannot connect to the server of pool", str(e.exception))
        # The client stays: its reads go on on the replica.
        self.assertEqual(self.where(cur), (self.replica.port, True))
        self.assertEqual(self.ficus.metrics().get(
            "ficus_pg_server_up", database="shop", role="primary",
            server="127.0.0.1:%d" % self.primary.port), 0)


if __name__ == "__main__":
    unittest.main()
