"""`ficus slo`: the Prometheus rules it writes pass `promtool check rules` and fire under
`promtool test rules` exactly where the SLO engine's hand-computed cases do (page and ticket on a
2 % error ratio, nothing on a healthy series, nothing below the minimum-traffic guard); and
`ficus slo test-webhooks` delivers JSON POSTs to Python receivers on loopback, retrying with
backoff when a receiver fails its first tries."""

import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from harness import FICUS_BIN, TIME_FACTOR, free_port
from loopback_server import LoopbackHTTPServer

CONFIG = """\
workers: 1
admin: {{ listen: 127.0.0.1:{admin} }}
listeners: [{{ listen: 127.0.0.1:{listen} }}]
clusters: [{{ name: shop, endpoints: [127.0.0.1:3000] }}]
routes:
  - {{ name: products, match: {{ path_prefix: /api/products }}, cluster: shop }}
  - {{ name: checkout, match: {{ path: /api/checkout }}, cluster: shop }}
  - {{ name: rest, cluster: shop }}
slos:
{slos}
"""

RULE_SLOS = """\
  - name: api
    routes: [products, checkout]
    availability: 99.9%
    latency: { threshold: 300ms, objective: 99% }
  - name: quiet
    routes: [rest]
    availability: 99.9%
    min_requests: 100000
  - name: everything
    latency: { threshold: 250ms, objective: 99.5% }
    window: 7d
"""

# promtool unit tests over synthetic ficus metrics, one sample a minute.
# SLO api = products + checkout, summed: 30 5xx of 3000 a minute = 1 % errors = burn 10 on a
# 99.9 % objective (products alone would be 2 %: ratios are never averaged per route). The
# per-second rates (24.5, 0.5, 25) are exact in binary, so the sum is the same in whatever order
# Prometheus adds the series (with 980/20/1000 a minute it came out 0.009999999999999998 in some
# runs, and promtool compares exactly). Burn 10 is
# not > 14.4 (the 1h/5m page stays quiet) but is > 6 over 6h and 30m (page) and > 1 over 3d and
# 6h (ticket); the windows longer than the data hold what there is, as in the engine. rest: 50 %
# errors but only 2 requests a minute, under its guard of 100000: no alert. The second test is
# healthy (no 5xx, every request within 250ms): no alert at all.
RULE_TESTS = """\
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ficus_route_responses_total{{route="products",class="2xx"}}'
        values: '0+1470x90'
      - series: 'ficus_route_responses_total{{route="products",class="5xx"}}'
        values: '0+30x90'
      - series: 'ficus_route_responses_total{{route="checkout",class="2xx"}}'
        values: '0+1500x90'
      - series: 'ficus_route_responses_total{{route="checkout",class="5xx"}}'
        values: '0+0x90'
      - series: 'ficus_route_responses_total{{route="rest",class="2xx"}}'
        values: '0+1x90'
      - series: 'ficus_route_responses_total{{route="rest",class="5xx"}}'
        values: '0+1x90'
    alert_rule_test:
      - eval_time: 60m
        alertname: FicusSloErrorBudgetBurn
        exp_alerts:
          - exp_labels: {{ severity: page, slo: api, sli: availability }}
            exp_annotations:
              summary: 'SLO api (availability) is burning its error budget'
              description: 'objective 0.999 of non-5xx responses over 30d; error ratio over 14.4x the budget in 1h and 5m, or over 6x the budget in 6h and 30m; now {page_value}'
          - exp_labels: {{ severity: ticket, slo: api, sli: availability }}
            exp_annotations:
              summary: 'SLO api (availability) is burning its error budget'
              description: 'objective 0.999 of non-5xx responses over 30d; error ratio over 1x the budget in 3d and 6h; now {page_value}'
    promql_expr_test:
      - expr: ficus_slo:error_ratio:rate1h{{slo="api",sli="availability"}}
        eval_time: 60m
        exp_samples:
          - labels: 'ficus_slo:error_ratio:rate1h{{slo="api",sli="availability"}}'
            value: 0.01
      - expr: ficus_slo:requests:increase5m{{slo="quiet",sli="availability"}}
        eval_time: 60m
        exp_samples:
          - labels: 'ficus_slo:requests:increase5m{{slo="quiet",sli="availability"}}'
            value: 10
  - interval: 1m
    input_series:
      - series: 'ficus_route_responses_total{{route="products",class="2xx"}}'
        values: '0+1000x90'
      - series: 'ficus_route_responses_total{{route="products",class="5xx"}}'
        values: '0+0x90'
      - series: 'ficus_route_request_duration_seconds_bucket{{route="products",le="0.25"}}'
        values: '0+1000x90'
      - series: 'ficus_route_request_duration_seconds_count{{route="products"}}'
        values: '0+1000x90'
    alert_rule_test:
      - eval_time: 60m
        alertname: FicusSloErrorBudgetBurn
        exp_alerts: []
"""


def promtool():
    path = shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found: run scripts/install-deps.sh (Debian package "
                             "'prometheus')")
    return path


class SloRulesTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(FICUS_BIN):
            self.skipTest("ficus binary not found at %s" % FICUS_BIN)
        self.dir = tempfile.mkdtemp(prefix="ficus-slo-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write_config(self, slos):
        path = os.path.join(self.dir, "ficus.yaml")
        with open(path, "w") as f:
            f.write(CONFIG.format(admin=free_port(), listen=free_port(), slos=slos))
        return path

    def rules(self, slos, *args):
        return subprocess.run([FICUS_BIN, "slo", "rules", "-c", self.write_config(slos)] +
                              list(args), capture_output=True, text=True,
                              timeout=30 * TIME_FACTOR)

    def test_rules_pass_promtool_check(self):
        out = os.path.join(self.dir, "rules.yml")
        r = self.rules(RULE_SLOS, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        # Every threshold is a bucket edge that /metrics exports: nothing to note.
        self.assertNotIn("note:", r.stderr)
        with open(out) as f:
            self.assertIn('le="0.3"', f.read())
        check = subprocess.run([promtool(), "check", "rules", out], capture_output=True,
                               text=True, timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        # 4 objectives x (7 windows x 2 + budget) recording rules + 2 alerts each.
        self.assertIn("SUCCESS: 68 rules found", check.stdout + check.stderr)

    def test_rules_fire_where_the_engine_does(self):
        out = os.path.join(self.dir, "rules.yml")
        r = self.rules(RULE_SLOS, "-o", out)
        self.assertEqual(r.returncode, 0, r.stderr)
        tests = os.path.join(self.dir, "tests.yml")
        with open(tests, "w") as f:
            f.write(RULE_TESTS.format(page_value="1%"))
        t = subprocess.run([promtool(), "test", "rules", tests], capture_output=True, text=True,
                           cwd=self.dir, timeout=120)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("SUCCESS", t.stdout + t.stderr)

    def test_rules_to_stdout_and_bad_config(self):
        r = self.rules(RULE_SLOS)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("# Prometheus rules"), r.stdout[:200])
        self.assertIn("groups:\n  - name: 'ficus-slo-api'", r.stdout)
        bad = self.rules("  - name: api\n    availability: 101%\n")
        self.assertEqual(bad.returncode, 1)
        self.assertRegex(bad.stderr, r"ficus\.yaml:11:19: slos\[0\]\.availability: must be "
                                     r"between 0% and 100%")


class Receiver:
    """A threaded HTTP server on loopback recording POSTs; answers `fail_first` requests with
    503 before answering 204."""

    def __init__(self, fail_first=0):
        self.requests = []  # (monotonic time, path, headers dict, body bytes, status sent)
        self.fail_first = fail_first
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with outer.lock:
                    status = 503 if len(outer.requests) < outer.fail_first else 204
                    outer.requests.append((time.monotonic(), self.path, dict(self.headers),
                                           body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SloWebhooksTest(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(FICUS_BIN):
            self.skipTest("ficus binary not found at %s" % FICUS_BIN)
        self.dir = tempfile.mkdtemp(prefix="ficus-slo-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_hooks(self, slos, *args):
        path = os.path.join(self.dir, "ficus.yaml")
        with open(path, "w") as f:
            f.write(CONFIG.format(admin=free_port(), listen=free_port(), slos=slos))
        return subprocess.run([FICUS_BIN, "slo", "test-webhooks", "-c", path] + list(args),
                              capture_output=True, text=True, timeout=120 * TIME_FACTOR)

    def test_delivers_json_and_retries_a_failing_receiver(self):
        good = Receiver()
        flaky = Receiver(fail_first=2)
        self.addCleanup(good.stop)
        self.addCleanup(flaky.stop)
        slos = ("  - name: api\n    routes: [products]\n    availability: 99.9%\n"
                "    latency: { threshold: 300ms, objective: 99% }\n"
                f"    webhooks: [\"http://127.0.0.1:{good.port}/hooks/a?token=1\", "
                f"http://127.0.0.1:{flaky.port}/b]\n")
        r = self.run_hooks(slos)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("webhooks: 4 of 4 delivered, 0 failed, 6 attempts", r.stdout)

        # The good receiver: one POST per objective, JSON, to the URL's path and query.
        self.assertEqual(len(good.requests), 2)
        bodies = []
        for _, path, headers, body, status in good.requests:
            self.assertEqual(path, "/hooks/a?token=1")
            self.assertEqual(headers.get("Content-Type"), "application/json")
            self.assertEqual(headers.get("Host"), "127.0.0.1:%d" % good.port)
            bodies.append(json.loads(body))
        self.assertEqual(sorted(b["sli"] for b in bodies), ["availability", "latency"])
        for b in bodies:
            self.assertIs(b["test"], True)
            self.assertEqual(b["slo"], "api")
            self.assertEqual((b["from"], b["to"]), ("ok", "ok"))
            self.assertEqual(b["routes"], ["products"])
            self.assertEqual(set(b["burn_rates"]), {"5m", "30m", "1h", "6h", "1d", "3d"})
            self.assertEqual(b["budget_remaining"], 1)
        latency = [b for b in bodies if b["sli"] == "latency"][0]
        self.assertEqual(latency["threshold_ms"], 300)
        self.assertEqual(latency["objective"], 0.99)

        # The flaky receiver: 2 x 503, then both deliveries; a retry waits for its backoff
        # (500 ms before the first retry).
        statuses = [s for _, _, _, _, s in flaky.requests]
        self.assertEqual(statuses, [503, 503, 204, 204])
        first_fail = flaky.requests[0][0]
        later = [t for t, _, _, _, _ in flaky.requests[2:]]
        self.assertGreaterEqual(min(later) - first_fail, 0.45)

    def test_gives_up_on_a_dead_receiver(self):
        # A port nobody listens on: every attempt is refused.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
            slos = ("  - name: api\n    availability: 99%\n"
                    f"    webhooks: [http://127.0.0.1:{dead}/]\n")
            start = time.monotonic()
            r = self.run_hooks(slos, "--attempts", "2")
            elapsed = time.monotonic() - start
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("webhooks: 0 of 1 delivered, 1 failed, 2 attempts", r.stdout)
        self.assertIn("failed after 2 attempts", r.stderr)
        self.assertLess(elapsed, 30)

    def test_no_webhooks_is_an_error(self):
        r = self.run_hooks("  - name: api\n    availability: 99%\n")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no SLO has webhooks", r.stderr)


if __name__ == "__main__":
    unittest.main()
