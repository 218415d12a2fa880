"""Streaming with backpressure: 1 GiB uploads (Content-Length and chunked) and a 1 GiB download
pass through with ficus RSS bounded (VmRSS sampled every 100 ms) and byte-exact integrity
(crc32 on both sides); chunked bodies both ways; Expect: 100-continue.
Under the ASan build (FICUS_SANITIZED=1): 256 MiB transfers and a 256 MiB RSS bound."""

import sys
import threading
import time
import unittest
import uuid
import zlib

from harness import (SANITIZED, TIME_FACTOR, FicusTestCase, RawConn, RssSampler,
                     UpstreamProcess, endpoint, make_config, request, wait_until)
from upstream import pattern_chunks, pattern_crc, pattern_slice

MiB = 1 << 20
SIZE = (256 if SANITIZED else 1024) * MiB
RSS_LIMIT_KIB = (256 if SANITIZED else 64) * 1024
H = b"Host: localhost\r\n"
# Odd, varying chunk sizes so chunk boundaries never line up with anybody's buffers.
CHUNK_SIZES = [262144, 100003, 65521, 7, 131072]


def chunked_pieces(n):
    off, i = 0, 0
    while off < n:
        k = min(CHUNK_SIZES[i % len(CHUNK_SIZES)], n - off)
        yield pattern_slice(off, k)
        off += k
        i += 1


class StreamingTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        # Running the upstream in its own process keeps our GIL out of its data path.
        cls.up = UpstreamProcess("stream")
        cls.addClassCleanup(cls.up.stop)
        cfg = make_config({"app": [endpoint(cls.up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          limits={"max_body_bytes": "2GiB"},
                          timeouts={"upstream_response": "120s", "idle": "120s"})
        cls.ficus = cls.start_ficus_for_class(cfg)
        cls.port = cls.ficus.port

    def upload(self, size, chunked, query=""):
        """Streams `size` pattern bytes as a request body from a sender thread while this
        thread waits for the response (so an early answer can never deadlock the test)."""
        c = RawConn(self.port, timeout=120)
        self.addCleanup(c.close)
        tok = uuid.uuid4().hex[:10]
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        c.send(b"POST /upload?t=%s%s HTTP/1.1\r\n%s%s\r\n\r\n" % (
            tok.encode(), query.encode(), H, framing))
        err = []

        def send():
            try:
                if chunked:
                    for piece in chunked_pieces(size):
                        c.sock.sendall(b"%x\r\n" % len(piece))
                        c.sock.sendall(piece)
                        c.sock.sendall(b"\r\n")
                    c.sock.sendall(b"0\r\n\r\n")
                else:
                    for piece in pattern_chunks(size):
                        c.sock.sendall(piece)
            except OSError as e:
                err.append(e)
        t = threading.Thread(target=send, daemon=True)
        t0 = time.monotonic()
        t.start()
        r = c.read_response("POST")
        t.join(30)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, (r, err))
        self.assertEqual(err, [])
        return r, tok, elapsed

    def check_rss(self, sampler, what):
        sys.stderr.write("\n%s: ficus VmRSS max %.1f MiB over %d samples\n" % (
            what, sampler.max_kib / 1024.0, len(sampler.samples)))
        self.assertGreater(len(sampler.samples), 0)
        self.assertLess(sampler.max_kib, RSS_LIMIT_KIB,
                        "%s: ficus RSS reached %.1f MiB" % (what, sampler.max_kib / 1024.0))

    def test_upload_content_length(self):
        expect = pattern_crc(SIZE)
        with RssSampler(self.ficus.pid) as rss:
            # The upstream stalls 1 s before reading: ficus must push back, not buffer.
            r, tok, elapsed = self.upload(SIZE, chunked=False, query="&stall_ms=1000")
        self.assertEqual(r.json(), {"server": "stream", "length": SIZE, "crc32": expect})
        sys.stderr.write("upload CL: %d MiB in %.1f s\n" % (SIZE // MiB, elapsed))
        self.check_rss(rss, "upload (Content-Length)")
        req = [q for q in self.up.requests() if tok in q["target"]][0]
        self.assertEqual([v for n, v in req["headers"] if n.lower() == "content-length"],
                         [str(SIZE)])

    def test_upload_chunked(self):
        expect = pattern_crc(SIZE)
        with RssSampler(self.ficus.pid) as rss:
            r, tok, elapsed = self.upload(SIZE, chunked=True, query="&stall_ms=1000")
        self.assertEqual(r.json(), {"server": "stream", "length": SIZE, "crc32": expect})
        sys.stderr.write("upload chunked: %d MiB in %.1f s\n" % (SIZE // MiB, elapsed))
        self.check_rss(rss, "upload (chunked)")
        req = [q for q in self.up.requests() if tok in q["target"]][0]
        names = {n.lower(): v for n, v in req["headers"]}
        self.assertEqual(names.get("transfer-encoding", "").lower(), "chunked",
                         "a chunked request body must be forwarded chunked")
        self.assertNotIn("content-length", names)

    def test_download_content_length(self):
        expect = pattern_crc(SIZE)
        paused = []

        def pause_once(data, state={"n": 0}):
            state["n"] += len(data)
            if not paused and state["n"] >= 100 * MiB:
                paused.append(True)
                time.sleep(1.0)  # a slow reader: ficus must stop reading from the upstream
        with RssSampler(self.ficus.pid) as rss:
            t0 = time.monotonic()
            with RawConn(self.port, timeout=120) as c:
                c.send(b"GET /bytes?n=%d HTTP/1.1\r\n%s\r\n" % (SIZE, H))
                r = c.read_response(sink=pause_once, keep_body=False)
            elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-length"), str(SIZE))
        self.assertEqual(r.body_length, SIZE)
        self.assertEqual(r.body_crc32, expect)
        sys.stderr.write("download: %d MiB in %.1f s\n" % (SIZE // MiB, elapsed))
        self.check_rss(rss, "download")

    def wait_upstream_closed(self, tok):
        def closed():
            for conn in self.up.connections():
                if any(tok in r["target"] for r in conn["requests"]):
                    return conn["closed"] is not None
            return False
        return wait_until(closed, 3 * TIME_FACTOR, 0.05)

    def test_client_abort_during_download_closes_upstream(self):
        tok = uuid.uuid4().hex[:10]
        with RawConn(self.port, timeout=30) as c:
            c.send(b"GET /bytes?n=%d&t=%s HTTP/1.1\r\n%s\r\n" % (SIZE, tok.encode(), H))
            got = 0
            while got < 8 * MiB:
                d = c.read_some()
                self.assertTrue(d)
                got += len(d)
        self.assertTrue(self.wait_upstream_closed(tok),
                        "the upstream connection kept streaming after the client left")
        self.assertEqual(request(self.port, "GET", "/echo").status, 200)

    def test_client_abort_during_upload_closes_upstream(self):
        tok = uuid.uuid4().hex[:10]
        with RawConn(self.port, timeout=30) as c:
            c.send(b"POST /upload?t=%s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n"
                   % (tok.encode(), H, SIZE))
            for piece in pattern_chunks(8 * MiB):
                c.sock.sendall(piece)
        self.assertTrue(self.wait_upstream_closed(tok),
                        "the upstream connection stayed open after the client left mid-body")
        reqs = [r for r in self.up.requests() if tok in r["target"]]
        self.assertEqual(len(reqs), 1)
        self.assertFalse(reqs[0]["complete"])

    def test_download_chunked_forwarded_chunked(self):
        n = 64 * MiB + 12345
        with RawConn(self.port, timeout=60) as c:
            c.send(b"GET /bytes?n=%d&chunked=1 HTTP/1.1\r\n%s\r\n" % (n, H))
            r = c.read_response(keep_body=False)
            self.assertEqual(r.status, 200, r)
            self.assertTrue(r.chunked, "a chunked response must be forwarded chunked: %r" % r)
            self.assertFalse(r.has_header("content-length"))
            self.assertEqual(r.body_length, n)
            self.assertEqual(r.body_crc32, pattern_crc(n))
            # The connection is reusable after a chunked response.
            c.send(b"GET /echo HTTP/1.1\r\n%s\r\n" % H)
            self.assertEqual(c.read_response().status, 200)

    def test_chunked_upload_with_extensions_and_trailers(self):
        body = b"".join(bytes(p) for p in chunked_pieces(300000))
        raw = b""
        off = 0
        for i, k in enumerate([1, 16, 4095, 100000, 195888]):
            raw += b"%x;ext%d=v\r\n%s\r\n" % (k, i, body[off:off + k])
            off += k
        self.assertEqual(off, len(body))
        raw += b"0\r\nX-Checksum: abc\r\n\r\n"
        with RawConn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n\r\n" % H + raw)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            j = r.json()
            self.assertEqual(j["body_length"], len(body))
            self.assertEqual(j["body_crc32"], zlib.crc32(body))
            c.send(b"GET /echo HTTP/1.1\r\n%s\r\n" % H)
            self.assertEqual(c.read_response().status, 200)

    def test_expect_100_continue(self):
        with RawConn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\n%sContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                   % H)
            c.settimeout(2.0 * TIME_FACTOR)
            interim = c.bs.read_head()
            self.assertIsNotNone(interim)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 "), interim)
            c.settimeout(10)
            c.send(b"hello")
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            j = r.json()
            self.assertEqual(j["body"], "hello")
            names = {n.lower() for n, _ in j["headers"]}
            self.assertNotIn("expect", names, "Expect must not be forwarded")

    def test_expect_100_continue_body_sent_without_waiting(self):
        # Clients may send the body right away; the exchange must still complete normally.
        with RawConn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\n%sContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                   b"hello" % H)
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body"], "hello")
            self.assertTrue(all(i.status == 100 for i in r.interim), r.interim)
            c.send(b"GET /echo?after=1 HTTP/1.1\r\n%s\r\n" % H)
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "after=1")

    def test_expect_100_continue_chunked(self):
        with RawConn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\n%sTransfer-Encoding: chunked\r\n"
                   b"Expect: 100-continue\r\n\r\n" % H)
            c.settimeout(2.0 * TIME_FACTOR)
            interim = c.bs.read_head()
            self.assertTrue(interim and interim.startswith(b"HTTP/1.1 100 "), interim)
            c.settimeout(10)
            c.send(b"5\r\nhello\r\n0\r\n\r\n")
            r = c.read_response("POST")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["body"], "hello")
            self.assertEqual(r.interim, [])

    def test_expect_100_continue_over_limit_is_413_without_continue(self):
        with RawConn(self.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\n%sContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
                   % (H, 3 << 30))
            r = c.read_response("POST")
            self.assertEqual(r.interim, [], "100 Continue sent for a body that will be refused")
            self.assertErrorResponse(r, 413, "body_too_large")

    def test_head_response_to_large_resource(self):
        r = request(self.port, "HEAD", "/bytes?n=%d" % SIZE)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-length"), str(SIZE))
        self.assertEqual(r.body, b"")


if __name__ == "__main__":
    unittest.main()
