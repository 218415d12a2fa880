"""Compression and the cache's failure paths end to end: a python origin (test_cache.Origin)
behind ficus, real clients (curl --compressed, python's gzip/zlib) that must get the origin's
bytes back exactly, and the origin's request counts."""

import gzip
import os
import shutil
import subprocess
import threading
import time
import unittest
import zlib

from harness import FicusTestCase, endpoint, make_config, request, wait_until
from test_cache import Origin


def json_body(n):
    parts = []
    size = 0
    i = 0
    while size < n:
        p = '{"id":%d,"name":"item %d","tags":["a","b"]},' % (i, i % 97)
        parts.append(p)
        size += len(p)
        i += 1
    return "".join(parts)[:n].encode()


class CompressTest(FicusTestCase):
    TOKEN = "compress-test-token-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.origin = Origin()
        cls.addClassCleanup(cls.origin.stop)
        cls.failing = Origin()  # stopped by the stale-if-error test
        cls.addClassCleanup(cls.failing.stop)
        cls.config = make_config(
            [{"name": "app", "endpoints": [endpoint(cls.origin.port)], "connect_timeout": "1s"},
             {"name": "failing", "endpoints": [endpoint(cls.failing.port)],
              "connect_timeout": "1s"}],
            [{"name": "failing", "match": {"path_prefix": "/down/"}, "cluster": "failing",
              "cache": {"stale_if_error": "60s"}},
             {"name": "slow", "match": {"path_prefix": "/slow/"}, "cluster": "app",
              "cache": {"coalesce_timeout": "200ms"}},
             {"name": "plain", "match": {"path_prefix": "/plain/"}, "cluster": "app",
              "compress": {"min_size": "1KiB"}},
             {"name": "cached", "match": {"path_prefix": "/"}, "cluster": "app",
              "compress": {}, "cache": {}}],
            workers=2, admin={"token": cls.TOKEN})
        cls.ficus = cls.start_ficus_for_class(cls.config)

    def curl(self, path, *args):
        if not shutil.which("curl"):
            self.skipTest("curl is not installed")
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "10", "-D", "-", *args,
             "http://127.0.0.1:%d%s" % (self.ficus.port, path)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True, timeout=20)
        head, _, body = out.stdout.partition(b"\r\n\r\n")
        fields = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        return fields, body

    def test_curl_decodes_every_coding_to_the_origins_bytes(self):
        body = json_body(150 * 1024)
        self.origin.set("/plain/big.json", fields=[("Content-Type", "application/json"),
                                                   ("ETag", '"e1"')], body=body)
        for coding in ("gzip", "br", "zstd"):
            for version in ([], ["--http1.0"]):
                fields, got = self.curl("/plain/big.json", "--compressed", "-H",
                                        "Accept-Encoding: %s" % coding, *version)
                self.assertEqual(fields.get("content-encoding"), coding, (coding, version))
                self.assertEqual(fields.get("vary"), "Accept-Encoding")
                self.assertEqual(fields.get("etag"), 'W/"e1"')
                self.assertNotIn("content-length", fields)
                self.assertEqual(got, body, (coding, version))

    def test_python_gzip_and_q_values(self):
        body = json_body(20 * 1024)
        self.origin.set("/plain/q.json", fields=[("Content-Type", "application/json")], body=body)
        r = request(self.ficus.port, "GET", "/plain/q.json",
                    headers={"Accept-Encoding": "br;q=0.1, gzip;q=0.9, zstd;q=0"})
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(gzip.decompress(r.body), body)
        self.assertLess(len(r.body), len(body) // 4)
        # identity;q=0 with nothing else offered acceptable: the identity body all the same.
        r = request(self.ficus.port, "GET", "/plain/q.json",
                    headers={"Accept-Encoding": "deflate, identity;q=0"})
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.body, body)
        # No Accept-Encoding: identity, but the response says it varies.
        r = request(self.ficus.port, "GET", "/plain/q.json")
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.header("vary"), "Accept-Encoding")
        self.assertEqual(r.header("content-length"), str(len(body)))

    def test_what_must_not_be_compressed_is_not(self):
        big = json_body(8 * 1024)
        cases = {
            "/plain/encoded": [("Content-Type", "application/json"), ("Content-Encoding", "br")],
            "/plain/notransform": [("Content-Type", "application/json"),
                                   ("Cache-Control", "no-transform")],
            "/plain/image": [("Content-Type", "image/jpeg")],
            "/plain/notype": [],
        }
        for path, fields in cases.items():
            self.origin.set(path, fields=fields, body=big)
            r = request(self.ficus.port, "GET", path, headers={"Accept-Encoding": "gzip"})
            self.assertNotEqual(r.header("content-encoding"), "gzip", path)
            self.assertEqual(r.body, big, path)
        self.origin.set("/plain/small", fields=[("Content-Type", "application/json")],
                        body=b'{"a":1}')
        r = request(self.ficus.port, "GET", "/plain/small", headers={"Accept-Encoding": "gzip"})
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.body, b'{"a":1}')
        self.origin.set("/plain/nocontent", status=204, fields=[("Content-Type", "text/plain")],
                        body=b"")
        r = request(self.ficus.port, "GET", "/plain/nocontent", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("content-encoding"))

    def test_the_cache_compresses_once_per_variant(self):
        body = json_body(64 * 1024)
        self.origin.set("/c/doc.json", fields=[("Content-Type", "application/json"),
                                               ("Cache-Control", "max-age=60"), ("ETag", '"d1"')],
                        body=body)
        first = request(self.ficus.port, "GET", "/c/doc.json",
                        headers={"Accept-Encoding": "gzip, deflate"})
        self.assertIn("stored", first.header("cache-status"))
        self.assertEqual(zlib.decompress(first.body, 16 + zlib.MAX_WBITS), body)
        for spelling in ("gzip, deflate", "deflate,GZIP", "Gzip ,  deflate"):
            r = request(self.ficus.port, "GET", "/c/doc.json",
                        headers={"Accept-Encoding": spelling})
            self.assertTrue(r.header("cache-status").startswith("ficus; hit"), r)
            self.assertEqual(r.header("content-encoding"), "gzip")
            self.assertEqual(r.header("etag"), 'W/"d1"')
            self.assertEqual(r.header("content-length"), str(len(r.body)))
            self.assertEqual(gzip.decompress(r.body), body)
        self.assertEqual(self.origin.count("/c/doc.json"), 1)
        # The client's own conditional with the variant's weak ETag: 304 from the store.
        r = request(self.ficus.port, "GET", "/c/doc.json",
                    headers={"Accept-Encoding": "gzip, deflate", "If-None-Match": 'W/"d1"'})
        self.assertEqual(r.status, 304)
        # An identity client: its own variant, from the origin once, with the strong ETag.
        for _ in range(2):
            r = request(self.ficus.port, "GET", "/c/doc.json")
            self.assertIsNone(r.header("content-encoding"))
            self.assertEqual(r.header("etag"), '"d1"')
            self.assertEqual(r.body, body)
        self.assertEqual(self.origin.count("/c/doc.json"), 2)
        # curl, which decodes zstd: a third variant, then a hit.
        fields, got = self.curl("/c/doc.json", "--compressed", "-H", "Accept-Encoding: zstd")
        self.assertEqual(fields.get("content-encoding"), "zstd")
        self.assertEqual(got, body)
        fields, got = self.curl("/c/doc.json", "--compressed", "-H", "Accept-Encoding: zstd")
        self.assertTrue(fields.get("cache-status", "").startswith("ficus; hit"), fields)
        self.assertEqual(got, body)
        self.assertEqual(self.origin.count("/c/doc.json"), 3)

    def test_no_transform_never_gets_an_encoded_variant(self):
        body = json_body(16 * 1024)
        gz = {"Accept-Encoding": "gzip"}
        nt = {"Accept-Encoding": "gzip", "Cache-Control": "no-transform"}
        fields = [("Content-Type", "application/json"), ("Cache-Control", "max-age=60")]
        # A stored gzip variant: a no-transform request gets the origin's bytes from the origin,
        # and the gzip variant stays for the others.
        self.origin.set("/c/nt.json", fields=fields, body=body)
        self.assertEqual(request(self.ficus.port, "GET", "/c/nt.json",
                                 headers=gz).header("content-encoding"), "gzip")
        r = request(self.ficus.port, "GET", "/c/nt.json", headers=nt)
        self.assertIsNone(r.header("content-encoding"))
        self.assertEqual(r.body, body)
        self.assertEqual(self.origin.count("/c/nt.json"), 2)
        r = request(self.ficus.port, "GET", "/c/nt.json", headers=gz)
        self.assertTrue(r.header("cache-status").startswith("ficus; hit"), r)
        self.assertEqual(gzip.decompress(r.body), body)
        # Cold: the no-transform request's identity body is not stored under gzip's key.
        self.origin.set("/c/nt2.json", fields=fields, body=body)
        r = request(self.ficus.port, "GET", "/c/nt2.json", headers=nt)
        self.assertIsNone(r.header("content-encoding"))
        self.assertIn("detail=no-transform", r.header("cache-status"))
        r = request(self.ficus.port, "GET", "/c/nt2.json", headers=gz)
        self.assertEqual(r.header("content-encoding"), "gzip")
        self.assertEqual(self.origin.count("/c/nt2.json"), 2)
        # A response that says no-transform is stored as it came and never compressed.
        self.origin.set("/c/nt3.json", body=body, fields=[
            ("Content-Type", "application/json"), ("Cache-Control", "max-age=60, no-transform")])
        for _ in range(2):
            r = request(self.ficus.port, "GET", "/c/nt3.json", headers=gz)
            self.assertIsNone(r.header("content-encoding"))
            self.assertEqual(r.body, body)
        self.assertTrue(r.header("cache-status").startswith("ficus; hit"), r)
        self.assertEqual(self.origin.count("/c/nt3.json"), 1)

    def test_a_waiter_stops_waiting_after_coalesce_timeout(self):
        self.origin.set("/slow/x", fields=[("Cache-Control", "max-age=60")], body=b"slow",
                        delay=1.5)
        results = []

        def get():
            results.append(request(self.ficus.port, "GET", "/slow/x", timeout=10))

        first = threading.Thread(target=get)
        first.start()
        self.assertTrue(wait_until(lambda: self.origin.count("/slow/x") == 1, 5))
        get()
        first.join(10)
        self.assertEqual([r.status for r in results], [200, 200])
        # The second went to the origin itself after 200 ms, not after the first's 1.5 s fill.
        self.assertEqual(self.origin.count("/slow/x"), 2)
        # The first (the fill's leader) stored; the second stopped waiting for it.
        statuses = sorted(r.header("cache-status") for r in results)
        self.assertIn("fwd=miss", statuses[0])
        self.assertIn("fwd=uri-miss", statuses[1])
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_cache_coalesce_timeouts_total", route="slow"), 1)

    def test_stale_if_error_when_the_origin_cannot_be_reached(self):
        # Connection: close, so that no pooled connection outlives the origin.
        self.failing.set("/down/a", fields=[("Cache-Control", "max-age=1"),
                                            ("Connection", "close")], body=b"kept")
        r = request(self.ficus.port, "GET", "/down/a")
        self.assertIn("stored", r.header("cache-status"))
        self.failing.stop()
        time.sleep(2.2)  # stale now
        r = request(self.ficus.port, "GET", "/down/a")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"kept")
        self.assertIn("fwd=stale; detail=connect_failed", r.header("cache-status"))
        self.assertIsNotNone(r.header("age"))


if __name__ == "__main__":
    unittest.main()
