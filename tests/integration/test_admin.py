"""The admin API: /live, /ready, /config (token redacted), /metrics (Prometheus text whose
counts match the traffic the test sent)."""

import time
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port, make_config,
                     request, send_raw, wait_until)

TOKEN = "s3cret-admin-token-1234"


class AdminTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("admin")
        clusters = [{"name": "app", "endpoints": [endpoint(cls.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app"},
                  {"name": "other", "match": {"path_prefix": "/other"}, "cluster": "app"},
                  {"name": "broken", "match": {"path_prefix": "/broken"}, "cluster": "dead"}]
        cls.ficus = cls.start_ficus_for_class(make_config(clusters, routes,
                                                          admin={"token": TOKEN}))

    def admin(self, path, method="GET"):
        return request(self.ficus.admin_port, method, path)

    def test_live_and_ready(self):
        self.assertEqual(self.admin("/live").status, 200)
        self.assertEqual(self.admin("/ready").status, 200)

    def test_unknown_admin_path_is_404(self):
        self.assertEqual(self.admin("/no-such-thing").status, 404)

    def test_config_is_yaml_with_token_redacted(self):
        r = self.admin("/config")
        self.assertEqual(r.status, 200, r)
        text = r.body.decode()
        self.assertNotIn(TOKEN, text)
        self.assertIn("listeners", text)
        self.assertIn("api", text)
        self.assertIn("127.0.0.1:%d" % self.up.port, text)

    def test_metrics_format(self):
        r = self.admin("/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.header("content-type", "").startswith("text/plain"), r)
        text = r.body.decode()
        for name in ("ficus_downstream_connections_active", "ficus_downstream_requests_total",
                     "ficus_downstream_responses_total", "ficus_route_requests_total",
                     "ficus_route_responses_total", "ficus_route_request_duration_seconds_bucket",
                     "ficus_cluster_upstream_requests_total",
                     "ficus_cluster_upstream_connect_failures_total",
                     "ficus_downstream_parse_errors_total", "ficus_downstream_no_route_total"):
            self.assertIn(name, text)
        self.assertIn("# TYPE ficus_downstream_requests_total counter", text)
        self.assertIn("# TYPE ficus_route_request_duration_seconds histogram", text)

    def test_metrics_count_the_traffic(self):
        m0 = self.ficus.metrics()
        ok, notfound, noroute, bad, failed = 7, 3, 2, 1, 2
        with RawConn(self.ficus.port) as c:
            for i in range(ok):
                c.request("GET", "/api/echo?i=%d" % i)
                self.assertEqual(c.read_response().status, 200)
            for i in range(notfound):
                c.request("GET", "/api/status/404")
                self.assertEqual(c.read_response().status, 404)
            for i in range(noroute):
                c.request("GET", "/nowhere")
                self.assertEqual(c.read_response().status, 404)
        for i in range(failed):
            self.assertEqual(request(self.ficus.port, "GET", "/broken").status, 502)
        resp, _ = send_raw(self.ficus.port, b"GET /api HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n")
        self.assertEqual(resp.status, 400)

        def delta(m, name, **labels):
            return m.get(name, **labels) - m0.get(name, **labels)

        expect = {
            ("ficus_route_requests_total", (("route", "api"),)): ok + notfound,
            ("ficus_route_responses_total", (("route", "api"), ("class", "2xx"))): ok,
            ("ficus_route_responses_total", (("route", "api"), ("class", "4xx"))): notfound,
            ("ficus_route_requests_total", (("route", "broken"),)): failed,
            ("ficus_route_responses_total", (("route", "broken"), ("class", "5xx"))): failed,
            ("ficus_cluster_upstream_requests_total", (("cluster", "app"),)): ok + notfound,
            ("ficus_cluster_upstream_connect_failures_total", (("cluster", "dead"),)): failed,
            ("ficus_downstream_no_route_total", ()): noroute,
            ("ficus_downstream_parse_errors_total", ()): bad,
            ("ficus_downstream_requests_total", ()): ok + notfound + noroute + failed + bad,
            ("ficus_downstream_responses_total", (("class", "2xx"),)): ok,
            ("ficus_downstream_responses_total", (("class", "4xx"),)): notfound + noroute + bad,
            ("ficus_downstream_responses_total", (("class", "5xx"),)): failed,
            ("ficus_route_request_duration_seconds_count", (("route", "api"),)): ok + notfound,
            ("ficus_route_request_duration_seconds_bucket", (("route", "api"), ("le", "+Inf"))):
                ok + notfound,
        }

        def mismatches():
            m = self.ficus.metrics()
            bad_ = {}
            for (name, labels), want in expect.items():
                got = delta(m, name, **dict(labels))
                if got != want:
                    bad_["%s%s" % (name, dict(labels))] = (got, want)
            return m, bad_

        # Metrics are recorded when each exchange completes; allow a moment to settle.
        m, wrong = mismatches()
        deadline = time.monotonic() + 3 * TIME_FACTOR
        while wrong and time.monotonic() < deadline:
            time.sleep(0.05)
            m, wrong = mismatches()
        self.assertEqual(wrong, {}, "metric deltas (got, want)\n" + m.text[:6000])

        # Histogram buckets are cumulative and end at the count.
        buckets = sorted(((float(dict(ls)["le"]), v) for (n, ls), v in m.samples.items()
                          if n == "ficus_route_request_duration_seconds_bucket"
                          and dict(ls).get("route") == "api"), key=lambda x: x[0])
        self.assertTrue(buckets)
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values), "buckets must be cumulative")
        self.assertEqual(values[-1], m.get("ficus_route_request_duration_seconds_count",
                                           route="api"))
        self.assertGreater(m.get("ficus_route_request_duration_seconds_sum", route="api"), 0)

    def test_active_connections_gauge(self):
        base = self.ficus.metrics().get("ficus_downstream_connections_active")
        conns = [RawConn(self.ficus.port) for _ in range(5)]
        try:
            for c in conns:
                c.request("GET", "/api/echo")
                self.assertEqual(c.read_response().status, 200)
            m = self.ficus.metrics()
            self.assertEqual(m.get("ficus_downstream_connections_active"), base + 5, m.text[:3000])
        finally:
            for c in conns:
                c.close()
        self.assertTrue(wait_until(
            lambda: self.ficus.metrics().get("ficus_downstream_connections_active") == base,
            3 * TIME_FACTOR), "active connections did not go back down")

    def test_admin_not_counted_as_downstream_traffic(self):
        m0 = self.ficus.metrics()
        for _ in range(5):
            self.admin("/live")
        m1 = self.ficus.metrics()
        self.assertEqual(m1.get("ficus_downstream_requests_total"),
                         m0.get("ficus_downstream_requests_total"))


if __name__ == "__main__":
    unittest.main()
