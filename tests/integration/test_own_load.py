"""ficus's own load is not users' traffic. `ficus load` (and `ficus replay`) given the gateway's
admin API and token register a synthetic key and send it on every request; the gateway keeps
those requests out of the heavy client keys, the distinct clients and the cacheability samples,
and `ficus report` takes them out of every users' figure (counts, shares, percentiles, peaks,
the noisy-client share) and shows them apart. A run without the token still counts, as before.
Offline commands (`check`, `report`, `slo rules`) run without the admin token's variable."""

import json
import os
import subprocess
import unittest

from harness import FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config, request

TOKEN = "own-load-admin-token-0123456789abcdef"


class OwnLoadTest(FicusTestCase):
    def cli(self, f, *args, env=None):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True, cwd=f.workdir,
                              timeout=60 * TIME_FACTOR, env=env)

    def report(self, f):
        out = os.path.join(f.workdir, "report.json")
        r = self.cli(f, "report", "-c", f.config_path, "--period", "10m", "--format", "json",
                     "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out) as fh:
            return json.load(fh)

    def test_marked_load_stays_out_of_users_figures(self):
        up = self.start_upstream("own-load")
        routes = [{"name": "api", "match": {"path_prefix": "/echo"}, "cluster": "app"},
                  {"name": "health", "match": {"path": "/status/200"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, admin={"token": TOKEN},
                          telemetry={"repeat_sample": 1})
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        # Users: one client sends 60 % of the requests, eight others 5 each.
        for _ in range(60):
            self.assertEqual(request(f.port, "GET", "/echo",
                                     headers=[("X-Api-Key", "heavy")]).status, 200)
        for i in range(8):
            for _ in range(5):
                self.assertEqual(request(f.port, "GET", "/echo",
                                         headers=[("X-Api-Key", "user-%d" % i)]).status, 200)
        # ficus's own load: 2 s at 150 req/s on the health check, marked.
        r = self.cli(f, "load", "http://127.0.0.1:%d/status/200" % f.port, "--rate", "150",
                     "--duration", "2s", "-H", "X-Api-Key: loadgen", "--admin",
                     "http://127.0.0.1:%d" % f.admin_port, "--admin-token", TOKEN, "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # The route's metrics keep every request.
        health_total = f.metrics().sum("ficus_route_requests_total", route="health")
        self.assertGreaterEqual(health_total, 250)
        self.assertEqual(f.stop(), 0)

        rep = self.report(f)
        by_name = {rr["name"]: rr for rr in rep["routes"]}
        self.assertEqual(by_name["api"]["requests"], 100)
        self.assertNotIn("health", by_name, "the health check had only ficus's load")
        self.assertEqual(rep["requests"], 100)
        self.assertEqual(rep["synthetic_requests"], health_total, rep["synthetic"])
        # The peak is the users': 100 requests in at most two 10 s intervals, not 150 req/s.
        self.assertLess(rep["peak_rps"], 12)
        noisy = {n["key"]: n for n in rep["noisy_clients"]}
        self.assertIn("key:heavy", noisy, rep["noisy_clients"])
        self.assertAlmostEqual(noisy["key:heavy"]["share"], 0.6, places=2)
        self.assertNotIn("key:loadgen", noisy)
        text = self.cli(f, "report", "-c", f.config_path, "--period", "10m").stdout
        self.assertIn("ficus's own load", text)

    def test_unmarked_load_counts_and_a_bad_token_refuses_to_run(self):
        up = self.start_upstream("own-load-2")
        routes = [{"name": "api", "match": {"path_prefix": "/echo"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, admin={"token": TOKEN})
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        url = "http://127.0.0.1:%d/echo" % f.port
        r = self.cli(f, "load", url, "--rate", "50", "--duration", "1s", "--admin",
                     "http://127.0.0.1:%d" % f.admin_port, "--admin-token", "wrong")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("cannot mark the run as ficus's own load", r.stderr)
        self.assertIn("401", r.stderr)
        r = self.cli(f, "load", url, "--rate", "50", "--duration", "1s")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(f.stop(), 0)
        rep = self.report(f)
        self.assertEqual({rr["name"]: rr["requests"] for rr in rep["routes"]}["api"], 50)
        self.assertEqual(rep["synthetic_requests"], 0)

    def test_offline_commands_need_no_admin_token_variable(self):
        up = self.start_upstream("own-load-3")
        routes = [{"name": "api", "match": {"path_prefix": "/echo"}, "cluster": "app"}]
        slos = [{"name": "api", "routes": ["api"], "availability": "99%",
                 "latency": {"threshold": "2s", "objective": "99%"}}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, slos=slos,
                          admin={"token": "${FICUS_OWN_LOAD_TEST_TOKEN}"})
        cfg["data_dir"] = "data"
        # The harness passes our environment on: the variable is set for the gateway only.
        os.environ["FICUS_OWN_LOAD_TEST_TOKEN"] = TOKEN
        try:
            f = self.start_ficus(cfg)
        finally:
            del os.environ["FICUS_OWN_LOAD_TEST_TOKEN"]
        self.assertEqual(request(f.port, "GET", "/echo").status, 200)
        self.assertEqual(f.stop(), 0)
        bare = {k: v for k, v in os.environ.items() if k != "FICUS_OWN_LOAD_TEST_TOKEN"}
        r = self.cli(f, "check", "-c", f.config_path, env=bare)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("FICUS_OWN_LOAD_TEST_TOKEN is not set", r.stderr)
        r = self.cli(f, "slo", "rules", "-c", f.config_path, env=bare)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("groups:", r.stdout)
        r = self.cli(f, "report", "-c", f.config_path, "--period", "10m", "--format", "json",
                     env=bare)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["requests"], 1)
        # `ficus run` still needs it.
        r = subprocess.run([FICUS_BIN, "run", "-c", f.config_path], capture_output=True,
                           text=True, cwd=f.workdir, timeout=30 * TIME_FACTOR, env=bare)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("FICUS_OWN_LOAD_TEST_TOKEN is not set", r.stderr)


if __name__ == "__main__":
    unittest.main()
