"""The response cache end to end: a python origin that sends the caching fields under test and
counts the requests it sees, ficus in front (two workers, so coalescing and hits cross threads).
Every assertion is on what the client got and what reached the origin."""

import http.server
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import json
import os
import subprocess

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, RawConn, endpoint, make_config,
                     request, wait_until)
from loopback_server import LoopbackHTTPServer


class Origin:
    """path -> (status, [(name, value)], body, delay_s); counts requests per path and keeps
    their headers (and the method, as ":method"). An If-None-Match equal to the response's ETag
    gets a 304. It never answers a Range itself: every range the client gets is ficus's."""

    def __init__(self):
        self.lock = threading.Lock()
        self.routes = {}
        self.seen = {}
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path
                with origin.lock:
                    origin.seen.setdefault(path, []).append(
                        dict(self.headers.items(), **{":method": self.command}))
                    status, fields, body, delay = origin.routes.get(
                        path, (200, [("Cache-Control", "max-age=60")], b"body " + path.encode(),
                               0))
                if delay:
                    time.sleep(delay)
                etag = dict((k.lower(), v) for k, v in fields).get("etag")
                if etag and self.headers.get("If-None-Match") == etag:
                    status, body = 304, b""
                self.send_response(status)
                for k, v in fields:
                    self.send_header(k, v)
                if status != 304:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD" and status != 304:
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = handle_any

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, path, status=200, fields=(), body=None, delay=0):
        with self.lock:
            self.routes[path] = (status, list(fields),
                                 body if body is not None else b"body " + path.encode(), delay)

    def count(self, path):
        with self.lock:
            return len(self.seen.get(path, []))

    def headers(self, path, i):
        with self.lock:
            return self.seen[path][i]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CacheTest(FicusTestCase):
    TOKEN = "cache-test-token-0123456789"

    @classmethod
    def setUpClass(cls):
        cls.origin = Origin()
        cls.addClassCleanup(cls.origin.stop)
        cls.config = make_config(
            {"app": [endpoint(cls.origin.port)]},
            [{"name": "ttl", "match": {"path_prefix": "/ttl/"}, "cluster": "app",
              "cache": {"ttl": "30s"}},
             {"name": "cached", "match": {"path_prefix": "/"}, "cluster": "app",
              "cache": {"stale_if_error": "60s", "query_ignore": ["utm_source"],
                        "query_sort": True}}],
            workers=2, admin={"token": cls.TOKEN})
        cls.ficus = cls.start_ficus_for_class(cls.config)

    def get(self, path, headers=None, method="GET"):
        return request(self.ficus.port, method, path, headers=headers)

    def test_miss_then_hit_with_age_and_cache_status(self):
        self.origin.set("/a", fields=[("Cache-Control", "max-age=60"), ("ETag", '"v1"')])
        first = self.get("/a")
        self.assertEqual(first.status, 200)
        self.assertEqual(first.body, b"body /a")
        self.assertIn("fwd=uri-miss", first.header("cache-status"))
        self.assertIn("stored", first.header("cache-status"))
        second = self.get("/a")
        self.assertEqual(second.status, 200)
        self.assertEqual(second.body, b"body /a")
        self.assertTrue(second.header("cache-status").startswith("ficus; hit"), second)
        self.assertIsNotNone(second.header("age"))
        self.assertEqual(second.header("etag"), '"v1"')
        self.assertEqual(self.origin.count("/a"), 1)
        # HEAD from the stored GET, and the client's own conditional answered with a 304.
        head = self.get("/a", method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("content-length"), str(len(b"body /a")))
        cond = self.get("/a", headers={"If-None-Match": '"v1"'})
        self.assertEqual(cond.status, 304)
        self.assertEqual(cond.body, b"")
        self.assertEqual(self.origin.count("/a"), 1)

    def test_query_normalisation_shares_one_entry(self):
        self.get("/q?b=2&a=1&utm_source=x")
        r = self.get("/q?a=1&b=2")
        self.assertIn("hit", r.header("cache-status"))
        self.assertEqual(self.origin.count("/q?b=2&a=1&utm_source=x"), 1)
        self.assertEqual(self.origin.count("/q?a=1&b=2"), 0)

    def test_uncacheable_responses_go_to_the_origin_every_time(self):
        for path, fields in [("/nostore", [("Cache-Control", "no-store")]),
                             ("/private", [("Cache-Control", "private, max-age=60")]),
                             ("/cookie", [("Set-Cookie", "a=1"), ("Last-Modified",
                                                                   "Sun, 06 Nov 1994 08:49:37 GMT")]),
                             ("/varystar", [("Cache-Control", "max-age=60"), ("Vary", "*")])]:
            self.origin.set(path, fields=fields)
            for _ in range(2):
                r = self.get(path)
                self.assertEqual(r.status, 200)
                self.assertIn("fwd-status=200", r.header("cache-status"))
            self.assertEqual(self.origin.count(path), 2, path)

    def test_rfc9111_storage_rules(self):
        def twice(path, fields, status=200, body=None):
            self.origin.set(path, status=status, fields=fields, body=body)
            return self.get(path), self.get(path)

        # §3: any final status with explicit freshness may be stored, understood or not...
        first, second = twice("/st599", [("Cache-Control", "max-age=60")], status=599)
        self.assertEqual(second.status, 599)
        self.assertIn("hit", second.header("cache-status"))
        self.assertEqual(self.origin.count("/st599"), 1)
        # ... but heuristic freshness only for the heuristically cacheable ones (not 403).
        twice("/st403", [("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")], status=403)
        self.assertEqual(self.origin.count("/st403"), 2)
        twice("/st404", [("Last-Modified", "Sun, 06 Nov 1994 08:49:37 GMT")], status=404)
        self.assertEqual(self.origin.count("/st404"), 1)
        # §4.2.1: two different max-age values (two field lines): stale.
        twice("/cc-dup", [("Cache-Control", "max-age=3600"), ("Cache-Control", "max-age=1")])
        self.assertEqual(self.origin.count("/cc-dup"), 2)
        # §4.2.3: the upstream's Age counts: max-age=10 with Age: 15 is stale on arrival.
        twice("/aged", [("Cache-Control", "max-age=10"), ("Age", "15")])
        self.assertEqual(self.origin.count("/aged"), 2)
        _, hit = twice("/aged-ok", [("Cache-Control", "max-age=100"), ("Age", "15")])
        self.assertGreaterEqual(int(hit.header("age")), 15)
        # RFC 9213: CDN-Cache-Control wins over Cache-Control, unless it is not a valid
        # Structured Field Dictionary: then it is ignored whole.
        twice("/cdn-ok", [("Cache-Control", "no-store"), ("CDN-Cache-Control", "max-age=10000")])
        self.assertEqual(self.origin.count("/cdn-ok"), 1)
        twice("/cdn-bad", [("CDN-Cache-Control", "max-age=10000, &&&&&"),
                           ("Cache-Control", "no-store")])
        self.assertEqual(self.origin.count("/cdn-bad"), 2)
        # §5.2.2.4: a qualified no-cache stores the response without the fields it names.
        first, hit = twice("/nc-fields", [("Cache-Control", 'no-cache="X-A, X-B", max-age=60'),
                                          ("X-A", "1"), ("X-B", "2"), ("X-C", "3")])
        self.assertEqual(first.header("x-a"), "1")
        self.assertIn("hit", hit.header("cache-status"))
        self.assertIsNone(hit.header("x-a"))
        self.assertIsNone(hit.header("x-b"))
        self.assertEqual(hit.header("x-c"), "3")
        self.assertEqual(self.origin.count("/nc-fields"), 1)
        # Fields a Connection field names are hop-by-hop: never stored (nor relayed).
        first, hit = twice("/conn", [("Cache-Control", "max-age=60"), ("Connection", "X-A"),
                                     ("X-A", "1"), ("X-C", "3")])
        self.assertIn("hit", hit.header("cache-status"))
        self.assertIsNone(hit.header("x-a"))
        self.assertEqual(hit.header("x-c"), "3")
        # Set-Cookie does not inhibit caching of a response with explicit freshness, but the
        # cookie goes to the client that caused the fetch only.
        first, hit = twice("/cookie-fresh", [("Cache-Control", "max-age=60"),
                                             ("Set-Cookie", "a=1")])
        self.assertEqual(first.header("set-cookie"), "a=1")
        self.assertIn("hit", hit.header("cache-status"))
        self.assertIsNone(hit.header("set-cookie"))
        self.assertEqual(self.origin.count("/cookie-fresh"), 1)

    def test_a_304_updates_the_stored_fields(self):
        # §3.2 / §4.3.4: the 304's fields replace the stored ones (Content-Type and others); its
        # Set-Cookie reaches the client that revalidated and is never stored.
        self.origin.set("/u304", fields=[("Cache-Control", "max-age=1"), ("ETag", '"u"'),
                                         ("Content-Type", "text/plain"), ("X-Test", "A")])
        self.get("/u304")
        time.sleep(2.1)
        self.origin.set("/u304", fields=[("Cache-Control", "max-age=3600"), ("ETag", '"u"'),
                                         ("Content-Type", "text/plain;charset=utf-8"),
                                         ("X-Test", "B"), ("Set-Cookie", "a=c")])
        r = self.get("/u304")
        self.assertIn("fwd-status=304", r.header("cache-status"))
        self.assertEqual(r.body, b"body /u304")
        self.assertEqual(r.header("x-test"), "B")
        self.assertEqual(r.header("content-type"), "text/plain;charset=utf-8")
        self.assertEqual(r.header("set-cookie"), "a=c")
        self.assertEqual(r.header("content-length"), str(len(b"body /u304")))
        hit = self.get("/u304")
        self.assertIn("hit", hit.header("cache-status"))
        self.assertEqual(hit.header("x-test"), "B")
        self.assertEqual(hit.header("cache-control"), "max-age=3600")
        self.assertIsNone(hit.header("set-cookie"))
        self.assertEqual(self.origin.count("/u304"), 2)

    def test_ranges_are_served_from_the_stored_full_response(self):
        # RFC 9110 §14: one range -> 206 with Content-Range, several -> multipart/byteranges,
        # none satisfiable -> 416, If-Range that does not match -> the whole 200. The origin sees
        # only the first GET.
        body = b"0123456789" * 30
        self.origin.set("/range", fields=[("Cache-Control", "max-age=60"), ("ETag", '"r1"'),
                                          ("Content-Type", "text/plain")], body=body)
        self.assertEqual(self.get("/range").body, body)
        for spec, part, content_range in [("bytes=0-1", b"01", "bytes 0-1/300"),
                                          ("bytes=290-", body[290:], "bytes 290-299/300"),
                                          ("bytes=-1", b"9", "bytes 299-299/300")]:
            r = self.get("/range", headers={"Range": spec})
            self.assertEqual(r.status, 206, spec)
            self.assertEqual(r.body, part, spec)
            self.assertEqual(r.header("content-range"), content_range)
            self.assertEqual(r.header("content-length"), str(len(part)))
            self.assertEqual(r.header("content-type"), "text/plain")
            self.assertIn("hit", r.header("cache-status"))
        multi = self.get("/range", headers={"Range": "bytes=0-1, 200-201"})
        self.assertEqual(multi.status, 206)
        ctype = multi.header("content-type")
        self.assertTrue(ctype.startswith("multipart/byteranges; boundary="), ctype)
        boundary = ctype.split("boundary=", 1)[1].encode()
        self.assertEqual(multi.body,
                         b"--" + boundary + b"\r\nContent-Type: text/plain\r\n"
                         b"Content-Range: bytes 0-1/300\r\n\r\n01\r\n"
                         b"--" + boundary + b"\r\nContent-Type: text/plain\r\n"
                         b"Content-Range: bytes 200-201/300\r\n\r\n01\r\n"
                         b"--" + boundary + b"--\r\n")
        self.assertEqual(multi.header("content-length"), str(len(multi.body)))
        unsatisfiable = self.get("/range", headers={"Range": "bytes=300-"})
        self.assertEqual(unsatisfiable.status, 416)
        self.assertEqual(unsatisfiable.header("content-range"), "bytes */300")
        changed = self.get("/range", headers={"Range": "bytes=0-1", "If-Range": '"r0"'})
        self.assertEqual(changed.status, 200)
        self.assertEqual(changed.body, body)
        same = self.get("/range", headers={"Range": "bytes=0-1", "If-Range": '"r1"'})
        self.assertEqual(same.status, 206)
        # HEAD is answered from the stored GET, and a Range on it is ignored.
        head = self.get("/range", method="HEAD", headers={"Range": "bytes=0-1"})
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("content-length"), "300")
        self.assertEqual(head.body, b"")
        self.assertEqual(self.origin.count("/range"), 1)

    def test_a_head_200_updates_or_invalidates_the_stored_get(self):
        # RFC 9111 §4.3.5: a stale stored GET; a HEAD goes to the origin as a HEAD, and its 200
        # refreshes the stored fields and freshness when Last-Modified and Content-Length agree.
        lm = "Sun, 06 Nov 1994 08:49:37 GMT"
        self.origin.set("/head", fields=[("Cache-Control", "max-age=1"), ("Last-Modified", lm),
                                         ("X-Test", "A")])
        self.get("/head")
        time.sleep(2.1)
        self.origin.set("/head", fields=[("Cache-Control", "max-age=3600"),
                                         ("Last-Modified", lm), ("X-Test", "B")])
        head = self.get("/head", method="HEAD")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.header("x-test"), "B")
        self.assertEqual(self.origin.count("/head"), 2)
        self.assertEqual(self.origin.headers("/head", 1)[":method"], "HEAD")
        hit = self.get("/head")
        self.assertIn("hit", hit.header("cache-status"))
        self.assertEqual(hit.header("x-test"), "B")
        self.assertEqual(hit.body, b"body /head")
        self.assertEqual(self.origin.count("/head"), 2)
        # A HEAD whose Last-Modified says the representation changed: the stored one goes, and
        # the next GET fetches the new one.
        self.origin.set("/head2", fields=[("Cache-Control", "max-age=1"), ("Last-Modified", lm)])
        self.get("/head2")
        time.sleep(2.1)
        self.origin.set("/head2", fields=[("Cache-Control", "max-age=60"),
                                          ("Last-Modified", "Mon, 07 Nov 1994 08:49:37 GMT")],
                        body=b"new body")
        head = self.get("/head2", method="HEAD")
        self.assertIn("detail=head-mismatch", head.header("cache-status"))
        r = self.get("/head2")
        self.assertEqual(r.body, b"new body")
        self.assertIn("fwd=uri-miss", r.header("cache-status"))
        self.assertEqual(self.origin.count("/head2"), 3)

    def test_route_ttl_caches_silent_upstreams_but_never_no_store(self):
        self.origin.set("/ttl/silent", fields=[])
        self.get("/ttl/silent")
        r = self.get("/ttl/silent")
        self.assertIn("hit", r.header("cache-status"))
        self.assertEqual(self.origin.count("/ttl/silent"), 1)
        self.origin.set("/ttl/nostore", fields=[("Cache-Control", "no-store")])
        self.get("/ttl/nostore")
        self.get("/ttl/nostore")
        self.assertEqual(self.origin.count("/ttl/nostore"), 2)
        # Without a route ttl, a silent 200 gets no heuristic freshness (no Last-Modified).
        self.origin.set("/silent", fields=[])
        self.get("/silent")
        self.get("/silent")
        self.assertEqual(self.origin.count("/silent"), 2)

    def test_stale_entries_revalidate_and_a_304_refreshes_them(self):
        self.origin.set("/reval", fields=[("Cache-Control", "max-age=1"), ("ETag", '"e1"')])
        self.get("/reval")
        time.sleep(2.1)
        r = self.get("/reval")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"body /reval")
        self.assertIn("fwd=stale; fwd-status=304", r.header("cache-status"))
        self.assertEqual(self.origin.count("/reval"), 2)
        self.assertEqual(self.origin.headers("/reval", 1).get("If-None-Match"), '"e1"')
        r = self.get("/reval")
        self.assertIn("hit", r.header("cache-status"))
        self.assertEqual(self.origin.count("/reval"), 2)

    def test_no_cache_request_and_response_go_to_the_origin(self):
        self.origin.set("/nc", fields=[("Cache-Control", "no-cache"), ("ETag", '"n"')])
        self.get("/nc")
        r = self.get("/nc")  # stored, but revalidated every time (a 304 here)
        self.assertEqual(r.body, b"body /nc")
        self.assertEqual(self.origin.count("/nc"), 2)
        self.origin.set("/rnc", fields=[("Cache-Control", "max-age=60")])
        self.get("/rnc")
        self.get("/rnc", headers={"Cache-Control": "no-cache"})
        self.assertEqual(self.origin.count("/rnc"), 2)
        self.get("/rnc", headers={"Cache-Control": "max-age=0"})  # a reload: asks the origin
        self.assertEqual(self.origin.count("/rnc"), 3)
        r = self.get("/rnc", headers={"Cache-Control": "max-age=60, min-fresh=5"})
        self.assertIn("hit", r.header("cache-status"))
        self.get("/rnc", headers={"Cache-Control": "min-fresh=3600"})  # not fresh enough
        self.assertEqual(self.origin.count("/rnc"), 4)
        r = self.get("/rnc", headers={"Pragma": "no-cache"})  # HTTP/1.0's no-cache
        self.assertEqual(self.origin.count("/rnc"), 5)
        r = self.get("/rnc-cold", headers={"Cache-Control": "only-if-cached"})
        self.assertEqual(r.status, 504)
        self.assertEqual(self.origin.count("/rnc-cold"), 0)

    def test_vary_selects_variants(self):
        self.origin.set("/vary", fields=[("Cache-Control", "max-age=60"),
                                         ("Vary", "Accept-Language")])
        self.get("/vary", headers={"Accept-Language": "en"})
        self.get("/vary", headers={"Accept-Language": "fr"})
        r = self.get("/vary", headers={"Accept-Language": "en"})
        self.assertIn("hit", r.header("cache-status"))
        r = self.get("/vary", headers={"Accept-Language": "de"})
        self.assertIn("fwd=vary-miss", r.header("cache-status"))
        self.assertEqual(self.origin.count("/vary"), 3)

    def test_unsafe_methods_invalidate_uri_and_location(self):
        for p in ("/inv", "/inv-loc"):
            self.origin.set(p, fields=[("Cache-Control", "max-age=60")])
            self.get(p)
        self.origin.set("/inv", status=200, fields=[("Location", "/inv-loc")], body=b"")
        r = request(self.ficus.port, "POST", "/inv", body=b"x")
        self.assertEqual(r.status, 200)
        self.origin.set("/inv", fields=[("Cache-Control", "max-age=60")])
        self.get("/inv")
        self.get("/inv-loc")
        self.assertEqual(self.origin.count("/inv"), 3)  # GET, POST, GET again
        self.assertEqual(self.origin.count("/inv-loc"), 2)

    def test_stale_if_error_serves_the_stored_response(self):
        self.origin.set("/sie", fields=[("Cache-Control", "max-age=1")])
        self.get("/sie")
        time.sleep(2.1)
        self.origin.set("/sie", status=503, fields=[], body=b"down")
        r = self.get("/sie")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"body /sie")
        self.assertIn("fwd=stale; fwd-status=503", r.header("cache-status"))

    def test_stale_while_revalidate_answers_at_once_and_refreshes_in_the_background(self):
        self.origin.set("/swr", fields=[("Cache-Control", "max-age=1, stale-while-revalidate=30"),
                                        ("ETag", '"s"')])
        self.get("/swr")
        time.sleep(2.1)
        self.origin.set("/swr", fields=[("Cache-Control", "max-age=60"), ("ETag", '"s"')],
                        delay=1.0)
        # Every client gets the stale response at once, the one that starts the refresh too
        # (each on its own connection: a connection's next request waits for its refresh).
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=5) as pool:
            stale = list(pool.map(lambda _: self.get("/swr"), range(5)))
        self.assertLess(time.monotonic() - started, 0.9)  # not behind the refresh's 1 s
        for r in stale:
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, b"body /swr")
            self.assertIn("fwd=stale", r.header("cache-status"))
        # One refresh reached the origin, with the stored validator; its 304 refreshed the entry.
        self.assertTrue(wait_until(lambda: self.origin.count("/swr") == 2, 5))
        self.assertEqual(self.origin.headers("/swr", 1).get("If-None-Match"), '"s"')
        self.assertTrue(wait_until(
            lambda: "hit; ttl=" in (self.get("/swr").header("cache-status") or ""), 5))
        self.assertEqual(self.origin.count("/swr"), 2)

    def test_concurrent_misses_reach_the_origin_once(self):
        self.origin.set("/cold", fields=[("Cache-Control", "max-age=60")], delay=0.5)

        def one(_):
            return self.get("/cold")
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one, range(200)))
        self.assertTrue(all(r.status == 200 and r.body == b"body /cold" for r in results))
        self.assertEqual(self.origin.count("/cold"), 1)
        self.assertTrue(any("collapsed" in (r.header("cache-status") or "") for r in results))

    def test_uncacheable_fill_releases_the_waiters_at_once(self):
        self.origin.set("/cold-private", fields=[("Cache-Control", "private")], delay=0.3)
        with ThreadPoolExecutor(max_workers=10) as pool:
            results = list(pool.map(lambda _: self.get("/cold-private"), range(10)))
        self.assertTrue(all(r.status == 200 for r in results), results)
        self.assertEqual(self.origin.count("/cold-private"), 10)

    def test_metrics_and_a_reload_that_keeps_the_cache(self):
        self.origin.set("/keep", fields=[("Cache-Control", "max-age=60")])
        self.get("/keep")
        self.ficus.reload(self.config)
        time.sleep(0.3)
        r = self.get("/keep")
        self.assertIn("hit", r.header("cache-status"))
        self.assertEqual(self.origin.count("/keep"), 1)
        m = self.ficus.metrics()
        self.assertGreater(m.get("ficus_cache_hits_total", route="cached"), 0)
        self.assertGreater(m.get("ficus_cache_objects", route="cached"), 0)

    def test_admin_purge_needs_the_token_and_removes_by_prefix_tag_and_key(self):
        self.origin.set("/p/1", fields=[("Cache-Control", "max-age=60"),
                                        ("Surrogate-Key", "grp other")])
        self.origin.set("/p/2", fields=[("Cache-Control", "max-age=60")])
        self.origin.set("/p2", fields=[("Cache-Control", "max-age=60")])
        for p in ("/p/1", "/p/2", "/p2"):
            self.get(p)
        admin = self.ficus.admin_port
        r = request(admin, "POST", "/cache/purge?all=1")
        self.assertEqual(r.status, 401)
        auth = {"Authorization": "Bearer " + self.TOKEN}
        r = request(admin, "POST", "/cache/purge?tag=grp", headers=auth)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["removed"], 1)
        r = request(admin, "POST", "/cache/purge?prefix=http://localhost/p/&route=cached",
                    headers=auth)
        self.assertEqual(r.json()["removed"], 1)
        r = request(admin, "POST", "/cache/purge?key=http://localhost/p2", headers=auth)
        self.assertEqual(r.json()["removed"], 1)
        r = request(admin, "POST", "/cache/purge?tag=", headers=auth)
        self.assertEqual(r.status, 400)
        for p in ("/p/1", "/p/2", "/p2"):
            self.get(p)
            self.assertEqual(self.origin.count(p), 2, p)

        def audited():
            audit = request(admin, "GET", "/audit", headers=auth).json()["audit"]
            return any(a.get("action") == "POST /cache/purge" for a in audit)
        self.assertTrue(wait_until(audited, 5))


