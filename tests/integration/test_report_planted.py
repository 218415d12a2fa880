"""The report's acceptance test: an application with planted problems of known size
(planted_app.py) and its healthy twin, each behind a real ficus, each given the same bounded
`ficus assess` of its write route and the same traffic shape (a mix of reads, writes, a feed and
health checks from eight API keys; on the planted side a scraper key sends 45 % of it). The
report must name every planted problem with its remedy and raise nothing on the twin:

  slow, uncached catalog whose bodies repeat  -> cache finding on catalog, with a cache snippet
  writes whose errors grow with concurrency   -> errors finding on orders, a per-route
                                                  concurrency limit (not the cluster's breaker)
  one API key with 45 % of the traffic        -> noisy client key:scraper, a rate limit
  a feed whose bodies never repeat            -> no cache finding (max-age=60 or not)
  a cheap health check                        -> no finding at all
"""

import json
import os
import subprocess
import unittest

import planted_app
from harness import FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config

TOKEN = "planted-admin-token-0123456789abcdef"
TRAFFIC = """\
target: http://127.0.0.1:%(port)d
rate: 60
duration: 12s
seed: 11
variables:
  user: { pick: [u1, u2, u3, u4, u5, u6, u7, u8] }
  id: { random_int: [1, 20] }
requests:
  - { name: browse, weight: %(browse)d, path: "/catalog/items/{{id}}",
      headers: { X-Api-Key: "{{user}}" } }
  - { name: scrape, weight: %(scrape)d, path: "/catalog/items/{{id}}",
      headers: { X-Api-Key: scraper } }
  - { name: order, weight: 8, method: POST, path: /orders,
      headers: { X-Api-Key: "{{user}}", Content-Type: application/json }, body: '{"id": {{id}}}' }
  - { name: feed, weight: 5, path: /feed, headers: { X-Api-Key: "{{user}}" } }
  - { name: health, weight: 2, path: /health }
"""


class PlantedReportTest(FicusTestCase):
    def report_of(self, healthy):
        app = planted_app.start(healthy)
        self.addCleanup(app.server_close)
        self.addCleanup(app.shutdown)
        routes = [
            {"name": "catalog", "match": {"path_prefix": "/catalog/", "methods": ["GET", "HEAD"]},
             "cluster": "app"},
            {"name": "orders", "match": {"path": "/orders", "methods": ["POST"]},
             "cluster": "app"},
            {"name": "feed", "match": {"path": "/feed"}, "cluster": "app"},
            {"name": "health", "match": {"path": "/health"}, "cluster": "app"},
        ]
        cfg = make_config({"app": [endpoint(app.server_address[1])]}, routes, workers=2,
                          admin={"token": TOKEN}, telemetry={"repeat_sample": 1})
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        traffic = os.path.join(f.workdir, "traffic.yaml")
        with open(traffic, "w") as out:
            # The twin's catalog gets the scraper's share from its ordinary users.
            out.write(TRAFFIC % {"port": f.port, "browse": 85 if healthy else 40,
                                 "scrape": 0 if healthy else 45})
        env = {k: v for k, v in os.environ.items() if k != "FICUS_ADMIN_TOKEN"}

        def ficus(*args):
            r = subprocess.run([FICUS_BIN, *args], capture_output=True, text=True, env=env,
                               cwd=f.workdir, timeout=90 * TIME_FACTOR)
            self.assertIn(r.returncode, (0, 3), r.stdout + r.stderr)
            return r

        # The write route's step load (with the admin token: ficus's own, kept apart), then the
        # users' traffic (without it: users).
        ficus("assess", "-c", f.config_path, "--routes", "orders", "--max-rate", "200",
              "--max-duration", "8s", "--steps", "4")
        ficus("load", traffic, "--timeout", "5s")
        self.assertEqual(f.stop(), 0)  # the telemetry thread writes the last interval
        out = os.path.join(f.workdir, "report.json")
        ficus("report", "-c", f.config_path, "--period", "10m", "--format", "json", "-o", out)
        with open(out) as fh:
            return json.load(fh)

    def test_planted_problems_are_named_with_their_remedies(self):
        report = self.report_of(healthy=False)
        findings = {(f["kind"], f["route"]): f for f in report["findings"]}
        described = json.dumps(report["findings"], indent=1)

        cache = findings.get(("cache", "catalog"))
        self.assertIsNotNone(cache, described)
        self.assertIn("cache: { ttl:", cache["snippet"])

        errors = findings.get(("trigger.errors", "orders"))
        self.assertIsNotNone(errors, described)
        self.assertIn("grow with concurrency", errors["remedy"])
        self.assertIn("concurrency: { max:", errors["snippet"])
        self.assertNotIn("circuit_breakers", errors["snippet"])

        self.assertEqual([n["key"] for n in report["noisy_clients"]], ["key:scraper"],
                         report["noisy_clients"])
        noisy = findings.get(("noisy_client", "*"))
        self.assertIsNotNone(noisy, described)
        self.assertIn("rate_limit: { key: \"header:X-Api-Key\"", noisy["snippet"])

        routes = {r["name"]: r for r in report["routes"]}
        self.assertEqual(routes["feed"]["repeat_ratio"], 0, routes["feed"])
        for (kind, route), f in findings.items():
            self.assertNotEqual(route, "health", f)
            self.assertFalse(kind == "cache" and route == "feed", f)

    def test_the_healthy_twin_raises_nothing(self):
        twin = self.report_of(healthy=True)
        self.assertEqual(twin["noisy_clients"], [])
        self.assertEqual(twin["findings"], [], json.dumps(twin["findings"], indent=1))


if __name__ == "__main__":
    unittest.main()
