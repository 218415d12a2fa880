"""examples/shop: the sample application's planted problems are really there (the slow report,
the slow signup with a tiny response, a catalog that repeats identical bodies without cache
headers, checkout errors that rise with concurrency), its normal endpoints are fast, the demo's
traffic mix only sends requests the shop serves, and examples/shop/ficus.yaml is a valid config
whose SLO rules pass promtool."""

import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from harness import FICUS_BIN, ROOT, TIME_FACTOR, _die_with_parent, request

SHOP_DIR = os.path.join(ROOT, "examples", "shop")
SHOP = os.path.join(SHOP_DIR, "shop.py")


def timed(port, method, path, headers=None, body=None):
    start = time.monotonic()
    r = request(port, method, path, headers=headers, body=body, timeout=10)
    return r, time.monotonic() - start


class ShopTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = subprocess.Popen([sys.executable, SHOP, "--port", "0"], stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent)
        line = cls.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            cls.proc.kill()
            raise AssertionError("shop did not start: %r" % line)
        cls.port = int(line.split()[1])

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        try:
            cls.proc.wait(5)
        except subprocess.TimeoutExpired:
            cls.proc.kill()
            cls.proc.wait()
        cls.proc.stdout.close()

    def test_fast_endpoints(self):
        for method, path, body in [("GET", "/health", None), ("GET", "/api/cart", None),
                                   ("POST", "/api/cart/items", '{"product_id": 3}')]:
            r, took = timed(self.port, method, path, headers={"X-Api-Key": "fast-test"},
                            body=body)
            self.assertIn(r.status, (200, 201), r)
            # Below the slow endpoints' floor (0.3 s), with room for a busy machine.
            self.assertLess(took, 0.3, path)
        cart = request(self.port, "GET", "/api/cart", headers={"X-Api-Key": "fast-test"}).json()
        self.assertEqual(cart["items"], [3])

    def test_slow_sales_report(self):
        for _ in range(3):
            r, took = timed(self.port, "GET", "/api/reports/sales")
            self.assertEqual(r.status, 200, r)
            self.assertGreaterEqual(took, 0.4)
            self.assertLess(took, 1.5 + 1.5 * TIME_FACTOR)  # 0.4-0.8 s, plus a busy machine

    def test_catalog_is_cacheable_but_has_no_cache_headers(self):
        for path in ["/api/products", "/api/products/3"]:
            a = request(self.port, "GET", path)
            b = request(self.port, "GET", path)
            self.assertEqual(a.status, 200, a)
            self.assertEqual(a.body, b.body, path)  # identical bodies for the same key
            for h in ("cache-control", "etag", "last-modified", "expires"):
                self.assertFalse(a.has_header(h), (path, h, a.headers))
        self.assertEqual(len(request(self.port, "GET", "/api/products").json()["products"]), 12)
        self.assertNotEqual(request(self.port, "GET", "/api/products/3").body,
                            request(self.port, "GET", "/api/products/4").body)
        self.assertEqual(request(self.port, "GET", "/api/products/999").status, 404)

    def test_slow_signup_with_a_small_response(self):
        r, took = timed(self.port, "POST", "/api/signup", body='{"email": "a@example.com"}',
                        headers={"Content-Type": "application/json"})
        self.assertEqual(r.status, 201, r)
        self.assertGreaterEqual(took, 0.3)
        self.assertLess(len(r.body), 64)
        self.assertEqual(request(self.port, "POST", "/api/signup", body="{}").status, 400)

    def test_debug_signups_counts_the_signups_handled_at_once(self):
        import json
        before = json.loads(request(self.port, "GET", "/debug/signups").body)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: timed(
                self.port, "POST", "/api/signup", body='{"email": "b@example.com"}')[0].status,
                range(4)))
        self.assertEqual(statuses, [201] * 4)
        after = json.loads(request(self.port, "GET", "/debug/signups").body)
        self.assertEqual(after["in_flight"], 0)
        self.assertGreaterEqual(after["users"], before["users"] + 4)
        # Four sent together, each 300 ms long: at least two overlapped.
        self.assertGreaterEqual(after["peak_in_flight"], 2)

    def test_checkout_errors_rise_with_concurrency(self):
        # Alone: always fine.
        for _ in range(3):
            self.assertEqual(request(self.port, "POST", "/api/checkout", body="{}").status, 200)
        # 16 at once against a capacity of 4: some fail with 503, the others succeed. (Up to
        # three bursts, in case a loaded machine spreads one burst over more than the 50 ms a
        # checkout takes.)
        for _ in range(3):
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                statuses = list(pool.map(
                    lambda _: request(self.port, "POST", "/api/checkout", body="{}").status,
                    range(16)))
            if 503 in statuses:
                break
        self.assertGreater(statuses.count(503), 0, statuses)
        self.assertGreater(statuses.count(200), 0, statuses)
        self.assertEqual(statuses.count(200) + statuses.count(503), 16, statuses)
        r = request(self.port, "POST", "/api/checkout", body="{}")
        self.assertEqual(r.status, 200)  # and fine again once the burst is over

    def test_traffic_mix_only_sends_what_the_shop_serves(self):
        with open(os.path.join(SHOP_DIR, "traffic.yaml")) as f:
            text = f.read()
        weights = [int(w) for w in re.findall(r"^    weight: (\d+)$", text, re.M)]
        methods = re.findall(r"^    method: (\w+)$", text, re.M)
        paths = re.findall(r"^    path: (\S+)$", text, re.M)
        self.assertEqual(len(weights), len(paths))
        self.assertEqual(len(methods), len(paths))
        self.assertEqual(sum(weights), 100)
        # The noisy client's share: 45 of 100.
        noisy = 0
        for block in re.split(r"^  - name: ", text, flags=re.M)[1:]:
            if "X-Api-Key: partner-scraper-7" in block:
                noisy += int(re.search(r"weight: (\d+)", block).group(1))
        self.assertEqual(noisy, 45)
        for method, path in zip(methods, paths):
            concrete = path.replace("{{id}}", "7")
            body = {"POST": '{"product_id": 7, "email": "x@example.com"}'}.get(method)
            r = request(self.port, method, concrete, body=body, timeout=10)
            self.assertIn(r.status, (200, 201, 503), (method, path, r))


class ShopConfigTest(unittest.TestCase):
    def test_example_config_and_its_slo_rules(self):
        if not os.path.exists(FICUS_BIN):
            self.skipTest("ficus binary not found at %s" % FICUS_BIN)
        config = os.path.join(SHOP_DIR, "ficus.yaml")
        r = subprocess.run([FICUS_BIN, "check", "-c", config], capture_output=True, text=True,
                           timeout=30 * TIME_FACTOR)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("storefront: routes catalog,cart,checkout", r.stdout)
        d = tempfile.mkdtemp(prefix="ficus-shop-")
        self.addCleanup(shutil.rmtree, d, True)
        rules = os.path.join(d, "rules.yml")
        r = subprocess.run([FICUS_BIN, "slo", "rules", "-c", config, "-o", rules],
                           capture_output=True, text=True, timeout=30 * TIME_FACTOR)
        self.assertEqual(r.returncode, 0, r.stderr)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool missing: run scripts/install-deps.sh")
        c = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)


if __name__ == "__main__":
    unittest.main()
