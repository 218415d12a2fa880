"""The report's queue section and limited keys from a real gateway (issues 17 and 15).

A real ficus with an offload route whose queue delivers to a slow application one job at a time
(two jobs a second, so the backlog grows), and a rate-limited route one API key floods. After the
gateway stops (its last telemetry tick), `ficus report --format json` shows the queue with what was enqueued, the backlog and a
queue_backlog finding, and the telemetry store's limited_keys table holds the flooding key with
the number of 429s it got.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile

from harness import FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, request, wait_until
from test_offload import App, offload, offload_config


class ReportQueuesTest(FicusTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ficus-report-queues-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def last_tick(self, f):
        return request(f.admin_port, "GET", "/health").json()["telemetry"]["last_tick_ms"]

    def test_queue_minutes_and_limited_keys_reach_the_report(self):
        app = App(delay=0.5)
        self.addCleanup(app.stop)
        data = os.path.join(self.dir, "data")
        cfg = offload_config(app.port, data, queue={"concurrency": 1})
        cfg["routes"].insert(0, {
            "name": "limited", "match": {"path": "/limited"}, "cluster": "app",
            "rate_limit": {"key": "header:x-api-key", "rate": "1/s", "burst": 1}})
        f = self.start_ficus(cfg)
        # The first telemetry tick only takes the baseline: what came before it is no interval's.
        self.assertTrue(wait_until(lambda: self.last_tick(f) > 0, 15 * TIME_FACTOR))
        for i in range(60):
            self.assertEqual(offload(f.port, b"job-%d" % i).status, 202)
        refused = 0
        for _ in range(30):
            r = request(f.port, "POST", "/limited", headers={"X-Api-Key": "scraper"}, body=b"x")
            refused += r.status == 429
        self.assertGreater(refused, 20)
        # SIGTERM: the telemetry thread's last tick, after the queues stopped, takes their final
        # counts (and the route's limited keys) into the store.
        f.stop()

        db = sqlite3.connect(os.path.join(data, "ficus.db"))
        rows = db.execute("SELECT route, key, SUM(count) FROM limited_keys GROUP BY route, key")
        self.assertEqual(rows.fetchall(), [("limited", "key:scraper", refused)])
        db.close()

        path = os.path.join(self.dir, "ficus.yaml")
        with open(path, "w") as out:
            json.dump(cfg, out)  # JSON is YAML
        r = subprocess.run([FICUS_BIN, "report", "-c", path, "--period", "10m", "--format",
                            "json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(len(doc["queues"]), 1, doc["queues"])
        q = doc["queues"][0]
        self.assertEqual(q["name"], "signup")
        self.assertEqual(q["enqueued"], 60)
        self.assertEqual(q["concurrency"], 1)
        self.assertLess(q["succeeded"], 40)  # one at a time, 0.5 s each
        self.assertGreater(q["backlog_end"], 20)
        self.assertTrue(q["growing"])
        kinds = [x["kind"] for x in doc["findings"]]
        self.assertIn("queue_backlog", kinds)
        backlog = doc["findings"][kinds.index("queue_backlog")]
        self.assertIn("raise the queue's `concurrency` from 1", backlog["remedy"])
