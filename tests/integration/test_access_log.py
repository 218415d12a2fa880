"""The access log: JSON Lines with the documented fields, a configurable field list, sampling,
rotation on SIGUSR1, no credentials ever written, and its counters on /metrics. Each line tells
how the exchange ended (`termination`): complete, cut by the upstream, by a client that went away
or stopped reading, or by ficus at the drain deadline; a chunked request body counts its payload
bytes only."""

import json
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port, make_config,
                     request, send_raw, wait_until)

ALL_FIELDS = ["time", "request_id", "trace_id", "client", "method", "host", "path", "route",
              "cluster", "endpoint", "status", "bytes_in", "bytes_out", "duration_us",
              "connect_us", "first_byte_us", "retries", "user_agent", "error", "consumer",
              "termination"]


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8")
    assert text == "" or text.endswith("\n"), "partial line at the end: %r" % text[-200:]
    return [json.loads(line) for line in text.splitlines()]


def wait_lines(path, n, timeout=5.0):
    wait_until(lambda: len(read_lines(path)) >= n, timeout * TIME_FACTOR)
    return read_lines(path)


class AccessLogTest(FicusTestCase):
    def start(self, access_log, routes=None, **extra):
        self.up = getattr(self, "up", None) or self.start_upstream("access")
        self.dir = tempfile.mkdtemp(prefix="ficus-al-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        path = os.path.join(self.dir, "access.log")
        access_log = dict(access_log)
        access_log.setdefault("path", path)
        clusters = [{"name": "app", "endpoints": [endpoint(self.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = routes or [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app"},
                            {"name": "broken", "match": {"path_prefix": "/broken"},
                             "cluster": "dead"}]
        self.ficus = self.start_ficus(make_config(clusters, routes, access_log=access_log,
                                                  **extra))
        return access_log["path"]

    def test_lines_carry_every_field(self):
        path = self.start({})
        r = request(self.ficus.port, "POST", "/api/echo?q=secret-query", body=b"hello",
                    headers={"User-Agent": "probe/1.0 \"quoted\"",
                             "Authorization": "Bearer TOPSECRET-TOKEN",
                             "Cookie": "session=COOKIE-SECRET",
                             "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
        self.assertEqual(r.status, 200)
        self.assertEqual(request(self.ficus.port, "GET", "/broken/x").status, 502)
        self.assertEqual(request(self.ficus.port, "GET", "/nowhere").status, 404)
        lines = wait_lines(path, 3)
        self.assertEqual(len(lines), 3, lines)
        ok, broken, noroute = lines
        self.assertEqual(list(ok.keys()), ALL_FIELDS)
        self.assertEqual(ok["method"], "POST")
        self.assertEqual(ok["path"], "/api/echo")  # never the query string
        self.assertEqual(ok["host"], "localhost")
        self.assertEqual(ok["route"], "api")
        self.assertEqual(ok["cluster"], "app")
        self.assertEqual(ok["endpoint"], "127.0.0.1:%d" % self.up.port)
        self.assertEqual(ok["status"], 200)
        self.assertEqual(ok["bytes_in"], 5)
        self.assertEqual(ok["bytes_out"], len(r.body))
        self.assertEqual(ok["request_id"], r.header("x-request-id"))
        self.assertEqual(ok["client"], "127.0.0.1")
        self.assertEqual(ok["user_agent"], "probe/1.0 \"quoted\"")
        self.assertIsNone(ok["trace_id"])  # tracing is off
        self.assertEqual(ok["retries"], 0)
        self.assertIsNone(ok["error"])
        self.assertEqual(ok["termination"], "complete")
        self.assertIsInstance(ok["connect_us"], int)  # the first request opened a connection
        self.assertGreaterEqual(ok["duration_us"], ok["first_byte_us"])
        self.assertRegex(ok["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
        self.assertLess(abs(time.mktime(time.strptime(ok["time"][:19], "%Y-%m-%dT%H:%M:%S"))
                            - time.mktime(time.gmtime())), 60)
        self.assertEqual(broken["status"], 502)
        self.assertEqual(broken["cluster"], "dead")
        self.assertIsNotNone(broken["error"])
        self.assertIsNone(broken["first_byte_us"])
        self.assertEqual(broken["termination"], "complete")  # ficus's 502 went out whole
        self.assertEqual(noroute["status"], 404)
        self.assertIsNone(noroute["route"])
        with open(path, "rb") as f:
            raw = f.read()
        for secret in (b"TOPSECRET", b"COOKIE-SECRET", b"secret-query"):
            self.assertNotIn(secret, raw)

    def test_rejected_heads_are_logged(self):
        path = self.start({})
        resp, _ = send_raw(self.ficus.port, b"GET /api HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n")
        self.assertEqual(resp.status, 400)
        lines = wait_lines(path, 1)
        self.assertEqual(len(lines), 1)
        self.assertEqual(lines[0]["status"], 400)
        self.assertEqual(lines[0]["request_id"], resp.header("x-request-id"))
        self.assertEqual(lines[0]["method"], "")

    def test_field_list_is_configurable(self):
        path = self.start({"fields": ["status", "path", "route"]})
        self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
        lines = wait_lines(path, 1)
        self.assertEqual(lines, [{"status": 200, "path": "/api/echo", "route": "api"}])

    def test_sampling(self):
        path = self.start({"sample": 0.25, "fields": ["request_id"]})
        n = 800
        with RawConn(self.ficus.port) as c:
            for i in range(n):
                c.request("GET", "/api/echo")
                self.assertEqual(c.read_response().status, 200)
        m = wait_until(lambda: self.ficus.metrics().get("ficus_access_log_records_total") > 0 and
                       self.ficus.metrics(), 5 * TIME_FACTOR)
        time.sleep(0.1 * TIME_FACTOR)
        lines = read_lines(path)
        # Binomial(800, 0.25): mean 200, sd ~12; +-60 is ~5 sd.
        self.assertTrue(140 <= len(lines) <= 260, len(lines))
        self.assertEqual(len({l["request_id"] for l in lines}), len(lines))
        self.assertEqual(self.ficus.metrics().get("ficus_access_log_records_total"), len(lines))
        self.assertEqual(m.get("ficus_access_log_dropped_total"), 0)

    def test_sample_zero_logs_nothing(self):
        path = self.start({"sample": "0%"})
        for _ in range(20):
            self.assertEqual(request(self.ficus.port, "GET", "/api/echo").status, 200)
        time.sleep(0.2)
        self.assertEqual(read_lines(path), [])

    def test_rotation_on_sigusr1(self):
        path = self.start({"fields": ["path"]})
        for i in range(3):
            self.assertEqual(request(self.ficus.port, "GET", "/api/a%d" % i).status, 200)
        self.assertEqual(len(wait_lines(path, 3)), 3)
        rotated = path + ".1"
        os.rename(path, rotated)
        self.ficus.signal(signal.SIGUSR1)
        self.assertTrue(wait_until(
            lambda: self.ficus.metrics().get("ficus_access_log_reopens_total") == 1,
            5 * TIME_FACTOR))
        for i in range(2):
            self.assertEqual(request(self.ficus.port, "GET", "/api/b%d" % i).status, 200)
        new = wait_lines(path, 2)
        self.assertEqual([l["path"] for l in new], ["/api/b0", "/api/b1"])
        self.assertEqual([l["path"] for l in read_lines(rotated)], ["/api/a0", "/api/a1", "/api/a2"])
        self.assertTrue(self.ficus.alive())

    def test_upstream_cut_mid_response(self):
        path = self.start({})
        # /partial announces 1000 body bytes, sends 10 and closes: the client's 200 is cut.
        with RawConn(self.ficus.port) as c:
            c.request("GET", "/api/partial")
            with self.assertRaises(Exception):
                c.read_response()
        # /drop closes without answering: ficus answers 502 itself, whole.
        self.assertEqual(request(self.ficus.port, "GET", "/api/drop").status, 502)
        cut, dropped = wait_lines(path, 2)
        self.assertEqual((cut["status"], cut["termination"], cut["bytes_out"]),
                         (200, "upstream_closed", 10), cut)
        self.assertIsNotNone(cut["error"])
        self.assertEqual((dropped["status"], dropped["termination"]), (502, "complete"), dropped)
        self.assertEqual(dropped["error"], "upstream closed the connection without responding")

    def test_client_closed_mid_response(self):
        path = self.start({})
        n = 64 << 20
        c = RawConn(self.ficus.port)
        c.request("GET", "/api/bytes?n=%d" % n)
        self.assertTrue(c.sock.recv(65536))  # the response started
        # An abortive close (RST): ficus's next write fails.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.sock.close()
        line = wait_lines(path, 1)[0]
        self.assertEqual((line["status"], line["termination"]), (200, "client_closed"), line)
        self.assertEqual(line["error"],
                         "client closed the connection before the response was complete")
        self.assertLess(line["bytes_out"], n)

    def test_client_that_stops_reading(self):
        path = self.start({}, timeouts={"idle": "500ms"})
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.ficus.port))
        self.addCleanup(s.close)
        n = 64 << 20
        s.sendall(b"GET /api/bytes?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % n)
        # Never read: ficus's writes make no progress for timeouts.idle, then it gives up.
        lines = wait_lines(path, 1, timeout=10)
        self.assertEqual(len(lines), 1)
        line = lines[0]
        self.assertEqual((line["status"], line["termination"]), (200, "client_stalled"), line)
        self.assertEqual(line["error"],
                         "client stopped reading (no write progress within timeouts.idle)")
        self.assertLess(line["bytes_out"], n)

    def test_drain_deadline_cut_is_ficus_not_the_upstream(self):
        path = self.start({}, timeouts={"drain": "300ms"})
        got = []

        def slow():
            try:
                got.append(request(self.ficus.port, "GET", "/api/delay?ms=3000").status)
            except Exception as e:  # the connection closed without a response
                got.append(type(e).__name__)
        t = threading.Thread(target=slow)
        t.start()
        self.assertTrue(wait_until(lambda: self.ficus.metrics().get(
            "ficus_route_requests_in_flight", route="api") == 1, 5 * TIME_FACTOR))
        self.ficus.signal(signal.SIGTERM)
        self.ficus.proc.wait(20 * TIME_FACTOR)
        t.join(10 * TIME_FACTOR)
        self.assertNotEqual(got, [200])
        self.assertNotEqual(got, [502])  # no answer blaming the upstream
        lines = read_lines(path)
        self.assertEqual(len(lines), 1, lines)
        line = lines[0]
        self.assertEqual(line["termination"], "drain", line)
        self.assertEqual(line["error"], "closed by ficus at the drain deadline")
        self.assertEqual(line["status"], 503)

    def test_chunked_request_body_counts_payload_bytes(self):
        path = self.start({"fields": ["status", "bytes_in", "termination"]})
        body = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        r = request(self.ficus.port, "POST", "/api/upload", body=body,
                    headers={"Transfer-Encoding": "chunked"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body)["length"], 11)
        self.assertEqual(wait_lines(path, 1),
                         [{"status": 200, "bytes_in": 11, "termination": "complete"}])
        m = self.ficus.settled_metrics()
        self.assertEqual(m.get("ficus_route_request_bytes_total", route="api"), 11)

    def test_unwritable_path_fails_startup(self):
        up = self.start_upstream("x")
        cfg = make_config({"app": [endpoint(up.port)]},
                          [{"match": {"path_prefix": "/"}, "cluster": "app"}],
                          access_log={"path": "/nonexistent-dir/x/access.log"})
        f = self.start_ficus(cfg, wait=False)
        self.assertTrue(wait_until(lambda: not f.alive(), 10 * TIME_FACTOR))
        self.assertEqual(f.proc.returncode, 1)
        self.assertIn("access_log", f.log_text())


if __name__ == "__main__":
    unittest.main()
