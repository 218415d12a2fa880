"""TLS in the PostgreSQL proxy, both sides, against a real PostgreSQL 15 with `ssl=on` and a
pg_hba.conf of `hostssl` lines only (a plain-text connection is refused there), and real
clients: psql with sslmode=require and verify-full, psycopg2 over TLS, raw frontends for the
exact bytes (GSSENCRequest, a CancelRequest inside TLS, a client in plain text when TLS is
required). Certificates come from the openssl CLI in the test's temp dir (tls_certs.py).
"""

import os
import ssl
import subprocess
import sys
import threading
import time
import unittest

from harness import FicusTestCase, free_port
import pg_server
from pg_server import PostgresServer, RawPg, APP_PASSWORD, error_fields

try:
    import psycopg2
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import psycopg2
    except ImportError:
        psycopg2 = None

TOKEN = "pg-tls-admin-token-0123456789"


def tls_config(pg, listen_port, required):
    c = pg.certs
    db = {"primary": "127.0.0.1:%d" % pg.port, "dbname": "shop", "pool_size": 2}
    return {
        "workers": 2,
        "admin": {"listen": "127.0.0.1:%d" % free_port(), "token": TOKEN},
        "listeners": [{"name": "public", "listen": "127.0.0.1:%d" % free_port()},
                      {"name": "db", "listen": "127.0.0.1:%d" % listen_port, "kind": "postgres"}],
        "clusters": [{"name": "app", "endpoints": ["127.0.0.1:9"]}],
        "routes": [{"match": {"path_prefix": "/"}, "cluster": "app"}],
        "postgres": {
            "tls": {"cert": c.cert, "key": c.key, "required": required},
            "databases": [
                # The server's certificate names localhost and 127.0.0.1, signed by the CA.
                dict(db, name="shop", sslmode="verify-full", sslrootcert=c.ca),
                dict(db, name="wrong_ca", sslmode="verify-full", sslrootcert=c.other_ca),
                dict(db, name="preferred", sslmode="prefer"),
                dict(db, name="allowed", sslmode="allow"),
                dict(db, name="plain", sslmode="disable"),
            ],
            "users": [{"name": "app", "password": APP_PASSWORD}],
        },
    }


class PgTlsTestCase(FicusTestCase):
    required = True

    @classmethod
    def setUpClass(cls):
        cls.pg = PostgresServer(ssl=True)
        cls.addClassCleanup(cls.pg.stop)
        cls.pg.start()
        cls.port = free_port()
        cls.ficus = cls.start_ficus_for_class(tls_config(cls.pg, cls.port, cls.required))

    def psql(self, sql, db="shop", sslmode="require", extra=None, check=True):
        env = dict(os.environ, PGPASSWORD=APP_PASSWORD, PGCONNECT_TIMEOUT="10",
                   PGSSLMODE=sslmode, PGGSSENCMODE="disable")
        env.pop("PGSSLROOTCERT", None)
        conninfo = "host=localhost hostaddr=127.0.0.1 port=%d user=app dbname=%s %s" % (
            self.port, db, extra or "")
        r = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo,
                            "-c", sql], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        if check:
            self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r

    def client_context(self, verify=True):
        ctx = ssl.create_default_context(cafile=self.pg.certs.ca)
        if not verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    # What the server says about the connection the query runs on: is it encrypted?
    SERVER_SSL = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


