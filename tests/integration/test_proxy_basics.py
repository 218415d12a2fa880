"""Proxying basics: routing, 404, keep-alive, pipelining, HTTP/1.0, Connection: close,
header handling, X-Request-Id, round robin with weights, 502 and 504."""

import collections
import time
import unittest
import uuid

from harness import (FicusTestCase, RawConn, TIME_FACTOR, endpoint,
                     free_port, make_config, request)
import upstream as upstream_mod


def token():
    return uuid.uuid4().hex[:12]


class ProxyBasicsTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.a = cls.start_upstream_for_class("a")
        cls.b = cls.start_upstream_for_class("b")
        clusters = [
            {"name": "a", "endpoints": [endpoint(cls.a.port)], "connect_timeout": "1s"},
            {"name": "b", "endpoints": [endpoint(cls.b.port)], "connect_timeout": "1s"},
            {"name": "rr", "endpoints": [endpoint(cls.a.port), endpoint(cls.b.port)]},
            {"name": "wrr", "endpoints": [endpoint(cls.a.port, 1), endpoint(cls.b.port, 2)]},
            {"name": "dead", "endpoints": [endpoint(free_port())], "connect_timeout": "1s"},
        ]
        routes = [
            {"name": "canary", "match": {"path_prefix": "/api",
                                         "headers": [{"name": "x-env", "value": "canary"}]},
             "cluster": "b"},
            {"name": "hostb", "match": {"host": "b.example", "path_prefix": "/"}, "cluster": "b"},
            {"name": "api", "match": {"path_prefix": "/api", "methods": ["GET", "HEAD"]},
             "cluster": "a"},
            {"name": "exact", "match": {"path": "/exact"}, "cluster": "b"},
            {"name": "rr", "match": {"path_prefix": "/rr"}, "cluster": "rr"},
            {"name": "wrr", "match": {"path_prefix": "/wrr"}, "cluster": "wrr"},
            {"name": "dead", "match": {"path_prefix": "/dead"}, "cluster": "dead"},
            {"name": "slow", "match": {"path_prefix": "/slow"}, "cluster": "a",
             "upstream_timeout": "300ms"},
        ]
        routes.append({"name": "deadline", "match": {"path_prefix": "/budget"},
                       "cluster": "a", "timeout": "300ms"})
        for p in ("echo", "bytes", "status", "delay", "drop", "garbage", "partial", "upload"):
            routes.append({"name": p, "match": {"path_prefix": "/" + p}, "cluster": "a"})
        cls.ficus = cls.start_ficus_for_class(make_config(clusters, routes))
        cls.port = cls.ficus.port

    # -- helpers
    def get(self, path, headers=None, method="GET", body=None, host="localhost"):
        return request(self.port, method, path, headers, body, host=host)

    def upstream_requests(self, up, tok):
        return [r for r in up.requests() if tok in r["target"]]

    def served_by(self, resp):
        return resp.header("x-upstream")

    # -- routing
    def test_route_by_path_prefix(self):
        r = self.get("/api/echo")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.served_by(r), "a")
        self.assertEqual(r.json()["path"], "/api/echo")
        r = self.get("/api")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.served_by(r), "a")

    def test_route_by_header(self):
        r = self.get("/api/echo", {"X-Env": "canary"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.served_by(r), "b")
        r = self.get("/api/echo", {"X-Env": "stable"})
        self.assertEqual(self.served_by(r), "a", r)

    def test_route_by_host(self):
        for host in ("b.example", "B.Example", "b.example:8080"):
            r = self.get("/somewhere/echo", host=host)
            self.assertEqual(r.status, 200, (host, r))
            self.assertEqual(self.served_by(r), "b", (host, r))
        r = self.get("/somewhere", host="c.example")
        self.assertEqual(r.status, 404, r)

    def test_route_by_method(self):
        r = self.get("/api/echo", method="HEAD")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"")
        r = self.get("/api/echo", method="POST", body=b"x")
        self.assertErrorResponse(r, 404, "no_route")

    def test_route_exact_path(self):
        r = self.get("/exact")
        self.assertEqual(self.served_by(r), "b", r)
        for path in ("/exact/more", "/exactly"):
            r = self.get(path)
            self.assertErrorResponse(r, 404, "no_route")

    def test_no_route_is_404_json_and_keeps_connection(self):
        tok = token()
        with RawConn(self.port) as c:
            c.request("GET", "/nowhere?t=" + tok)
            r = c.read_response()
            body = self.assertErrorResponse(r, 404, "no_route")
            self.assertTrue(body["request_id"])
            if r.has_header("x-request-id"):
                self.assertEqual(body["request_id"], r.header("x-request-id"))
            c.request("GET", "/echo?t=" + tok)
            self.assertEqual(c.read_response().status, 200)
        self.assertEqual(len(self.upstream_requests(self.a, tok)), 1)
        self.assertEqual(len(self.upstream_requests(self.b, tok)), 0)

    # -- connections
    def test_keep_alive_client_and_pooled_upstream(self):
        tok = token()
        known = {c["id"] for c in self.a.connections()}
        with RawConn(self.port) as c:
            for i in range(5):
                c.request("GET", "/echo?t=%s&i=%d" % (tok, i))
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["query"], "t=%s&i=%d" % (tok, i))
                self.assertNotIn("close", r.header("connection", "").lower())
        reqs = self.upstream_requests(self.a, tok)
        self.assertEqual(len(reqs), 5)
        opened = {r["conn_id"] for r in reqs} - known
        self.assertLessEqual(len(opened), 1, "sequential requests should reuse a pooled upstream "
                                             "connection; opened %d" % len(opened))

    def test_pipelining_answered_in_order(self):
        tok = token()
        paths = ["/delay?ms=300", "/echo?x=1", "/status/201?x=1", "/echo?x=1"]
        with RawConn(self.port) as c:
            c.send(b"".join(b"GET %s&t=%s&i=%d HTTP/1.1\r\nHost: localhost\r\n\r\n"
                            % (p.encode(), tok.encode(), i) for i, p in enumerate(paths)))
            got = []
            for i in range(len(paths)):
                r = c.read_response()
                got.append(r.status)
                if r.status == 200:
                    self.assertIn("i=%d" % i, r.json()["query"])
            self.assertEqual(got, [200, 200, 201, 200])

    def test_pipelining_many_in_one_write(self):
        n = 200
        with RawConn(self.port, timeout=20) as c:
            c.send(b"".join(b"GET /echo?i=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
            for i in range(n):
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["query"], "i=%d" % i)

    def test_head_split_at_every_byte(self):
        raw = b"GET /echo?split=1 HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\r\n"
        with RawConn(self.port) as c:
            for i in range(len(raw)):
                c.send(raw[i:i + 1])
                time.sleep(0.002)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "split=1")

    def test_pipelined_requests_with_bodies(self):
        tok = token()
        msgs = b""
        for i in range(3):
            body = (b"body-%d-" % i) * (1000 * (i + 1))
            msgs += b"POST /echo?t=%s&i=%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (
                tok.encode(), i, len(body), body)
        with RawConn(self.port) as c:
            c.send(msgs)
            for i in range(3):
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                j = r.json()
                self.assertIn("i=%d" % i, j["query"])
                self.assertEqual(j["body_length"], len(b"body-0-") * 1000 * (i + 1))

    def test_pipelined_chunked_bodies(self):
        # The head arrives first, then the rest of a chunked body and the next request in one
        # write: the bytes after the body's end belong to the next request.
        tok = token()
        with RawConn(self.port) as c:
            c.send(b"POST /echo?t=%s&i=0 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                   b"\r\n\r\n5\r\nhello\r\n" % tok.encode())
            time.sleep(0.1)
            c.send(b"6\r\n world\r\n0\r\n\r\n"
                   b"POST /echo?t=%s&i=1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                   b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                   b"GET /echo?t=%s&i=2 HTTP/1.1\r\nHost: x\r\n\r\n" % (tok.encode(), tok.encode()))
            bodies = []
            for i in range(3):
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertIn("i=%d" % i, r.json()["query"])
                bodies.append(r.json()["body"])
            self.assertEqual(bodies, ["hello world", "abc", ""])

    def test_client_abort_does_not_leak_stale_response(self):
        # A client gives up while its request is at the upstream: that upstream connection
        # must not go back to the pool with a response still coming.
        tok = token()
        for i in range(3):
            c = RawConn(self.port)
            c.request("GET", "/delay?ms=300&t=%s&stale=%d" % (tok, i))
            time.sleep(0.05)
            c.close()
        time.sleep(0.1)
        for i in range(6):
            r = self.get("/echo?t=%s&fresh=%d" % (tok, i))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "t=%s&fresh=%d" % (tok, i),
                             "got another client's response")
        time.sleep(0.5)
        for i in range(3):
            r = self.get("/echo?t=%s&late=%d" % (tok, i))
            self.assertEqual(r.json()["query"], "t=%s&late=%d" % (tok, i),
                             "got another client's response")

    def test_upstream_silently_closing_pooled_connection_is_retried(self):
        # The upstream closes an idle keep-alive connection (as one with a short keep-alive
        # timeout does); a GET sent on that dead pooled connection is retried, not a 502.
        for i in range(3):
            r = self.get("/echo?linger_close_ms=50&i=%d" % i)
            self.assertEqual(r.status, 200, r)
            time.sleep(0.3)
            r = self.get("/echo?after=%d" % i)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "after=%d" % i)

    def test_close_delimited_upstream_response(self):
        n = 300001
        with RawConn(self.port) as c:
            c.request("GET", "/bytes?n=%d&eof=1" % n)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body_length, n)
            self.assertEqual(r.body_crc32, upstream_mod.pattern_crc(n))
            if r.chunked or r.has_header("content-length"):
                c.request("GET", "/echo")  # re-framed: the connection is still usable
                self.assertEqual(c.read_response().status, 200)

    def test_http10_client(self):
        tok = token()
        with RawConn(self.port) as c:
            c.send(b"GET /echo?t=%s HTTP/1.0\r\n\r\n" % tok.encode())
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertIn(r.version, ("HTTP/1.0", "HTTP/1.1"))
            self.assertTrue(c.is_closed(), "HTTP/1.0 without keep-alive must be closed")
        self.assertEqual(len(self.upstream_requests(self.a, tok)), 1)

    def test_http10_client_gets_no_chunked_response(self):
        n = 100003
        with RawConn(self.port) as c:
            c.send(b"GET /bytes?n=%d&chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n" % n)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertFalse(r.chunked, "chunked framing sent to an HTTP/1.0 client: %r %r"
                             % (r.version, r.headers))
            self.assertEqual(r.body_length, n)
            self.assertEqual(r.body_crc32, upstream_mod.pattern_crc(n))

    def test_http10_keep_alive(self):
        with RawConn(self.port) as c:
            c.send(b"GET /echo HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            if "keep-alive" in r.header("connection", "").lower():
                c.send(b"GET /echo HTTP/1.0\r\nHost: x\r\n\r\n")
                self.assertEqual(c.read_response().status, 200)

    def test_connection_close(self):
        with RawConn(self.port) as c:
            c.request("GET", "/echo", {"Connection": "close"})
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertIn("close", r.header("connection", "").lower(), r)
            self.assertTrue(c.is_closed())

    def test_connection_close_ignores_pipelined_rest(self):
        tok = token()
        with RawConn(self.port) as c:
            c.send(b"GET /echo?t=%s&first=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                   b"GET /echo?t=%s&second=1 HTTP/1.1\r\nHost: x\r\n\r\n" % (tok.encode(),
                                                                            tok.encode()))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertTrue(c.is_closed())
        time.sleep(0.05)
        self.assertEqual([q["query"] for q in self.upstream_requests(self.a, tok)],
                         ["t=%s&first=1" % tok])

    def test_absolute_form_target(self):
        # RFC 9112 3.2.2: the authority of an absolute-form target replaces Host; it decides
        # the route, and the proxy sends origin-form with a Host generated from it.
        with RawConn(self.port) as c:
            c.send(b"GET http://b.example/echo?abs=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.served_by(r), "b", "route must use the target's authority")
            j = r.json()
            self.assertEqual(j["target"], "/echo?abs=1")
            hosts = [v for n, v in j["headers"] if n.lower() == "host"]
            self.assertEqual(hosts, ["b.example"],
                             "Host sent upstream must come from the absolute-form target")

    def test_upstream_closing_after_response_does_not_close_client(self):
        with RawConn(self.port) as c:
            for i in range(3):
                c.request("GET", "/echo?close=1&i=%d" % i)
                r = c.read_response()
                self.assertEqual(r.status, 200, r)
                self.assertNotIn("close", r.header("connection", "").lower(), r)

    def test_head_204_304_have_no_body_and_keep_framing(self):
        with RawConn(self.port) as c:
            c.request("HEAD", "/echo")
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200, r)
            for code in (204, 304):
                c.request("GET", "/status/%d" % code)
                r = c.read_response()
                self.assertEqual(r.status, code, r)
                self.assertEqual(r.body, b"")
            # HEAD answered with Transfer-Encoding: chunked has no body either.
            c.request("HEAD", "/echo?chunked=1")
            r = c.read_response("HEAD")
            self.assertEqual(r.status, 200, r)
            c.request("GET", "/echo?after=1")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "after=1")

    def test_upstream_status_and_body_pass_through(self):
        r = self.get("/status/503")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.body, b"status 503\n")
        self.assertEqual(self.served_by(r), "a")

    def test_request_body_and_query_forwarded(self):
        body = bytes(range(256)) * 100
        r = self.get("/echo?a=1&b=two", method="PUT", body=body)
        self.assertEqual(r.status, 200, r)
        j = r.json()
        self.assertEqual(j["method"], "PUT")
        self.assertEqual(j["target"], "/echo?a=1&b=two")
        self.assertEqual(j["body_length"], len(body))
        self.assertEqual(j["body_crc32"], upstream_mod.zlib.crc32(body))

    def test_large_header_forwarded(self):
        v = "v" * 4000
        r = self.get("/echo", {"X-Big": v})
        self.assertEqual(r.status, 200, r)
        self.assertIn(["X-Big", v], r.json()["headers"])

    # -- header handling
    def test_hop_by_hop_request_headers_removed(self):
        r = self.get("/echo", [
            ("Connection", "keep-alive, X-Drop-Me"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("X-Drop-Me", "secret"),
            ("X-Keep-Me", "yes"),
        ])
        self.assertEqual(r.status, 200, r)
        names = {n.lower() for n, _ in r.json()["headers"]}
        for h in ("connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade",
                  "x-drop-me"):
            self.assertNotIn(h, names, "hop-by-hop %s forwarded: %r" % (h, r.json()["headers"]))
        self.assertIn("x-keep-me", names)

    def test_hop_by_hop_response_headers_removed(self):
        r = self.get("/echo?hdr=Connection:keep-alive,%20X-Up-Hop&hdr=X-Up-Hop:1"
                     "&hdr=Keep-Alive:timeout%3D5&hdr=X-Up-Keep:1&hdr=Proxy-Connection:close")
        self.assertEqual(r.status, 200, r)
        names = {n.lower() for n, _ in r.headers}
        self.assertNotIn("x-up-hop", names, r)
        self.assertNotIn("keep-alive", names, r)
        self.assertNotIn("proxy-connection", names, r)
        self.assertIn("x-up-keep", names, r)

    def test_forwarded_headers(self):
        r = self.get("/echo", [("X-Forwarded-For", "203.0.113.7"), ("Via", "1.0 edge")],
                     host="shop.example")
        hs = r.json()["headers"]

        def values(name):
            return [v for n, v in hs if n.lower() == name]

        xff = ", ".join(values("x-forwarded-for"))
        self.assertEqual([p.strip() for p in xff.split(",")], ["203.0.113.7", "127.0.0.1"], hs)
        self.assertEqual(values("x-forwarded-proto"), ["http"], hs)
        self.assertEqual(values("x-forwarded-host"), ["shop.example"], hs)
        via = [p.strip() for p in ", ".join(values("via")).split(",")]
        self.assertEqual(via, ["1.0 edge", "1.1 ficus"], hs)

    def test_forwarded_for_across_several_field_lines(self):
        r = self.get("/echo", [("X-Forwarded-For", "198.51.100.1"),
                               ("X-Forwarded-For", "198.51.100.2")])
        xff = ", ".join(v for n, v in r.json()["headers"] if n.lower() == "x-forwarded-for")
        self.assertEqual([p.strip() for p in xff.split(",")],
                         ["198.51.100.1", "198.51.100.2", "127.0.0.1"])

    def test_forwarded_for_added_when_absent(self):
        hs = self.get("/echo").json()["headers"]
        self.assertEqual([v for n, v in hs if n.lower() == "x-forwarded-for"], ["127.0.0.1"])

    def test_via_on_response(self):
        r = self.get("/echo")
        via = ", ".join(r.header_all("via"))
        self.assertIn("1.1 ficus", via, r)
        r = self.get("/echo?hdr=Via:1.1%20cache")
        via = [p.strip() for p in ", ".join(r.header_all("via")).split(",")]
        self.assertEqual(via, ["1.1 cache", "1.1 ficus"], r.headers)

    def test_request_id_generated_and_echoed(self):
        ids = set()
        for _ in range(3):
            r = self.get("/echo")
            sent = [v for n, v in r.json()["headers"] if n.lower() == "x-request-id"]
            self.assertEqual(len(sent), 1, r)
            self.assertTrue(sent[0].strip(), "empty X-Request-Id")
            self.assertEqual(r.header("x-request-id"), sent[0], r)
            ids.add(sent[0])
        self.assertEqual(len(ids), 3, "request ids must differ: %r" % ids)

    def test_request_id_kept(self):
        r = self.get("/echo", {"X-Request-Id": "client-id-123"})
        sent = [v for n, v in r.json()["headers"] if n.lower() == "x-request-id"]
        self.assertEqual(sent, ["client-id-123"])
        self.assertEqual(r.header("x-request-id"), "client-id-123")

    # -- load balancing
    def test_round_robin(self):
        counts = collections.Counter(self.served_by(self.get("/rr/echo")) for _ in range(20))
        self.assertEqual(counts, {"a": 10, "b": 10})

    def test_weighted_round_robin(self):
        counts = collections.Counter(self.served_by(self.get("/wrr/echo")) for _ in range(30))
        self.assertLessEqual(abs(counts["a"] - 10), 1, counts)
        self.assertLessEqual(abs(counts["b"] - 20), 1, counts)
        self.assertEqual(counts["a"] + counts["b"], 30, counts)

    # -- upstream failures
    def test_connect_failure_is_502(self):
        r = self.get("/dead/echo")
        body = self.assertErrorResponse(r, 502, "connect_failed")
        self.assertTrue(body["request_id"])

    def test_upstream_timeout_is_504(self):
        t0 = time.monotonic()
        r = self.get("/slow/delay?ms=3000")
        elapsed = time.monotonic() - t0
        self.assertErrorResponse(r, 504, "upstream_timeout")
        self.assertGreaterEqual(elapsed, 0.25)
        self.assertLess(elapsed, 2.0 * TIME_FACTOR)
        # The connection to the client stays usable after a 504.
        with RawConn(self.port) as c:
            c.request("GET", "/slow/delay?ms=2000")
            self.assertEqual(c.read_response().status, 504)
            c.request("GET", "/echo")
            self.assertEqual(c.read_response().status, 200)

    def test_route_total_deadline_is_504(self):
        t0 = time.monotonic()
        r = self.get("/budget/delay?ms=3000")
        elapsed = time.monotonic() - t0
        self.assertErrorResponse(r, 504)
        self.assertLess(elapsed, 2.0 * TIME_FACTOR)

    def test_upstream_reset_is_502(self):
        r = self.get("/drop")
        self.assertErrorResponse(r, 502, "upstream_reset")

    def test_upstream_garbage_is_502(self):
        r = self.get("/garbage")
        self.assertErrorResponse(r, 502, "upstream_protocol")

    def test_upstream_truncated_body_closes_client(self):
        with RawConn(self.port) as c:
            c.request("GET", "/partial")
            with self.assertRaises((upstream_mod.PeerClosed, ConnectionResetError)):
                c.read_response()


if __name__ == "__main__":
    unittest.main()
