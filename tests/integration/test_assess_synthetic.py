"""Assessment traffic vs SLOs: `ficus assess` registers a per-run secret through the
authenticated admin API (POST /synthetic-key) and sends it in X-Ficus-Synthetic; ficus counts
those requests in the route's metrics but keeps them out of the SLO counts, so an assessment
that pushes a route past its knee burns no error budget. Requests with a wrong or expired key,
and attempts to register a key without the admin token, change nothing (and are audited). The
report marks the assessment windows as synthetic."""

import json
import os
import subprocess
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config, request,
                     wait_until)

TOKEN = "assess-admin-token-0123456789abcdef"
WRONG_KEY = "0123456789abcdef0123456789abcdef"


class AssessSyntheticTest(FicusTestCase):
    def ficus_cli(self, f, *args):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True, cwd=f.workdir,
                              timeout=60 * TIME_FACTOR)

    def slo(self, f):
        return {s["slo"]: s for s in request(f.admin_port, "GET", "/slo").json()["slos"]}

    def route_requests(self, f):
        return f.metrics().sum("ficus_route_requests_total", route="flaky")

    def test_assessment_requests_stay_out_of_the_slos(self):
        up = self.start_upstream("synthetic")
        routes = [{"name": "flaky", "match": {"path": "/status/503"}, "cluster": "app"}]
        slos = [{"name": "flaky", "routes": ["flaky"], "availability": "99%", "min_requests": 5}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, admin={"token": TOKEN},
                          slos=slos, telemetry={"slo_interval": "200ms"})
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)

        # Users: 20 requests, all 503 (the SLO counts them).
        for _ in range(20):
            self.assertEqual(request(f.port, "GET", "/status/503").status, 503)
        # A key nobody registered does not take a request out of the SLOs.
        for _ in range(5):
            r = request(f.port, "GET", "/status/503", headers=[("X-Ficus-Synthetic", WRONG_KEY)])
            self.assertEqual(r.status, 503)
        # Nor can anyone register a key without the admin token (401, audited).
        r = request(f.admin_port, "POST", "/synthetic-key",
                    headers=[("Content-Type", "application/json")],
                    body=json.dumps({"key": WRONG_KEY}))
        self.assertEqual(r.status, 401)
        for _ in range(5):
            r = request(f.port, "GET", "/status/503", headers=[("X-Ficus-Synthetic", WRONG_KEY)])
            self.assertEqual(r.status, 503)
        # A bad key is refused with the token too.
        r = request(f.admin_port, "POST", "/synthetic-key",
                    headers=[("Authorization", "Bearer " + TOKEN)], body='{"key":"short"}')
        self.assertEqual(r.status, 400)

        # The assessment: every request fails, the first step stops it.
        a = self.ficus_cli(f, "assess", "-c", f.config_path, "--routes", "flaky", "--max-rate",
                           "40", "--max-duration", "2s", "--steps", "1")
        self.assertEqual(a.returncode, 0, a.stdout + a.stderr)
        self.assertNotIn("count in the SLOs", a.stderr)
        synthetic = self.route_requests(f) - 30
        self.assertGreaterEqual(synthetic, 40, "the step load reached the route's metrics")

        # The key is cleared at the end of the run: the same header no longer matches. We do not
        # know the key, so check the admin side: the audit shows a set and a clear.
        audit = request(f.admin_port, "GET", "/audit").json()["audit"]
        mine = [(e["who"], e["outcome"], e["detail"]) for e in audit
                if e["action"] == "POST /synthetic-key"]
        self.assertIn(("anonymous", "unauthorized", ""), mine)
        self.assertIn(("token", "ok", "cleared"), mine)
        self.assertTrue(any(w == "token" and o == "ok" and d.startswith("set") for w, o, d in mine),
                        mine)

        # The SLO counts the 30 users' requests only.
        def counted():
            s = self.slo(f)["flaky"]
            return s if s["total"] == 30 and s["requests"]["5m"] == 30 else None
        s = wait_until(counted, 15 * TIME_FACTOR)
        self.assertIsNotNone(s, self.slo(f))
        self.assertEqual(s["good"], 0)

        self.assertEqual(f.stop(), 0)
        out = os.path.join(f.workdir, "report.json")
        r = self.ficus_cli(f, "report", "-c", f.config_path, "--period", "10m", "--format",
                           "json", "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as fh:
            report = json.load(fh)
        windows = report["synthetic_windows"]
        self.assertEqual(len(windows), 1, windows)
        self.assertEqual(windows[0]["target"], "route:flaky")
        self.assertTrue(windows[0]["slo_excluded"])
        self.assertEqual(windows[0]["synthetic_requests"], synthetic)
        # The report's SLO uses the same counts, and so do its users' figures: the step load
        # is shown apart.
        slo = {s["id"]: s for s in report["slos"]}["flaky/availability"]
        self.assertEqual(slo["requests"], 30, slo)
        self.assertEqual({r["name"]: r["requests"] for r in report["routes"]}["flaky"], 30)
        self.assertEqual(report["synthetic_requests"], synthetic)
        # Every request of its one step failed: no knee, and the table says so.
        flaky = {r["name"]: r for r in report["routes"]}["flaky"]
        self.assertEqual(flaky["assessed"], "failed_first")
        r = self.ficus_cli(f, "report", "-c", f.config_path, "--period", "10m")
        self.assertIn("route:flaky", r.stdout)
        self.assertIn("kept out of the SLOs", r.stdout)

    def test_without_an_admin_token_assess_says_its_load_counts(self):
        up = self.start_upstream("synthetic2")
        routes = [{"name": "api", "match": {"path": "/echo"}, "cluster": "app"}]
        slos = [{"name": "api", "routes": ["api"], "availability": "99%"}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, slos=slos)
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        a = self.ficus_cli(f, "assess", "-c", f.config_path, "--routes", "api", "--max-rate",
                           "20", "--max-duration", "1s", "--steps", "1")
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertIn("admin.token is not set: the step load will count in the SLOs", a.stderr)
        self.assertEqual(f.stop(), 0)
        r = self.ficus_cli(f, "report", "-c", f.config_path, "--period", "10m", "--format",
                           "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        windows = json.loads(r.stdout)["synthetic_windows"]
        self.assertEqual([(w["target"], w["slo_excluded"]) for w in windows],
                         [("route:api", False)])


if __name__ == "__main__":
    unittest.main()
