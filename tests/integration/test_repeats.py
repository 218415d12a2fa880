"""The live cacheability feed: ficus samples GET/HEAD 200 responses (1 in
telemetry.repeat_sample routed requests per worker), hashes each body as it streams to the
client and counts, per route, the responses whose body repeats the previous one for the same
request key (method, host, path, query) and those whose body changed. The telemetry thread
writes the counts to the store's `repeats` table, which `ficus report` turns into cache
findings. Here: a static route is reported repeating (Content-Length, chunked and HEAD
responses), a route whose body changes on every request (the upstream echoes the request,
whose X-Request-Id ficus makes fresh) is reported changing, and non-GET requests are never
sampled."""

import os
import sqlite3
import unittest

from harness import FicusTestCase, endpoint, make_config, request


def repeats(f):
    """{route: (sampled, repeated, changed)} from the store of a stopped ficus."""
    db = sqlite3.connect(os.path.join(f.workdir, "data", "ficus.db"))
    try:
        rows = db.execute("SELECT route, SUM(sampled), SUM(repeated), SUM(changed) FROM repeats "
                          "GROUP BY route").fetchall()
    finally:
        db.close()
    return {r[0]: tuple(r[1:]) for r in rows}


class RepeatFeedTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("repeats")

    def config(self, sample, workers):
        routes = [{"name": "static", "match": {"path_prefix": "/bytes"}, "cluster": "app"},
                  {"name": "changing", "match": {"path_prefix": "/echo"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(self.up.port)]}, routes, workers=workers,
                          telemetry={"repeat_sample": sample})
        cfg["data_dir"] = "data"
        return cfg

    def test_static_route_repeats_and_changing_route_changes(self):
        f = self.start_ficus(self.config(sample=1, workers=2))
        for _ in range(25):
            r = request(f.port, "GET", "/bytes?n=2000")
            self.assertEqual(r.status, 200)
        for _ in range(10):  # chunked and past the 64 KiB hashing cap
            r = request(f.port, "GET", "/bytes?n=70000&chunked=1")
            self.assertEqual((r.status, len(r.body)), (200, 70000))
        for _ in range(5):
            self.assertEqual(request(f.port, "HEAD", "/bytes?n=2000").status, 200)
        for _ in range(25):
            self.assertEqual(request(f.port, "GET", "/echo/item").status, 200)
        for _ in range(5):  # never sampled
            self.assertEqual(request(f.port, "POST", "/echo/item", body="x").status, 200)
        self.assertEqual(request(f.port, "GET", "/nowhere").status, 404)
        self.assertEqual(f.stop(), 0)
        got = repeats(f)
        self.assertEqual(set(got), {"static", "changing"}, got)
        sampled, repeated, changed = got["static"]
        self.assertEqual(sampled, 40, got)
        self.assertEqual(changed, 0, got)
        # Each of the 3 request keys is new once per worker, every later response repeats.
        self.assertGreaterEqual(repeated, 40 - 3 * 2, got)
        sampled, repeated, changed = got["changing"]
        self.assertEqual(sampled, 25, got)  # the POSTs are not sampled
        self.assertEqual(repeated, 0, got)
        self.assertGreaterEqual(changed, 25 - 2, got)

    def test_responses_the_upstream_forbids_caching_are_no_evidence(self):
        # no-store, private and no-cache bodies repeat as well, but a shared cache may not reuse
        # them: they are not sampled, so the report makes no cache finding of them.
        f = self.start_ficus(self.config(sample=1, workers=1))
        for cc in ("no-store", "private", "no-cache"):
            for _ in range(10):
                r = request(f.port, "GET", "/bytes?n=2000&hdr=Cache-Control:" + cc)
                self.assertEqual((r.status, r.header("Cache-Control")), (200, cc))
        for _ in range(10):
            r = request(f.port, "GET", "/bytes?n=2000&hdr=Set-Cookie:s=1")
            self.assertEqual(r.status, 200)
        for _ in range(10):
            r = request(f.port, "GET", "/bytes?n=2000&hdr=Cache-Control:public")
            self.assertEqual(r.status, 200)
        self.assertEqual(f.stop(), 0)
        got = repeats(f)
        self.assertEqual(got["static"][0], 10, got)  # only the public ones

    def test_one_in_n_routed_requests_is_sampled(self):
        f = self.start_ficus(self.config(sample=5, workers=1))
        for _ in range(50):
            self.assertEqual(request(f.port, "GET", "/bytes?n=100").status, 200)
        self.assertEqual(f.stop(), 0)
        sampled, repeated, changed = repeats(f)["static"]
        self.assertEqual((sampled, repeated, changed), (10, 9, 0))

    def test_repeat_sample_zero_turns_it_off(self):
        f = self.start_ficus(self.config(sample=0, workers=1))
        for _ in range(20):
            self.assertEqual(request(f.port, "GET", "/bytes?n=100").status, 200)
        self.assertEqual(f.stop(), 0)
        self.assertEqual(repeats(f), {})


if __name__ == "__main__":
    unittest.main()