class CacheReportTest(FicusTestCase):
    """The report's cache section: the cache's counters reach the telemetry store and `ficus
    report` shows each cached route's hit ratio and the origin load it saved, in every format."""

    def test_report_shows_hit_ratio_and_origin_load_saved(self):
        origin = Origin()
        self.addCleanup(origin.stop)
        cfg = make_config({"app": [endpoint(origin.port)]},
                          [{"name": "cached", "match": {"path_prefix": "/r/"}, "cluster": "app",
                            "cache": {}},
                           {"name": "plain", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          workers=2)
        cfg["data_dir"] = "data"
        f = self.start_ficus(cfg)
        origin.set("/r/a", fields=[("Cache-Control", "max-age=60")])
        origin.set("/r/p", fields=[("Cache-Control", "private")])
        origin.set("/r/slow", fields=[("Cache-Control", "max-age=60")], delay=0.5)
        for _ in range(5):
            self.assertEqual(request(f.port, "GET", "/r/a").status, 200)  # 1 miss, 4 hits
        for _ in range(2):
            request(f.port, "GET", "/r/p")  # 2 misses, not stored (bypassed)
        request(f.port, "POST", "/r/post", body=b"x")  # bypassed (method)
        request(f.port, "GET", "/plain")  # no cache: no row
        with ThreadPoolExecutor(max_workers=5) as pool:  # 1 fetch; coalesced or hits
            list(pool.map(lambda _: request(f.port, "GET", "/r/slow"), range(5)))
        self.assertEqual(origin.count("/r/slow"), 1)
        self.assertEqual(f.stop(), 0)  # the telemetry thread writes the last interval

        def report(fmt):
            out = os.path.join(f.workdir, "report." + fmt)
            r = subprocess.run([FICUS_BIN, "report", "-c", f.config_path, "--period", "10m",
                                "--format", fmt, "-o", out], capture_output=True, text=True,
                               cwd=f.workdir, timeout=60 * TIME_FACTOR)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(out) as fh:
                return fh.read()

        caches = json.loads(report("json"))["caches"]
        self.assertEqual([c["route"] for c in caches], ["cached"], caches)
        c = caches[0]
        # 12 GETs looked up; 8 answered without the origin (4 hits on /r/a, 4 on /r/slow as hits
        # or coalesced onto its one fetch); 4 fetches reached the origin (/r/a, /r/p twice,
        # /r/slow); 3 bypassed (the private answers and the POST).
        self.assertEqual(c["lookups"], 12)
        self.assertEqual(c["served"], 8)
        self.assertEqual(c["origin_fetches"], 4)
        self.assertEqual(c["bypassed"], 3)
        self.assertEqual(c["hits"] + c["coalesced"], 8)
        self.assertEqual(c["misses"] - c["coalesced"], 4)
        self.assertAlmostEqual(c["hit_ratio"], 8 / 12, places=3)
        self.assertAlmostEqual(c["saved_rps"], 8 / 600, places=3)
        self.assertEqual(c["route_requests"], 13)
        text = report("text")
        self.assertRegex(text, r"\n  cached +66\.7% +8 +4 ")
        self.assertIn("| cached | 66.7% | 8 | 4 |", report("markdown"))
        html = report("html")
        self.assertIn('<section id="cache">', html)
        self.assertIn("<td>cached</td><td>66.7%</td><td>8</td><td>4</td>", html)


if __name__ == "__main__":
    unittest.main()
