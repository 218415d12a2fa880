"""Tracing: W3C Trace Context continued or started and passed upstream with ficus' span id;
spans exported as OTLP/HTTP JSON to a receiver on loopback (fields, parent ids, attributes,
events, status); parent-based sampling; and a collector that is down costs dropped spans,
never a request."""

import socket
import threading
import time
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port, make_config,
                     request, wait_until)
from otlp_receiver import OtlpReceiver, attrs

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


def upstream_header(up, name):
    req = up.requests()[-1]
    vals = [v for n, v in req["headers"] if n.lower() == name]
    return vals


class TracingTest(FicusTestCase):
    def start(self, sample=1.0, collector_port=None):
        self.up = self.start_upstream("traced")
        if collector_port is None:
            self.rx = OtlpReceiver().start()
            self.addCleanup(self.rx.stop)
            collector_port = self.rx.port
        clusters = [{"name": "app", "endpoints": [endpoint(self.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app"},
                  {"name": "broken", "match": {"path_prefix": "/broken"}, "cluster": "dead"}]
        tracing = {"endpoint": "http://127.0.0.1:%d/v1/traces" % collector_port,
                   "sample": sample, "flush_interval": "100ms", "service_name": "edge",
                   "timeout": "500ms"}
        self.ficus = self.start_ficus(make_config(clusters, routes, tracing=tracing))

    def spans_for(self, trace_hex, n):
        wait_until(lambda: len([s for s in self.rx.spans() if s["traceId"] == trace_hex]) >= n,
                   10 * TIME_FACTOR)
        return [s for s in self.rx.spans() if s["traceId"] == trace_hex]

    def test_incoming_trace_is_continued_and_exported(self):
        self.start(sample=0.0)  # the parent's sampled flag decides, not the ratio
        r = request(self.ficus.port, "GET", "/api/echo", headers={
            "traceparent": "00-%s-%s-01" % (TRACE, PARENT),
            "tracestate": "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7",
            "User-Agent": "tracer-test"})
        self.assertEqual(r.status, 200)
        tp = upstream_header(self.up, "traceparent")
        self.assertEqual(len(tp), 1, tp)
        version, trace, span, flags = tp[0].split("-")
        self.assertEqual((version, trace, flags), ("00", TRACE, "01"))
        self.assertNotEqual(span, PARENT)
        self.assertEqual(upstream_header(self.up, "tracestate"),
                         ["congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"])

        spans = self.spans_for(TRACE, 2)
        self.assertEqual(len(spans), 2, spans)
        server = next(s for s in spans if s["kind"] == 2)
        attempt = next(s for s in spans if s["kind"] == 3)
        self.assertEqual(server["parentSpanId"], PARENT)
        self.assertEqual(attempt["parentSpanId"], server["spanId"])
        self.assertEqual(attempt["spanId"], span)  # the upstream's parent is the attempt span
        self.assertEqual(server["_resource"]["service.name"], {"stringValue": "edge"})
        a = attrs(server)
        self.assertEqual(a["http.request.method"], "GET")
        self.assertEqual(a["url.path"], "/api/echo")
        self.assertEqual(a["http.route"], "api")
        self.assertEqual(a["ficus.cluster"], "app")
        self.assertEqual(a["http.response.status_code"], 200)
        self.assertEqual(a["ficus.request_id"], r.header("x-request-id"))
        self.assertEqual(a["user_agent.original"], "tracer-test")
        self.assertEqual(attrs(attempt)["server.address"], "127.0.0.1:%d" % self.up.port)
        self.assertEqual(attrs(attempt)["http.response.status_code"], 200)
        self.assertEqual(server["status"], {"code": 0})
        events = [e["name"] for e in server["events"]]
        self.assertEqual(events[0], "upstream.pick")
        self.assertIn("upstream.request_sent", events)
        self.assertIn("upstream.first_byte", events)
        self.assertEqual(events[-1], "response.complete")
        start, end = int(server["startTimeUnixNano"]), int(server["endTimeUnixNano"])
        self.assertLessEqual(start, int(attempt["startTimeUnixNano"]))
        self.assertLessEqual(int(attempt["endTimeUnixNano"]), end)
        self.assertLess(abs(start / 1e9 - time.time()), 60)
        self.assertEqual(self.rx.requests[0]["path"], "/v1/traces")
        self.assertEqual(self.rx.requests[0]["content_type"], "application/json")

    def test_unsampled_parent_is_propagated_not_exported(self):
        self.start(sample=1.0)
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo", headers={
            "traceparent": "00-%s-%s-00" % (TRACE, PARENT)}).status, 200)
        tp = upstream_header(self.up, "traceparent")[0]
        self.assertTrue(tp.startswith("00-%s-" % TRACE) and tp.endswith("-00"), tp)
        # A sampled request afterwards proves the exporter ran; the unsampled one is absent.
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
        wait_until(lambda: self.rx.spans(), 10 * TIME_FACTOR)
        time.sleep(0.3)
        self.assertEqual([s for s in self.rx.spans() if s["traceId"] == TRACE], [])

    def test_invalid_traceparent_starts_a_new_trace(self):
        self.start(sample=1.0)
        for bad in ("00-%s-%s-01" % (TRACE.upper(), PARENT),       # upper case
                    "00-%s-%s-01" % ("0" * 32, PARENT),            # zero trace id
                    "ff-%s-%s-01" % (TRACE, PARENT),               # version ff
                    "00-%s-%s-01-extra" % (TRACE, PARENT)):        # v00 with extra fields
            self.assertEqual(request(self.ficus.port, "GET", "/api/echo", headers={
                "traceparent": bad, "tracestate": "a=b"}).status, 200)
            tp = upstream_header(self.up, "traceparent")
            self.assertEqual(len(tp), 1, tp)
            self.assertRegex(tp[0], r"^00-[0-9a-f]{32}-[0-9a-f]{16}-01$")
            self.assertNotIn(TRACE, tp[0].lower())
            self.assertEqual(upstream_header(self.up, "tracestate"), [], bad)
        # Two tracestate fields are one list: forwarded together when valid together ...
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo", headers=[
            ("traceparent", "00-%s-%s-01" % (TRACE, PARENT)),
            ("tracestate", "congo=t61rcWkgMzE"), ("tracestate", "rojo=00f067aa0ba902b7")]).status,
            200)
        self.assertEqual(upstream_header(self.up, "tracestate"),
                         ["congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7"])
        # ... and dropped together when the combination repeats a key.
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo", headers=[
            ("traceparent", "00-%s-%s-01" % (TRACE, PARENT)),
            ("tracestate", "congo=1"), ("tracestate", "congo=2")]).status, 200)
        self.assertIn(TRACE, upstream_header(self.up, "traceparent")[0])
        self.assertEqual(upstream_header(self.up, "tracestate"), [])
        # A valid parent with an invalid tracestate: the trace goes on, the tracestate does not.
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo", headers={
            "traceparent": "00-%s-%s-01" % (TRACE, PARENT),
            "tracestate": "Bad-Key=1"}).status, 200)
        self.assertIn(TRACE, upstream_header(self.up, "traceparent")[0])
        self.assertEqual(upstream_header(self.up, "tracestate"), [])

    def test_started_traces_follow_the_ratio_and_errors_are_marked(self):
        self.start(sample=1.0)
        r = request(self.ficus.port, "GET", "/broken/x")
        self.assertEqual(r.status, 502)
        wait_until(lambda: any(attrs(s).get("http.response.status_code") == 502
                               for s in self.rx.spans()), 10 * TIME_FACTOR)
        server = next(s for s in self.rx.spans()
                      if s["kind"] == 2 and attrs(s).get("http.response.status_code") == 502)
        self.assertNotIn("parentSpanId", server)
        self.assertEqual(server["status"]["code"], 2)
        attempt = next(s for s in self.rx.spans()
                       if s["kind"] == 3 and s["parentSpanId"] == server["spanId"])
        self.assertEqual(attempt["status"]["code"], 2)
        self.assertIn("upstream.connect_start", [e["name"] for e in server["events"]])

    def test_sample_zero_exports_nothing_but_still_propagates(self):
        self.start(sample=0.0)
        for _ in range(20):
            self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
            self.assertRegex(upstream_header(self.up, "traceparent")[0],
                             r"^00-[0-9a-f]{32}-[0-9a-f]{16}-00$")
        time.sleep(0.4)
        self.assertEqual(self.rx.spans(), [])

    def test_export_connection_is_kept_alive(self):
        self.start(sample=1.0)
        for i in range(4):  # one batch each: more than flush_interval apart
            self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
            wait_until(lambda: len(self.rx.requests) > i, 5 * TIME_FACTOR)
        self.assertEqual(len(self.rx.requests), 4)
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_trace_export_batches_total"), 4)
        self.assertEqual(m.get("ficus_trace_export_connections_total"), 1)
        self.assertEqual(m.get("ficus_trace_export_failures_total"), 0)

    def test_collector_closing_idle_connections_loses_no_batch(self):
        # A collector that answers one request per connection with keep-alive, then closes the
        # connection silently: every next batch meets a stale connection and is retried once
        # on a fresh one.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.addCleanup(listener.close)
        received = []

        def serve():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n")
                              if l.lower().startswith(b"content-length:")]
                    while length and len(body) < length[0]:
                        body += conn.recv(65536)
                    received.append(len(body))
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    time.sleep(0.05)

        threading.Thread(target=serve, daemon=True).start()
        self.start(sample=1.0, collector_port=listener.getsockname()[1])
        for i in range(3):
            self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
            self.assertTrue(wait_until(lambda: len(received) > i, 5 * TIME_FACTOR))
            time.sleep(0.2)
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_trace_exchanges_exported_total"), 3)
        self.assertEqual(m.get("ficus_trace_export_failures_total"), 0)
        self.assertEqual(m.get("ficus_trace_export_connections_total"), 3)

    def test_collector_down_drops_and_counts(self):
        self.start(sample=1.0, collector_port=free_port())  # nobody listens there
        n = 30
        t0 = time.monotonic()
        with RawConn(self.ficus.port) as c:
            for i in range(n):
                c.request("GET", "/api/echo")
                self.assertEqual(c.read_response().status, 200)
        self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR)

        def dropped():
            m = self.ficus.metrics()
            return (m.get("ficus_trace_exchanges_dropped_total", reason="export_failed") +
                    m.get("ficus_trace_exchanges_dropped_total", reason="queue_full"))
        self.assertTrue(wait_until(lambda: dropped() == n, 10 * TIME_FACTOR), dropped())
        m = self.ficus.metrics()
        self.assertGreater(m.get("ficus_trace_export_failures_total"), 0)
        self.assertEqual(m.get("ficus_trace_exchanges_exported_total"), 0)


if __name__ == "__main__":
    unittest.main()
