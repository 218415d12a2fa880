"""No false alarm on a healthy configuration, end to end: a fast, error-free upstream
(upstream.py in its own process; its /echo bodies carry the request id, so they never repeat)
behind a real ficus with SLOs, a bounded `ficus assess`, then an even traffic mix (eight API
keys picked uniformly, no hot key, reads and writes); `ficus report --format json` then raises
no finding, names no noisy client, and every SLO is ok. The planted-problem counterpart is
test_report.py."""

import json
import os
import subprocess
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, UpstreamProcess, endpoint,
                     make_config)

SCENARIO = """\
target: http://127.0.0.1:%(port)d
rate: 60
duration: 10s
seed: 7
variables:
  user: { pick: [u1, u2, u3, u4, u5, u6, u7, u8] }
  id: { random_int: [1, 500] }
requests:
  - { name: list, weight: 40, method: GET, path: /echo/items, headers: { X-Api-Key: "{{user}}" } }
  - { name: item, weight: 30, method: GET, path: "/echo/items/{{id}}",
      headers: { X-Api-Key: "{{user}}" } }
  - { name: order, weight: 20, method: POST, path: /echo/orders,
      headers: { X-Api-Key: "{{user}}", Content-Type: application/json }, body: '{"id": {{id}}}' }
  - { name: health, weight: 10, method: GET, path: /echo/health,
      headers: { X-Api-Key: "{{user}}" } }
"""


class HealthyReportTest(FicusTestCase):
    def test_healthy_configuration_raises_no_false_alarm(self):
        up = UpstreamProcess("healthy")
        self.addCleanup(up.stop)
        routes = [
            {"name": "items", "match": {"path_prefix": "/echo/items", "methods": ["GET", "HEAD"]},
             "cluster": "app"},
            {"name": "orders", "match": {"path": "/echo/orders", "methods": ["POST"]},
             "cluster": "app"},
            {"name": "health", "match": {"path": "/echo/health"}, "cluster": "app"},
        ]
        slos = [{"name": "storefront", "routes": ["items", "orders"], "availability": "99.9%",
                 "latency": {"threshold": "250ms", "objective": "99%"}},
                {"name": "health", "routes": ["health"], "availability": "99%"}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, workers=2, slos=slos,
                          telemetry={"repeat_sample": 1})
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        config = f.config_path
        scenario = os.path.join(f.workdir, "traffic.yaml")
        with open(scenario, "w") as out:
            out.write(SCENARIO % {"port": f.port})

        def ficus(*args):
            r = subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                               cwd=f.workdir, timeout=90 * TIME_FACTOR)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return r

        ficus("assess", "-c", config, "--routes", "items,orders", "--max-rate", "80",
              "--max-duration", "6s", "--steps", "2")
        ficus("load", scenario)  # 10 s at 60 req/s (the scenario)
        self.assertEqual(f.stop(), 0)  # the telemetry thread writes the last interval
        out = os.path.join(f.workdir, "report.json")
        ficus("report", "-c", config, "--period", "10m", "--format", "json", "-o", out)
        with open(out) as fh:
            report = json.load(fh)

        routes = {r["name"]: r for r in report["routes"]}
        self.assertEqual(set(routes), {"items", "orders", "health"}, routes)
        self.assertGreater(report["requests"], 500, report)
        # The measurements the findings would come from are there...
        self.assertGreaterEqual(routes["items"]["repeat_samples"], 100, routes["items"])
        self.assertEqual(routes["items"]["repeat_ratio"], 0, routes["items"])
        self.assertEqual([a["target"] for a in report["assessments"]], ["route:items",
                                                                         "route:orders"])
        # ...and none of them crosses a line: no trigger, no cache or offload candidate, no
        # noisy client, no correlation, every SLO ok.
        self.assertEqual(report["findings"], [], json.dumps(report["findings"], indent=1))
        self.assertEqual(report["noisy_clients"], [])
        self.assertEqual(len(report["slos"]), 3, report["slos"])  # storefront x2 SLIs, health
        for s in report["slos"]:
            self.assertEqual(s["state"], "ok", s)
            self.assertGreater(s["requests"], 0, s)
        for r in routes.values():
            self.assertEqual(r["errors"], 0, r)


if __name__ == "__main__":
    unittest.main()
