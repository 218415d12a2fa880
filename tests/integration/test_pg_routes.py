"""Which HTTP route causes which queries: an application behind ficus's HTTP listener puts the
traceparent ficus sent it into its SQL (a sqlcommenter comment) and queries PostgreSQL 15
through ficus's postgres listener. ficus joins each query to the request and its route: queries
per request, the N+1 of /orders (one item query per order line), the database's share of each
route's time, on /metrics and GET /pg; after a stop the report's database section names the
N+1 with its remedy, and the healthy route raises nothing.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import unittest

from harness import FicusTestCase, endpoint, free_port, make_config, request, wait_until, \
    FICUS_BIN, TIME_FACTOR
from loopback_server import LoopbackHTTPServer
from otlp_receiver import OtlpReceiver
from pg_server import PostgresServer, APP_PASSWORD

try:
    import psycopg2
except ImportError:  # scripts/install-deps.sh installs python3-psycopg2 for Debian's python3
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import psycopg2
    except ImportError:
        psycopg2 = None

TOKEN = "pg-routes-admin-token-0123456789"
LINES = 8  # order lines: /orders runs one item query per line (the N+1)


class App:
    """A tiny application: one database connection per thread, through ficus, with the request's
    traceparent in a sqlcommenter comment of every query."""

    def __init__(self, pg_port):
        self.pg_port = pg_port
        self.local = threading.local()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                tp = self.headers.get("traceparent", "")
                comment = " /*traceparent='%s'*/" % tp if tp else ""
                cur = app.cursor()
                if self.path.startswith("/orders"):
                    cur.execute("SELECT id FROM items WHERE id <= %s ORDER BY id" + comment,
                                (LINES,))
                    ids = [r[0] for r in cur.fetchall()]
                    names = []
                    for i in ids:  # the N+1: one query per line
                        cur.execute("SELECT name FROM items WHERE id = %s" + comment, (i,))
                        names.append(cur.fetchone()[0])
                    body = json.dumps(names).encode()
                else:  # /item: one query
                    cur.execute("SELECT name FROM items WHERE id = ANY(%s)" + comment, ([1, 2],))
                    body = json.dumps([r[0] for r in cur.fetchall()]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.conns = []
        self.lock = threading.Lock()

    def cursor(self):
        if not hasattr(self.local, "conn"):
            c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="app",
                                 password=APP_PASSWORD, dbname="shop", sslmode="disable",
                                 connect_timeout=10)
            c.autocommit = True
            self.local.conn = c
            with self.lock:
                self.conns.append(c)
        return self.local.conn.cursor()

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except Exception:
                    pass


class QueriesPerRoute(FicusTestCase):
    def test_queries_join_their_route(self):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        pg = PostgresServer()
        self.addCleanup(pg.stop)
        pg.start()
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        pg_listen = free_port()
        app = App(pg_listen).start()
        self.addCleanup(app.stop)
        rx = OtlpReceiver().start()
        self.addCleanup(rx.stop)
        routes = [{"name": "orders", "match": {"path_prefix": "/orders"}, "cluster": "app"},
                  {"name": "item", "match": {"path_prefix": "/item"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(app.port)]}, routes, workers=2,
                          admin={"token": TOKEN},
                          tracing={"endpoint": "http://127.0.0.1:%d/v1/traces" % rx.port,
                                   "sample": 0.0})
        cfg["listeners"].append({"name": "db", "listen": "127.0.0.1:%d" % pg_listen,
                                 "kind": "postgres"})
        cfg["postgres"] = {
            "databases": [{"name": "shop", "primary": "127.0.0.1:%d" % pg.port,
                           "pool_size": 4, "pool_mode": "transaction"}],
            "users": [{"name": "app", "password": "${PG_APP_PASSWORD}"}],
        }
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)

        for _ in range(12):
            self.assertEqual(request(f.port, "GET", "/orders", timeout=10).status, 200)
            self.assertEqual(request(f.port, "GET", "/item", timeout=10).status, 200)

        def routes_of():
            st = json.loads(request(f.admin_port, "GET", "/pg").body)
            return {r["route"]: r for r in st["routes"]}, st

        wait_until(lambda: routes_of()[0].get("orders", {}).get("requests", 0) >= 12 and
                   routes_of()[0].get("item", {}).get("requests", 0) >= 12, 10 * TIME_FACTOR)
        by_route, st = routes_of()
        orders, item = by_route["orders"], by_route["item"]
        self.assertEqual(orders["requests"], 12, orders)
        self.assertEqual(orders["queries"], 12 * (1 + LINES), orders)
        self.assertAlmostEqual(orders["queries_per_request"], 1 + LINES, places=2)
        self.assertEqual(item["queries"], 12, item)
        self.assertGreater(orders["db_share"], 0)
        self.assertLessEqual(item["db_share"], 1.0)
        n1 = [n for n in st["n_plus_one"] if n["route"] == "orders"]
        self.assertEqual(len(n1), 1, st["n_plus_one"])
        self.assertEqual(n1[0]["requests"], 12)
        self.assertEqual(n1[0]["max_repeats"], LINES)
        self.assertEqual(n1[0]["query"], "select name from items where id = ?")
        self.assertFalse([n for n in st["n_plus_one"] if n["route"] == "item"])
        joined = [t for t in st["traces"] if t.get("route") == "orders"]
        self.assertTrue(joined)
        self.assertEqual(joined[-1]["queries"], 1 + LINES)

        m = f.metrics()
        self.assertEqual(m.get("ficus_pg_route_queries_total", route="orders"), 12 * (1 + LINES))
        self.assertEqual(m.get("ficus_pg_route_n_plus_one_total", route="orders",
                               fingerprint=n1[0]["fingerprint"]), 12)
        self.assertEqual(m.get("ficus_pg_route_queries_per_request_bucket", route="item",
                               le="1"), 12)
        self.assertGreater(m.get("ficus_pg_route_db_seconds_total", route="orders"), 0)

        # The stop writes the minute in progress; the report reads it back.
        app.stop()
        self.assertEqual(f.stop(), 0)
        out = os.path.join(f.workdir, "report.json")
        r = subprocess.run([FICUS_BIN, "report", "-c", f.config_path, "--period", "10m",
                            "--format", "json", "-o", out], capture_output=True, text=True,
                           cwd=f.workdir, timeout=90 * TIME_FACTOR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out) as fh:
            report = json.load(fh)
        db = report["database"]
        self.assertEqual({x["route"] for x in db["routes"]}, {"orders", "item"}, db)
        self.assertEqual([n["route"] for n in db["n_plus_one"]], ["orders"])
        self.assertEqual(db["queries"][0]["query"], "select name from items where id = ?")
        findings = [x for x in report["findings"] if x["kind"].startswith("db.")]
        self.assertEqual([(x["kind"], x["route"]) for x in findings
                          if x["kind"] == "db.n_plus_one"], [("db.n_plus_one", "orders")])
        self.assertIn("batch query " + n1[0]["fingerprint"] + " on route orders",
                      [x for x in findings if x["kind"] == "db.n_plus_one"][0]["remedy"])
        self.assertFalse([x for x in findings if x["route"] == "item"], findings)
        self.assertFalse([x for x in findings if x["kind"] == "db.pool"], findings)
        text = subprocess.run([FICUS_BIN, "report", "-c", f.config_path, "--period", "10m"],
                              capture_output=True, text=True, cwd=f.workdir,
                              timeout=90 * TIME_FACTOR).stdout
        self.assertIn("Database (PostgreSQL through ficus)", text)
        self.assertIn("N+1: route orders", text)


if __name__ == "__main__":
    unittest.main()
