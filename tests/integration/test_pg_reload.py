"""A reload that changes the PostgreSQL proxy's database list, against two real PostgreSQL 15
servers: `shop` moves from server A to server B and `shop2` (on B) is added. New logins see
the new list at once; a client inside a transaction when the reload came finishes it on its
old server; the old pool then drains, leaving server A without a connection from ficus.
"""

import os
import subprocess
import sys
import time
import unittest

from harness import FicusTestCase, free_port, wait_until, TIME_FACTOR
from pg_server import PostgresServer, APP_PASSWORD
from test_pg import pg_config

try:
    import psycopg2
except ImportError:  # scripts/install-deps.sh installs python3-psycopg2 for Debian's python3
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import psycopg2
    except ImportError:
        psycopg2 = None


class ReloadDatabases(FicusTestCase):
    def port_of(self, db, autocommit=True):
        c = psycopg2.connect(host="127.0.0.1", port=self.listen, user="app",
                             password=APP_PASSWORD, dbname=db, sslmode="disable",
                             connect_timeout=10)
        c.autocommit = autocommit
        cur = c.cursor()
        cur.execute("SELECT inet_server_port()")
        return c, cur.fetchone()[0]

    def ficus_connections(self, pg):
        # The pools' connections; the health checker keeps one per database and server (A
        # still serves legacy_shop), which is not a pool's.
        return int(pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                       "WHERE usename = 'app' AND "
                                       "application_name <> 'ficus health check'").strip())

    def test_reload_adds_and_moves_databases(self):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        a, b = PostgresServer(), PostgresServer()
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        a.start()
        b.start()
        self.listen = free_port()
        cfg = pg_config(a.port, self.listen)
        f = self.start_ficus(cfg)

        held, port = self.port_of("shop", autocommit=False)  # a transaction stays open on A
        self.assertEqual(port, a.port)
        c, port = self.port_of("shop")
        self.assertEqual(port, a.port)
        c.close()

        cfg["postgres"]["databases"][0]["primary"] = "127.0.0.1:%d" % b.port
        cfg["postgres"]["databases"].append(
            {"name": "shop2", "primary": "127.0.0.1:%d" % b.port, "dbname": "shop",
             "pool_size": 2})
        f.reload(cfg)

        def moved():
            try:
                conn, p = self.port_of("shop")
                conn.close()
                return p == b.port
            except psycopg2.Error:
                return False

        self.assertTrue(wait_until(moved, 10 * TIME_FACTOR), "new logins still go to A")
        c, port = self.port_of("shop2")
        self.assertEqual(port, b.port)
        c.close()
        # The client inside its transaction finishes it where it began.
        cur = held.cursor()
        cur.execute("SELECT inet_server_port()")
        self.assertEqual(cur.fetchone()[0], a.port)
        held.commit()
        held.close()
        # The old pool drains: server A keeps no connection of ficus's.
        self.assertTrue(wait_until(lambda: self.ficus_connections(a) == 0, 15 * TIME_FACTOR),
                        "the old pool did not drain")
        self.assertGreater(self.ficus_connections(b), 0)
        self.assertTrue(f.alive())


if __name__ == "__main__":
    unittest.main()
