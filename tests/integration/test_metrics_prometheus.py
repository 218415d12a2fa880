"""Metrics as Prometheus sees them: the exposition passes `promtool check metrics`, a real
Prometheus (Debian package) scrapes ficus and a PromQL query over its HTTP API returns the
number of requests this test sent; per-code, per-endpoint, connect and first-byte series."""

import shutil
import subprocess
import time
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port, make_config,
                     request, wait_until)
from prometheus_server import PROMETHEUS, Prometheus

PROMTOOL = shutil.which("promtool")


class MetricsTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("metrics")
        clusters = [{"name": "app", "endpoints": [endpoint(cls.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app"},
                  {"name": "broken", "match": {"path_prefix": "/broken"}, "cluster": "dead"}]
        cls.ficus = cls.start_ficus_for_class(make_config(clusters, routes, workers=2))

    def scrape(self):
        r = request(self.ficus.admin_port, "GET", "/metrics")
        self.assertEqual(r.status, 200)
        return r.body.decode()

    @unittest.skipUnless(PROMTOOL, "promtool not installed (Debian package prometheus)")
    def test_promtool_check_metrics(self):
        for i in range(3):
            request(self.ficus.port, "GET", "/api/status/%d" % (200, 404, 503)[i])
        request(self.ficus.port, "GET", "/broken")
        text = self.scrape()
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())
        self.assertEqual(p.stdout.decode().strip() + p.stderr.decode().strip(), "",
                         "promtool lint findings")

    def test_codes_endpoints_and_upstream_phases(self):
        m0 = self.ficus.metrics()
        ep = "127.0.0.1:%d" % self.up.port
        with RawConn(self.ficus.port) as c:
            for code in (200, 200, 201, 404, 503):
                c.request("GET", "/api/status/%d" % code)
                self.assertEqual(c.read_response().status, code)
        self.assertEqual(request(self.ficus.port, "GET", "/broken").status, 502)

        m = self.ficus.settled_metrics()

        def d(name, **labels):
            return m.get(name, **labels) - m0.get(name, **labels)

        for code, n in (("200", 2), ("201", 1), ("404", 1), ("503", 1)):
            self.assertEqual(d("ficus_route_responses_by_code_total", route="api", code=code), n,
                             code)
            self.assertEqual(d("ficus_cluster_responses_by_code_total", cluster="app", code=code),
                             n, code)
            self.assertEqual(d("ficus_endpoint_responses_by_code_total", cluster="app",
                               endpoint=ep, code=code), n, code)
        self.assertEqual(d("ficus_route_responses_by_code_total", route="broken", code="502"), 1)
        self.assertEqual(d("ficus_endpoint_requests_total", cluster="app", endpoint=ep), 5)
        # Codes never seen are not exported (bounded cardinality).
        self.assertNotIn('code="418"', self.scrape())
        self.assertEqual(d("ficus_route_upstream_first_byte_seconds_count", route="api"), 5)
        # One keep-alive client connection: at most one new upstream connection per worker.
        self.assertLessEqual(d("ficus_cluster_upstream_connect_duration_seconds_count",
                               cluster="app"), 2)
        self.assertEqual(m.get("ficus_route_requests_in_flight", route="api"), 0)
        self.assertEqual(m.get("ficus_endpoint_requests_in_flight", cluster="app", endpoint=ep), 0)
        ratio = m.get("ficus_cluster_upstream_connection_reuse_ratio", cluster="app")
        self.assertTrue(0 < ratio <= 1, ratio)
        self.assertGreater(m.get("process_resident_memory_bytes"), 1 << 20)
        self.assertGreater(m.get("process_open_fds"), 3)
        self.assertGreater(m.get("process_max_fds"), 0)
        self.assertGreater(m.get("process_start_time_seconds"), time.time() - 3600)
        self.assertIn('ficus_build_info{version="', m.text)

    def test_in_flight_counts_a_slow_request(self):
        with RawConn(self.ficus.port) as c:
            c.request("GET", "/api/echo?stall_ms=%d" % (800 * TIME_FACTOR))
            ok = wait_until(lambda: self.ficus.metrics().get("ficus_route_requests_in_flight",
                                                             route="api") == 1,
                            2 * TIME_FACTOR)
            self.assertTrue(ok, "in-flight gauge did not show the stalled request")
            self.assertEqual(c.read_response().status, 200)
        self.assertTrue(wait_until(lambda: self.ficus.metrics().get(
            "ficus_route_requests_in_flight", route="api") == 0, 2 * TIME_FACTOR))

    @unittest.skipUnless(PROMETHEUS, "prometheus not installed (Debian package prometheus)")
    def test_real_prometheus_scrape_matches_requests_sent(self):
        prom = Prometheus(self, self.ficus.admin_port)
        query = prom.query

        base = self.ficus.metrics().get("ficus_route_requests_total", route="api")
        sent = 37
        with RawConn(self.ficus.port) as c:
            for i in range(sent):
                c.request("GET", "/api/echo?i=%d" % i)
                self.assertEqual(c.read_response().status, 200)
        want = base + sent
        q = 'sum(ficus_route_requests_total{job="ficus",route="api"})'
        got = wait_until(lambda: query(q) == want, 40 * TIME_FACTOR, interval=0.25)
        self.assertTrue(got, "PromQL %s = %r, want %r\n%s" % (q, query(q), want, prom.log_tail()))
        self.assertEqual(query('up{job="ficus"}'), 1.0)
        # The histogram is usable from PromQL too.
        count = query('sum(ficus_route_request_duration_seconds_count{route="api"})')
        self.assertGreaterEqual(count, sent)


if __name__ == "__main__":
    unittest.main()
