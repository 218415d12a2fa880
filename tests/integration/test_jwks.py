"""JWTs verified against a key set fetched from a URL (`auth.jwt.jwks_url`), through a real ficus
and a real JWKS server on loopback, with tokens really signed (RS256 and ES256, by
python3-cryptography): the first fetch, a refresh on an unknown kid (rate-limited: made-up kids
cannot flood the identity provider), the last good set kept while the URL fails, a rotated-out
key refused (cached verdicts included), a set that arrives after startup, and the verified-token
cache (a repeated token is not verified again; a cached token still expires)."""

import time
import unittest

from harness import TIME_FACTOR, FicusTestCase, endpoint, free_port, make_config, request, wait_until
from jwks_server import JwksServer, Key, claims


def bearer(token):
    return {"Authorization": "Bearer " + token}


class JwksUrlTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.rsa = Key("RS256", "r1")
        cls.ec = Key("ES256", "e1")
        cls.jwks = JwksServer([cls.rsa, cls.ec])
        cls.addClassCleanup(cls.jwks.stop)
        cls.late_port = free_port()  # a JWKS server that starts after ficus
        cls.up = cls.start_upstream_for_class("jwks")
        jwt = {"issuer": "https://idp.test", "audience": "shop", "leeway": "0s",
               "jwks_refresh": "1s", "jwks_min_refresh": "1s", "jwks_timeout": "500ms"}
        routes = [
            {"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app",
             "auth": {"jwt": dict(jwt, jwks_url=cls.jwks.url())}},
            {"name": "late", "match": {"path_prefix": "/late"}, "cluster": "app",
             "auth": {"jwt": dict(jwt, jwks_url="http://127.0.0.1:%d/jwks" % cls.late_port,
                                  jwks_min_refresh="200ms")}},
            {"name": "nocache", "match": {"path_prefix": "/nocache"}, "cluster": "app",
             "auth": {"jwt": dict(jwt, jwks_url=cls.jwks.url(), token_cache=0)}},
        ]
        clusters = [{"name": "app", "endpoints": [endpoint(cls.up.port)],
                     "connect_timeout": "1s"}]
        cls.ficus = cls.start_ficus_for_class(make_config(clusters, routes, workers=4))
        cls.port = cls.ficus.port

    def get(self, path, token):
        return request(self.port, "GET", path, bearer(token)).status

    def test_rs256_and_es256_tokens_from_the_fetched_set(self):
        self.assertEqual(self.get("/api/a", self.rsa.sign(claims("alice", jti="rs"))), 200)
        self.assertEqual(self.get("/api/a", self.ec.sign(claims("bob", jti="es"))), 200)
        # A token signed by a key the set does not have, under a kid it has: bad signature.
        other = Key("RS256", "r1")
        self.assertEqual(self.get("/api/a", other.sign(claims(jti="forged"))), 401)
        m = self.ficus.metrics()
        self.assertGreaterEqual(m.get("ficus_jwks_fetches_total", url=self.jwks.url(),
                                      result="ok"), 1)
        self.assertEqual(m.get("ficus_jwks_keys", url=self.jwks.url()), 2)
        self.assertGreater(m.get("ficus_jwks_last_success_timestamp_seconds",
                                 url=self.jwks.url()), time.time() - 3600)

    def test_a_repeated_token_is_verified_once_per_worker(self):
        token = self.rsa.sign(claims("carol", jti="repeat"))
        before = self.ficus.metrics().get("ficus_auth_token_cache_hits_total", route="api")
        for _ in range(40):  # new connections: spread over the 4 workers
            self.assertEqual(self.get("/api/r", token), 200)
        hits = self.ficus.metrics().get("ficus_auth_token_cache_hits_total", route="api") - before
        self.assertGreaterEqual(hits, 40 - 4)  # at most one verification per worker
        # With the cache off every request verifies.
        for _ in range(5):
            self.assertEqual(self.get("/nocache/r", token), 200)
        self.assertEqual(self.ficus.metrics().get("ficus_auth_token_cache_hits_total",
                                                  route="nocache"), 0)

    def test_a_cached_token_still_expires(self):
        token = self.ec.sign(claims("dave", ttl=2, jti="short"))
        for _ in range(8):
            self.assertEqual(self.get("/api/e", token), 200)
        time.sleep(3.2)  # exp passed (leeway 0s); the verdict in the cache must not outlive it
        for _ in range(8):
            self.assertEqual(self.get("/api/e", token), 401)

    def test_unknown_kid_refreshes_early_and_rotation(self):
        new = Key("RS256", "r2")
        self.jwks.set(keys=[self.rsa, self.ec, new])
        token = new.sign(claims("erin", jti="rotated"))
        # The first sight of kid r2 asks for an early fetch (the answer may race it).
        self.assertTrue(wait_until(lambda: self.get("/api/k", token) == 200, 3 * TIME_FACTOR))
        self.assertGreaterEqual(self.ficus.metrics().get("ficus_jwks_kid_refreshes_total",
                                                         url=self.jwks.url()), 1)
        # A flood of made-up kids: early fetches are at most one per jwks_min_refresh (1s).
        time.sleep(1.1)
        fetches = self.jwks.count()
        start = time.monotonic()
        for i in range(60):
            self.assertEqual(self.get("/api/k", new.sign(claims(jti=str(i)), kid="x%d" % i)), 401)
        elapsed = time.monotonic() - start
        # At most one early fetch and one interval refresh per second of flood, per source
        # (the nocache route shares this URL's source, so it adds none).
        self.assertLessEqual(self.jwks.count() - fetches, min(2 * int(elapsed) + 3, 12))
        # Rotation: r1 leaves the set; its tokens stop passing, cached ones included.
        cached = self.rsa.sign(claims("frank", jti="cached"))
        self.assertEqual(self.get("/api/k", cached), 200)
        self.jwks.set(keys=[self.ec, new])
        self.assertTrue(wait_until(lambda: self.get("/api/k", cached) == 401, 4 * TIME_FACTOR))
        self.assertEqual(self.get("/api/k", token), 200)
        self.jwks.set(keys=[self.rsa, self.ec, new])
        self.assertTrue(wait_until(lambda: self.get("/api/k", cached) == 200, 4 * TIME_FACTOR))

    def test_a_failing_url_keeps_the_last_good_set(self):
        m0 = self.ficus.metrics()
        failed0 = m0.get("ficus_jwks_fetches_total", url=self.jwks.url(), result="failed")
        self.jwks.set(fail_with=503)
        try:
            self.assertTrue(wait_until(
                lambda: self.ficus.metrics().get("ficus_jwks_fetches_total", url=self.jwks.url(),
                                                 result="failed") >= failed0 + 2,
                6 * TIME_FACTOR, interval=0.2))
            # Fresh tokens (not in any cache) still verify against the kept set.
            for i in range(8):
                self.assertEqual(self.get("/api/f", self.rsa.sign(claims(jti="f%d" % i))), 200)
            self.assertEqual(self.ficus.metrics().get("ficus_jwks_keys", url=self.jwks.url()),
                             len(self.jwks.keys))
        finally:
            self.jwks.set(fail_with=None)
        self.assertIn("keeping the last good key set", self.ficus.log_text())

    def test_a_set_that_arrives_after_startup(self):
        token = self.rsa.sign(claims("gina", jti="late"))
        # No server yet: refused (401, never a 500), and the fetches are counted as failed.
        self.assertEqual(self.get("/late/x", token), 401)
        self.assertIn("no key set yet", self.ficus.log_text())
        late = JwksServer([self.rsa], port=self.late_port)
        self.addCleanup(late.stop)
        self.assertTrue(wait_until(lambda: self.get("/late/x", token) == 200, 5 * TIME_FACTOR,
                                   interval=0.1))


if __name__ == "__main__":
    unittest.main()
