"""Limits and timeouts: 431 (head size, header count), 413 (Content-Length and chunked bodies
over max_body_bytes), 408 (head not complete within timeouts.request_head), and slowloris:
1000 trickling connections must not slow a normal client down."""

import os
import resource
import socket
import subprocess
import sys
import time
import unittest

from harness import (HERE, SANITIZED, TIME_FACTOR, ConnectionClosed, FicusTestCase, RawConn,
                     _die_with_parent, endpoint, make_config, request, send_raw)

H = b"Host: localhost\r\n"
MAX_BODY = 1 << 20
HEAD_TIMEOUT = 0.5
IDLE_TIMEOUT = 1.5


class LimitsTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("limits")
        cfg = make_config({"app": [endpoint(cls.up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          limits={"max_head_bytes": "16KiB", "max_header_count": 50,
                                  "max_body_bytes": "1MiB"},
                          timeouts={"request_head": "%dms" % (HEAD_TIMEOUT * 1000),
                                    "idle": "%dms" % (IDLE_TIMEOUT * 1000)})
        cls.ficus = cls.start_ficus_for_class(cfg)
        cls.port = cls.ficus.port

    def setUp(self):
        super().setUp()
        self.up.reset()

    def assertNothingUpstream(self):
        time.sleep(0.05)
        self.assertEqual(self.up.connections(), [], "a rejected request reached the upstream")

    # -- 431
    def test_head_under_limit_passes(self):
        r = request(self.port, "GET", "/echo", [("X-Big", "b" * 15000)])
        self.assertEqual(r.status, 200, r)

    def test_head_over_max_head_bytes_is_431(self):
        raw = b"GET /echo HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 20000 + b"\r\n\r\n"
        resp, closed = send_raw(self.port, raw)
        self.assertErrorResponse(resp, 431, "head_too_large")
        self.assertTrue(closed)
        self.assertNothingUpstream()

    def test_head_over_limit_without_end_is_431(self):
        # The head never ends: ficus must stop reading at the limit instead of buffering.
        with RawConn(self.port) as c:
            try:
                c.send(b"GET /echo HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 40000)
            except (BrokenPipeError, ConnectionResetError):
                pass
            r = c.read_response()
            self.assertErrorResponse(r, 431, "head_too_large")
        self.assertNothingUpstream()

    def test_long_request_line_is_431(self):
        raw = b"GET /echo?" + b"q" * 20000 + b" HTTP/1.1\r\n" + H + b"\r\n"
        resp, closed = send_raw(self.port, raw)
        self.assertErrorResponse(resp, 431, "head_too_large")
        self.assertTrue(closed)
        self.assertNothingUpstream()

    def test_header_count_at_limit_passes(self):
        headers = [("X-H%d" % i, "v") for i in range(49)]  # + Host = 50
        r = request(self.port, "GET", "/echo", headers)
        self.assertEqual(r.status, 200, r)

    def test_header_count_over_limit_is_431(self):
        raw = b"GET /echo HTTP/1.1\r\n" + H + b"".join(b"X-H%d: v\r\n" % i for i in range(60))
        resp, closed = send_raw(self.port, raw + b"\r\n")
        self.assertErrorResponse(resp, 431, "head_too_large")
        self.assertTrue(closed)
        self.assertNothingUpstream()

    # -- 413
    def test_content_length_at_limit_passes(self):
        body = b"x" * MAX_BODY
        r = request(self.port, "POST", "/upload", body=body, timeout=20)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["length"], MAX_BODY)

    def test_content_length_over_limit_is_413(self):
        # Only the head is sent: the answer must not wait for the body.
        raw = b"POST /upload HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (MAX_BODY + 1)
        resp, closed = send_raw(self.port, raw)
        self.assertErrorResponse(resp, 413, "body_too_large")
        self.assertTrue(closed)
        self.assertNothingUpstream()

    def test_chunked_body_over_limit_is_413(self):
        piece = b"c" * 65536
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        with RawConn(self.port, timeout=10) as c:
            c.send(b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n")
            try:
                for _ in range(MAX_BODY // len(piece) + 2):
                    c.send(chunk)
                c.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                pass
            r = c.read_response("POST")
            self.assertErrorResponse(r, 413, "body_too_large")
            self.assertTrue(c.is_closed())
        time.sleep(0.05)
        self.assertEqual(self.up.complete_requests(), [],
                         "the upstream received a complete over-limit body")

    def test_chunked_body_at_limit_passes(self):
        piece = b"c" * 65536
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        with RawConn(self.port, timeout=10) as c:
            c.send(b"POST /upload HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" +
                   chunk * (MAX_BODY // len(piece)) + b"0\r\n\r\n")
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["length"], MAX_BODY)

    # -- 408
    def test_incomplete_head_is_408(self):
        with RawConn(self.port) as c:
            t0 = time.monotonic()
            c.send(b"GET /echo HTTP/1.1\r\n" + H)
            r = c.read_response()
            elapsed = time.monotonic() - t0
            self.assertErrorResponse(r, 408, "head_timeout")
            self.assertGreaterEqual(elapsed, HEAD_TIMEOUT * 0.8)
            self.assertLess(elapsed, HEAD_TIMEOUT + 1.0 * TIME_FACTOR)
            self.assertTrue(c.is_closed())
        self.assertNothingUpstream()

    def test_trickled_head_is_408_at_the_deadline(self):
        # One byte every 100 ms: activity must not extend the whole-head deadline.
        data = b"GET /echo HTTP/1.1\r\n" + H + b"X-Slow: " + b"s" * 100
        with RawConn(self.port) as c:
            t0 = time.monotonic()
            c.settimeout(0.1)
            got = b""
            for i in range(len(data)):
                if time.monotonic() - t0 > 3.0 * TIME_FACTOR:
                    break
                try:
                    c.send(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    break
                try:
                    got = c.read_some(0.1)
                    if got:
                        break
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    break
            elapsed = time.monotonic() - t0
            c.bs.buf[:0] = got
            c.settimeout(5)
            r = c.read_response()
            self.assertErrorResponse(r, 408, "head_timeout")
            self.assertLess(elapsed, HEAD_TIMEOUT + 1.0 * TIME_FACTOR,
                            "the trickle extended the head deadline")
        self.assertNothingUpstream()

    def test_idle_keepalive_connection_is_closed(self):
        with RawConn(self.port) as c:
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.is_closed(IDLE_TIMEOUT + 2.0), "idle connection never closed")
            elapsed = time.monotonic() - t0
            self.assertGreater(elapsed, IDLE_TIMEOUT * 0.8, "closed before timeouts.idle")

    def test_head_timeout_does_not_apply_to_complete_requests(self):
        with RawConn(self.port) as c:
            for _ in range(2):
                c.request("GET", "/echo")
                self.assertEqual(c.read_response().status, 200)
                time.sleep(HEAD_TIMEOUT * 1.5)  # idle between requests is not a head timeout
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)


class MaxConnectionsTest(FicusTestCase):
    def test_connections_over_max_connections_are_refused(self):
        up = self.start_upstream("maxconn")
        cfg = make_config({"app": [endpoint(up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          limits={"max_connections": 3})
        f = self.start_ficus(cfg)
        held = []
        for _ in range(3):
            c = RawConn(f.port)
            self.addCleanup(c.close)
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)
            held.append(c)
        extra = RawConn(f.port)
        self.addCleanup(extra.close)
        try:
            extra.request("GET", "/echo")
            r = extra.read_response()
            self.fail("a 4th connection was served over max_connections=3: %r" % r)
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            pass
        held.pop().close()
        ok = False
        deadline = time.monotonic() + 3 * TIME_FACTOR
        while not ok and time.monotonic() < deadline:
            try:
                ok = request(f.port, "GET", "/echo").status == 200
            except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
                time.sleep(0.05)
        self.assertTrue(ok, "a slot freed by a closed connection was not reused")
        for c in held:  # the held connections still work
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


class SlowlorisTest(FicusTestCase):
    CONNS = 1000

    def measure(self, port, n, pause):
        lat = []
        for i in range(n):
            t0 = time.perf_counter()
            r = request(port, "GET", "/echo?probe=%d" % i)
            lat.append(time.perf_counter() - t0)
            self.assertEqual(r.status, 200, r)
            time.sleep(pause)
        return lat

    def test_slowloris_does_not_starve_normal_clients(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < self.CONNS + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d too low" % hard)
        if soft < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
        up = self.start_upstream("slowloris")
        cfg = make_config({"app": [endpoint(up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          timeouts={"request_head": "60s"})
        f = self.start_ficus(cfg)
        self.measure(f.port, 20, 0)  # warm-up (pool, caches)
        before = self.measure(f.port, 100, 0.01)

        driver = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "slowloris.py"), "--port", str(f.port),
             "--conns", str(self.CONNS), "--interval", "0.5", "--duration", "60"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)

        def stop_driver():
            if driver.poll() is None:
                try:
                    driver.stdin.close()
                    driver.wait(10)
                except (subprocess.TimeoutExpired, BrokenPipeError):
                    driver.kill()
                    driver.wait()
            driver.stdout.close()
        self.addCleanup(stop_driver)

        line = driver.stdout.readline().decode()
        self.assertTrue(line.startswith("OPEN "), "slowloris driver: %r" % line)
        self.assertEqual(int(line.split()[1]), self.CONNS, line)
        # ficus holds them all (not just the kernel's accept queue).
        active = 0
        deadline = time.monotonic() + 10 * TIME_FACTOR
        while time.monotonic() < deadline:
            active = f.metrics().get("ficus_downstream_connections_active")
            if active >= self.CONNS:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(active, self.CONNS, "ficus_downstream_connections_active")

        during = self.measure(f.port, 150, 0.02)  # spans several trickle ticks (~3 s)
        self.assertIsNone(driver.poll(), "driver exited early")
        driver.stdin.close()
        out = driver.stdout.read().decode()
        driver.wait(10)
        self.assertIn("closed_by_peer=0", out, "ficus closed slowloris connections early "
                      "(request_head is 60s): " + out)

        p99_before, p99_during = percentile(before, 99), percentile(during, 99)
        floor = 0.2 if SANITIZED else 0.05
        sys.stderr.write("\nslowloris: p50 before %.2f ms, during %.2f ms; p99 before %.2f ms, "
                         "during %.2f ms\n" % (percentile(before, 50) * 1e3,
                                               percentile(during, 50) * 1e3,
                                               p99_before * 1e3, p99_during * 1e3))
        self.assertLess(p99_during, max(floor, 5 * p99_before),
                        "p99 before %.2f ms, during %.2f ms" % (p99_before * 1e3,
                                                               p99_during * 1e3))
        self.assertEqual(len([r for r in up.requests() if "slowloris" in r["target"]]), 0)


if __name__ == "__main__":
    unittest.main()
