"""Index advice from plans, against a real PostgreSQL 15: an application's N+1 query filters a
30,000-row table on a column without an index. POST /pg/explain answers its plan with the index
it lacks (table and columns); ficus captures the plan by itself after the minute ends (EXPLAIN
without ANALYZE), and the report's N+1 finding names that index as the remedy, with the plan in
the database section.
"""

import json
import os
import subprocess
import time
import unittest

from harness import FicusTestCase, endpoint, free_port, make_config, request, wait_until, \
    FICUS_BIN, TIME_FACTOR
from pg_server import PostgresServer, APP_PASSWORD
from test_pg_routes import App, psycopg2, TOKEN

AUTH = {"Authorization": "Bearer " + TOKEN}
N1_QUERY = "select sku from lines where order_id = ?"


class LinesApp(App):
    """/orders: one query for the order ids, then one per order (the N+1) on `lines`."""

    def __init__(self, pg_port):
        super().__init__(pg_port)
        app = self
        handler = self.server.RequestHandlerClass

        def do_GET(h):
            tp = h.headers.get("traceparent", "")
            comment = " /*traceparent='%s'*/" % tp if tp else ""
            cur = app.cursor()
            cur.execute("SELECT g FROM generate_series(1, 6) g" + comment)
            skus = []
            for (order_id,) in cur.fetchall():
                cur.execute("SELECT sku FROM lines WHERE order_id = %s" + comment, (order_id,))
                skus += [r[0] for r in cur.fetchall()]
            body = json.dumps(skus).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

        handler.do_GET = do_GET


class PlanAdvice(FicusTestCase):
    def test_n_plus_one_remedy_names_the_index_from_the_plan(self):
        if psycopg2 is None:
            self.skipTest("python3-psycopg2 is not installed")
        pg = PostgresServer()
        self.addCleanup(pg.stop)
        pg.start()
        pg.psql("shop", "CREATE TABLE lines(id serial PRIMARY KEY, order_id int, sku text); "
                        "INSERT INTO lines(order_id, sku) SELECT i % 5000, 'sku' || i "
                        "FROM generate_series(1, 30000) i; GRANT SELECT ON lines TO app; "
                        "ANALYZE lines")
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        pg_listen = free_port()
        app = LinesApp(pg_listen).start()
        self.addCleanup(app.stop)
        routes = [{"name": "orders", "match": {"path_prefix": "/orders"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(app.port)]}, routes, workers=2,
                          admin={"token": TOKEN},
                          tracing={"endpoint": "http://127.0.0.1:9/v1/traces", "sample": 0.0})
        cfg["listeners"].append({"name": "db", "listen": "127.0.0.1:%d" % pg_listen,
                                 "kind": "postgres"})
        cfg["postgres"] = {
            "databases": [{"name": "shop", "primary": "127.0.0.1:%d" % pg.port,
                           "pool_size": 4, "pool_mode": "transaction"}],
            "users": [{"name": "app", "password": "${PG_APP_PASSWORD}"}],
        }
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)

        def get():
            self.assertEqual(request(f.port, "GET", "/orders", timeout=10).status, 200)

        for _ in range(5):
            get()
        fps = [q["fingerprint"] for q in json.loads(request(f.admin_port, "GET", "/pg").body)
               ["queries"] if q["query"] == N1_QUERY]
        self.assertEqual(len(fps), 1)
        fp = fps[0]

        # On demand: the plan and the index it lacks.
        r = request(f.admin_port, "POST", "/pg/explain?fingerprint=" + fp, headers=AUTH,
                    timeout=30)
        self.assertEqual(r.status, 200, r.body)
        body = json.loads(r.body)
        self.assertIn("Seq Scan on lines", "\n".join(body["plan"]))
        self.assertEqual(len(body["indexes"]), 1, body)
        self.assertEqual(body["indexes"][0]["table"], "lines")
        self.assertEqual(body["indexes"][0]["columns"], ["order_id"])
        self.assertEqual(body["indexes"][0]["statement"],
                         "CREATE INDEX CONCURRENTLY ON lines (order_id);")
        self.assertIn("Seq Scan on lines reads", body["indexes"][0]["reason"])

        # By itself: traffic until a minute has ended, then its plans are captured.
        boundary = (int(time.time()) // 60 + 1) * 60
        while time.time() < boundary + 1:
            get()
            time.sleep(0.5)
        time.sleep(5 * TIME_FACTOR)  # the EXPLAIN runs on worker 0, the join thread stores it
        app.stop()
        self.assertEqual(f.stop(), 0)
        out = os.path.join(f.workdir, "report.json")
        r = subprocess.run([FICUS_BIN, "report", "-c", f.config_path, "--period", "10m",
                            "--format", "json", "-o", out], capture_output=True, text=True,
                           cwd=f.workdir, timeout=90 * TIME_FACTOR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(out) as fh:
            db = json.load(fh)
        findings = [x for x in db["findings"] if x["kind"] == "db.n_plus_one"]
        db = db["database"]
        plans = {p["fingerprint"]: p for p in db["plans"]}
        self.assertIn(fp, plans, db["plans"])
        self.assertEqual(plans[fp]["query"], N1_QUERY)
        self.assertEqual([i["statement"] for i in plans[fp]["indexes"]],
                         ["CREATE INDEX CONCURRENTLY ON lines (order_id);"])
        self.assertEqual(len(findings), 1, findings)
        self.assertIn("add it: `CREATE INDEX CONCURRENTLY ON lines (order_id);`",
                      findings[0]["remedy"])


if __name__ == "__main__":
    unittest.main()
