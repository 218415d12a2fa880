"""The SLO as Prometheus computes it equals the SLO as ficus computes it: a real Prometheus
(Debian package) scrapes a gateway every second and evaluates the rules `ficus slo rules` wrote
for a 2 s latency objective; after requests on both sides of 2 s, the rules' error ratio (over
the SLO window and over 5m) is exactly GET /slo's, because the threshold is an `le` bound of the
route's duration histogram on /metrics and the same bucket edge the SLO engine counts."""

import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config, request,
                     wait_until)
from prometheus_server import PROMETHEUS, Prometheus


class SloPrometheusTest(FicusTestCase):
    @unittest.skipUnless(PROMETHEUS, "prometheus not installed (Debian package prometheus)")
    def test_rules_error_ratio_equals_slo_endpoint(self):
        up = self.start_upstream("slo-prom")
        cfg = make_config(
            [{"name": "app", "endpoints": [endpoint(up.port)]}],
            [{"name": "api", "match": {"path_prefix": "/"}, "cluster": "app"}],
            workers=2, telemetry={"slo_interval": "200ms"},
            slos=[{"name": "lat", "routes": ["api"],
                   "latency": {"threshold": "2s", "objective": "90%"}}])
        f = self.start_ficus(cfg)

        workdir = tempfile.mkdtemp(prefix="ficus-slo-prom-")
        self.addCleanup(shutil.rmtree, workdir, True)
        rules = os.path.join(workdir, "rules.yml")
        r = subprocess.run([FICUS_BIN, "slo", "rules", "-c", f.config_path, "-o", rules],
                           capture_output=True, text=True, timeout=30 * TIME_FACTOR)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("note:", r.stderr)
        with open(rules) as fh:
            self.assertIn('ficus_route_request_duration_seconds_bucket{route=~"api",le="2"}',
                          fh.read())
        prom = Prometheus(self, f.admin_port, rule_files=[rules])
        query, prom_log = prom.query, prom.log_tail

        # A zero sample of every series before the traffic, so increase() sees all of it.
        count = 'sum(ficus_route_request_duration_seconds_count{route="api"})'
        within = 'sum(ficus_route_request_duration_seconds_bucket{route="api",le="2"})'
        self.assertTrue(wait_until(lambda: query(count) == 0 and query(within) == 0,
                                   20 * TIME_FACTOR, interval=0.25), prom_log())

        # 10 fast, 4 at 1.5 s (within 2 s), 3 at 2.4 s (over): all at once, ~2.5 s in all.
        delays = [0] * 10 + [1500] * 4 + [2400] * 3
        statuses = []

        def one(ms):
            statuses.append(request(f.port, "GET", "/delay?ms=%d" % ms,
                                    timeout=15 * TIME_FACTOR).status)
        threads = [threading.Thread(target=one, args=(ms,)) for ms in delays]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30 * TIME_FACTOR)
        self.assertEqual(statuses, [200] * len(delays))
        total, bad = len(delays), 3

        # /metrics: le="2" is a bucket, counted exactly.
        m = f.settled_metrics()
        self.assertEqual(m.get("ficus_route_request_duration_seconds_bucket", route="api",
                               le="2"), total - bad)
        self.assertEqual(m.get("ficus_route_request_duration_seconds_count", route="api"), total)

        # GET /slo: evaluated every 200 ms from the telemetry store and the live counters.
        def slo():
            s = request(f.admin_port, "GET", "/slo").json()["slos"][0]
            return s if s["total"] == total else None
        s = wait_until(slo, 10 * TIME_FACTOR, interval=0.2)
        self.assertTrue(s, request(f.admin_port, "GET", "/slo").body)
        self.assertEqual((s["good"], s["total"]), (total - bad, total))
        slo_ratio = (s["total"] - s["good"]) / s["total"]
        self.assertAlmostEqual(s["burn_rates"]["5m"], slo_ratio / 0.1, places=4)  # 6 digits

        # Prometheus: once a scrape holds every request, the next rule evaluations (every
        # second) see it. increase() extrapolates to the window's end, the ratio's two rates by
        # the same factor (one scrape's samples), so the ratio is exact.
        self.assertTrue(wait_until(lambda: query(count) == total and query(within) == total - bad,
                                   20 * TIME_FACTOR, interval=0.25),
                        "count %r\n%s" % (query(count), prom_log()))
        time.sleep(2.5)
        sel = '{slo="lat",sli="latency"}'
        ratio_30d = lambda: query("ficus_slo:error_ratio:rate30d" + sel)
        self.assertIsNotNone(ratio_30d(), prom_log())
        self.assertAlmostEqual(ratio_30d(), slo_ratio, places=12)
        self.assertAlmostEqual(query("ficus_slo:error_ratio:rate5m" + sel), slo_ratio, places=12)
        self.assertAlmostEqual(slo_ratio, bad / total, places=12)


if __name__ == "__main__":
    unittest.main()