class TlsRequired(PgTlsTestCase):
    def test_psql_require_and_the_server_side_is_encrypted(self):
        r = self.psql("SELECT count(*) FROM items; " + self.SERVER_SSL)
        self.assertEqual(r.stdout.decode().split(), ["100", "t"])

    def test_psql_verify_full_against_ficus(self):
        r = self.psql("SELECT count(*) FROM items", sslmode="verify-full",
                      extra="sslrootcert=" + self.pg.certs.ca)
        self.assertEqual(r.stdout.decode().strip(), "100")
        # The wrong CA: psql refuses ficus's certificate.
        r = self.psql("SELECT 1", sslmode="verify-full",
                      extra="sslrootcert=" + self.pg.certs.other_ca, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("certificate verify failed", r.stderr.decode())

    def test_psycopg2_over_tls(self):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        conn = psycopg2.connect(host="localhost", hostaddr="127.0.0.1", port=self.port,
                                user="app", password=APP_PASSWORD, dbname="shop",
                                sslmode="verify-full", sslrootcert=self.pg.certs.ca,
                                gssencmode="disable", connect_timeout=10)
        try:
            self.assertTrue(conn.info.ssl_in_use)
            self.assertEqual(conn.info.ssl_attribute("protocol"), "TLSv1.3")
            cur = conn.cursor()
            cur.execute("SELECT name FROM items WHERE id = %s", (7,))  # extended protocol
            self.assertEqual(cur.fetchone()[0], "item 7")
            cur.execute(self.SERVER_SSL)
            self.assertTrue(cur.fetchone()[0])
            conn.rollback()
        finally:
            conn.close()

    def test_a_client_in_plain_text_is_refused(self):
        r = self.psql("SELECT 1", sslmode="disable", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ficus accepts only TLS connections", r.stderr.decode())
        # The exact answer: FATAL 28000, as pg_hba.conf's hostssl.
        import socket
        import struct
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        body = struct.pack("!I", 196608) + b"user\0app\0database\0shop\0\0"
        s.sendall(struct.pack("!I", len(body) + 4) + body)
        data = b""
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
        s.close()
        self.assertEqual(data[:1], b"E")
        fields = error_fields(data[5:])
        self.assertEqual(fields["S"], "FATAL")
        self.assertEqual(fields["C"], "28000")

    def test_gssenc_request_is_answered_n_then_tls_works(self):
        import socket
        import struct
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(struct.pack("!II", 8, 80877104))
        self.assertEqual(s.recv(1), b"N")
        tls = pg_server.start_tls(s, self.client_context())
        tls.close()
        # libpq's default gssencmode (prefer) asks first when built with GSSAPI: psql still works.
        env_r = self.psql("SELECT 1", extra="gssencmode=prefer")
        self.assertEqual(env_r.stdout.decode().strip(), "1")

    def test_cancel_request_inside_tls(self):
        a = RawPg(self.port, "app", APP_PASSWORD, "shop", timeout=30,
                  ssl_context=self.client_context())
        try:
            self.assertIsNotNone(a.backend_key)
            result = {}

            def run():
                result["rows"], result["err"] = a.query("SELECT pg_sleep(20)")

            t = threading.Thread(target=run)
            start = time.monotonic()
            t.start()
            time.sleep(0.5)  # the query is running on a server connection
            pg_server.cancel_request(self.port, a.backend_key, self.client_context())
            t.join(25)
            self.assertLess(time.monotonic() - start, 10)
            self.assertEqual(result["err"]["C"], "57014")  # canceling statement due to user request
        finally:
            a.close()

    def test_wrong_ca_to_the_server_is_a_clear_error(self):
        r = self.psql("SELECT 1", db="wrong_ca", check=False)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertIn("cannot connect to the server", err)
        self.assertIn("certificate verify failed", err)

    def test_sslmodes_to_the_server(self):
        # prefer and allow end up encrypted (allow: the hostssl server refuses plain text first).
        for db in ("preferred", "allowed"):
            r = self.psql(self.SERVER_SSL, db=db)
            self.assertEqual(r.stdout.decode().strip(), "t", db)
        # disable: the hostssl-only server refuses, and the client learns why.
        r = self.psql("SELECT 1", db="plain", check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no encryption", r.stderr.decode())

    def test_health_checks_use_the_databases_sslmode(self):
        # The hostssl-only server lets the checks in only over TLS: verify-full and prefer are
        # up, the database with the wrong CA and the one in plain text are down, saying why.
        import json
        from harness import request, wait_until

        def servers():
            r = request(self.ficus.admin_port, "GET", "/pg",
                        headers={"Authorization": "Bearer " + TOKEN})
            by_db = {s["database"]: s for s in json.loads(r.body)["servers"]}
            return by_db if len(by_db) == 5 and all(s["checked"] for s in by_db.values()) \
                else None

        by_db = wait_until(servers, 20)
        self.assertIsNotNone(by_db)
        self.assertTrue(by_db["shop"]["up"], by_db["shop"])
        self.assertTrue(by_db["preferred"]["up"], by_db["preferred"])
        self.assertFalse(by_db["wrong_ca"]["up"])
        self.assertIn("certificate verify failed", by_db["wrong_ca"]["last_error"])
        self.assertFalse(by_db["plain"]["up"])

    def test_metrics_count_tls_clients(self):
        self.psql("SELECT 1")
        m = self.ficus.metrics()
        self.assertGreaterEqual(m.sum("ficus_pg_tls_clients_total"), 1)


class TlsOptional(PgTlsTestCase):
    """Without `required`, a client in plain text is served too (and ficus->server stays TLS)."""
    required = False

    def test_plain_text_client_is_served(self):
        r = self.psql("SELECT count(*) FROM items; " + self.SERVER_SSL, sslmode="disable")
        self.assertEqual(r.stdout.decode().split(), ["100", "t"])

    def test_tls_client_is_served(self):
        r = self.psql("SELECT 1", sslmode="require")
        self.assertEqual(r.stdout.decode().strip(), "1")


if __name__ == "__main__":
    unittest.main()
