"""`ficus assess` and `ficus report` end to end: the shop behind a real ficus, a step load and
the demo's traffic mix through it, then the report read from the telemetry store finds the
planted problems it has data for (slow report, slow small-response signup, checkout errors
under concurrency, the noisy API key) with their remedies, in every format; the HTML page renders in headless
Chromium (Debian's, driven by playwright-core) with its sections and charts and no console
errors. The analysis of every planted problem and of a healthy upstream on written telemetry
is in tests/advisor/advisor_test.cc."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from harness import FICUS_BIN, ROOT, TIME_FACTOR, _die_with_parent, free_port, request, wait_until

SHOP_DIR = os.path.join(ROOT, "examples", "shop")
WEB_DIR = os.path.join(ROOT, "tests", "web")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class ReportEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(FICUS_BIN):
            raise unittest.SkipTest("ficus binary not found at %s" % FICUS_BIN)
        cls.dir = tempfile.mkdtemp(prefix="ficus-report-")
        cls.shop = subprocess.Popen([sys.executable, os.path.join(SHOP_DIR, "shop.py"), "--port",
                                     "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        line = cls.shop.stdout.readline().decode()
        assert line.startswith("READY "), line
        shop_port = int(line.split()[1])
        cls.port, admin = free_port(), free_port()
        with open(os.path.join(SHOP_DIR, "ficus.yaml")) as f:
            text = f.read()
        text = (text.replace("127.0.0.1:3000", "127.0.0.1:%d" % shop_port)
                .replace("127.0.0.1:8080", "127.0.0.1:%d" % cls.port)
                .replace("listen: 127.0.0.1:9901",
                         "listen: 127.0.0.1:%d, token: report-test-token-0123456789" % admin))
        text += "\ndata_dir: %s\n" % os.path.join(cls.dir, "data")
        # The traffic here is scaled down in time (15 s, not the demo's minute), so every routed
        # GET is a cacheability sample instead of the default 1 in 32.
        text += "telemetry: { repeat_sample: 1 }\n"
        cls.config = os.path.join(cls.dir, "ficus.yaml")
        with open(cls.config, "w") as f:
            f.write(text)
        with open(os.path.join(SHOP_DIR, "traffic.yaml")) as f:
            traffic = f.read().replace("127.0.0.1:8080", "127.0.0.1:%d" % cls.port)
        cls.traffic = os.path.join(cls.dir, "traffic.yaml")
        with open(cls.traffic, "w") as f:
            f.write(traffic)
        log = open(os.path.join(cls.dir, "ficus.log"), "wb")
        cls.ficus = subprocess.Popen([FICUS_BIN, "run", "-c", cls.config], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=cls.dir, preexec_fn=_die_with_parent)
        log.close()

        def ready():
            try:
                return request(admin, "GET", "/ready", timeout=1).status == 200
            except OSError:
                return False
        assert wait_until(ready, 10 * TIME_FACTOR), "ficus did not become ready"
        # A bounded step load on two routes, then the traffic mix (scaled down in time).
        cls.assess = cls.run_ficus("assess", "-c", cls.config, "--routes", "catalog,checkout",
                                   "--max-rate", "120", "--max-duration", "8s", "--steps", "4")
        cls.load = cls.run_ficus("load", cls.traffic, "--rate", "100", "--duration", "15s")
        # SIGTERM: ficus drains and its telemetry thread writes the last interval.
        cls.ficus.send_signal(signal.SIGTERM)
        cls.ficus.wait(30)
        cls.outputs = {}
        for fmt in ("text", "markdown", "json", "html"):
            out = os.path.join(cls.dir, "report." + fmt)
            r = cls.run_ficus("report", "-c", cls.config, "--period", "10m", "--format", fmt,
                              "-o", out, "--instance-price", "50/month", "--active-users", "400")
            assert r.returncode == 0, r.stderr
            with open(out) as f:
                cls.outputs[fmt] = f.read()

    @classmethod
    def run_ficus(cls, *args):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                              timeout=120 * TIME_FACTOR, cwd=cls.dir)

    @classmethod
    def tearDownClass(cls):
        for p in (getattr(cls, "ficus", None), getattr(cls, "shop", None)):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if getattr(cls, "shop", None) is not None:
            cls.shop.stdout.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_assess_prints_and_records_the_knees(self):
        self.assertEqual(self.assess.returncode, 0, self.assess.stderr)
        # (">= X": every step passed, a lower bound)
        self.assertRegex(self.assess.stdout, r"route:catalog\s+(>= )?\d+\.\d")
        self.assertRegex(self.assess.stdout, r"route:checkout\s+\d+\.\d")
        report = json.loads(self.outputs["json"])
        targets = {a["target"] for a in report["assessments"]}
        self.assertEqual(targets, {"route:catalog", "route:checkout"})
        # With the admin token, assess registered its key: both windows are marked synthetic
        # and their requests are kept out of the SLOs.
        windows = {w["target"]: w for w in report["synthetic_windows"]}
        self.assertEqual(set(windows), targets)
        for w in windows.values():
            self.assertTrue(w["slo_excluded"], w)
            self.assertGreater(w["synthetic_requests"], 0, w)
        self.assertIn("kept out of the SLOs", self.outputs["text"])

    def test_traffic_mix_loads(self):
        self.assertEqual(self.load.returncode, 0, self.load.stderr)
        self.assertIn("completed", self.load.stdout)

    def test_report_finds_planted_problems_with_remedies(self):
        report = json.loads(self.outputs["json"])
        routes = {r["name"]: r for r in report["routes"]}
        for name in ("catalog", "cart", "checkout", "signup", "reports", "health"):
            self.assertIn(name, routes)
        self.assertGreater(routes["catalog"]["share"], routes["cart"]["share"])
        findings = {(f["kind"], f["route"]): f for f in report["findings"]}
        slow = findings.get(("slow", "reports")) or findings.get(("trigger.p99", "reports"))
        self.assertIsNotNone(slow, report["findings"])
        self.assertIn("cache", slow["remedy"])
        self.assertIn(("offload", "signup"), findings)
        self.assertIn("offload: { queue: signup", findings[("offload", "signup")]["snippet"])
        errors = findings.get(("trigger.errors", "checkout"))
        self.assertIsNotNone(errors, report["findings"])
        # A limit on this route (not the cluster's breaker, which would cap every route).
        self.assertIn("concurrency: { max:", errors["snippet"])
        self.assertNotIn("circuit_breakers", errors["snippet"])
        # The proxy's per-route heavy-hitter sketches found the scraper (the assessment's own
        # key is not a client).
        noisy = {n["key"]: n for n in report["noisy_clients"]}
        self.assertEqual(list(noisy), ["key:partner-scraper-7"], report["noisy_clients"])
        self.assertGreater(noisy["key:partner-scraper-7"]["share"], 0.3)
        self.assertIn("rate_limit: { key: \"header:X-Api-Key\"",
                      findings[("noisy_client", "*")]["snippet"])
        # The catalog's bodies repeat for the same URL (measured live by the proxy's sampled body
        # hashes): a cache finding with its hit rate, TTL and snippet.
        cache = findings.get(("cache", "catalog"))
        self.assertIsNotNone(cache, report["findings"])
        catalog = routes["catalog"]
        self.assertGreaterEqual(catalog["repeat_samples"], 100, catalog)
        self.assertGreaterEqual(catalog["repeat_ratio"], 0.95, catalog)
        self.assertIn("cache: { ttl: 30s", cache["snippet"])
        self.assertRegex(cache["remedy"], r"estimated hit rate (9[5-9]|100)%")
        # The sales report is stamped with when it was computed: its body changes every time,
        # so no cache finding (its slow-read remedy says precompute or cache with a short TTL
        # that accepts the lag); checkout and signup are POSTs.
        self.assertGreaterEqual(routes["reports"]["repeat_samples"], 10, routes["reports"])
        self.assertEqual(routes["reports"]["repeat_ratio"], 0, routes["reports"])
        for route in ("reports", "checkout", "signup", "cart"):
            self.assertNotIn(("cache", route), findings)
        # Nothing to say about the fast, error-free routes.
        for kind, route in findings:
            self.assertNotIn(route, ("cart", "health"), findings[(kind, route)])
        self.assertEqual(len(report["growth"]), 4)
        self.assertEqual(report["active_users"], 400)

    def test_every_format_carries_the_findings(self):
        self.assertIn("Findings (most severe first)", self.outputs["text"])
        self.assertIn("## Risk matrix", self.outputs["markdown"])
        for fmt in ("text", "markdown", "html"):
            self.assertIn("checkout", self.outputs[fmt])
            self.assertIn("signup", self.outputs[fmt])
        self.assertNotIn("http://", re.sub(r"<[^>]*xmlns[^>]*>", "", self.outputs["html"]))

    @unittest.skipUnless(CHROMIUM, "chromium is not installed (scripts/install-deps.sh installs it)")
    def test_html_report_renders_in_chromium(self):
        if not os.path.isdir(os.path.join(WEB_DIR, "node_modules", "playwright-core")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=WEB_DIR, check=True,
                           capture_output=True, timeout=300)
        r = subprocess.run(["node", os.path.join(WEB_DIR, "check_report.js"),
                            os.path.join(self.dir, "report.html"), CHROMIUM],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        seen = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertTrue(seen["ok"], seen)
        self.assertIn("trigger.errors", seen["findings"])
        self.assertGreater(seen["charts"]["chart-requests"]["marks"], 3)


if __name__ == "__main__":
    unittest.main()
