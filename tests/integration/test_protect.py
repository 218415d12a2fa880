"""Protecting a route through a real ficus: GCRA rate limits exact across worker threads
(counted at the upstream), 429 with Retry-After, the IETF RateLimit fields and a problem+json
body, shadow mode, the concurrency bulkhead (queue, timeout, 503 + Retry-After, slots given back
on every path), API keys (a key file reloaded on SIGHUP) and JWTs (HS256, JWKS file), 401/403,
and the /metrics families. Assertions are on counts and fields; the rate test's tolerance is the
issue's (+-1 %) plus the client's view of the window (a request or two)."""

import base64
import hashlib
import hmac
import json
import os
import signal
import tempfile
import threading
import time
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, make_config, request,
                     wait_until)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HS_SECRET = b"s" * 32


def hs256_token(claims, kid="hs"):
    signing = b64(json.dumps({"alg": "HS256", "kid": kid}).encode()) + "." + \
        b64(json.dumps(claims).encode())
    sig = hmac.new(HS_SECRET, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64(sig)


class ProtectTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("protect")
        cls.dir = tempfile.mkdtemp(prefix="ficus-protect-")
        cls.keys_path = os.path.join(cls.dir, "keys.txt")
        with open(cls.keys_path, "w") as f:
            f.write("carol carol-secret-0001\n")
        cls.jwks_path = os.path.join(cls.dir, "jwks.json")
        with open(cls.jwks_path, "w") as f:
            json.dump({"keys": [{"kty": "oct", "kid": "hs", "k": b64(HS_SECRET)}]}, f)
        routes = [
            {"name": "exact", "match": {"path_prefix": "/exact"}, "cluster": "app",
             "rate_limit": {"name": "per-key", "key": "header:X-Api-Key", "rate": "200/s",
                            "burst": 50}},
            {"name": "fields", "match": {"path_prefix": "/fields"}, "cluster": "app",
             "rate_limit": {"name": "slow", "key": "client_ip", "rate": "1/min", "burst": 2,
                            "headers": True}},
            {"name": "shadow", "match": {"path_prefix": "/shadow"}, "cluster": "app",
             "rate_limit": {"key": "route", "rate": "1/h", "burst": 1, "shadow": True}},
            {"name": "bulkhead", "match": {"path_prefix": "/delay"}, "cluster": "app",
             "concurrency": {"max": 2, "queue": 2, "queue_timeout": "150ms"}},
            {"name": "keys", "match": {"path_prefix": "/keys"}, "cluster": "app",
             "auth": {"api_keys": {"file": cls.keys_path, "query": "api_key",
                                   "keys": {"alice": "alice-secret-0001"}},
                      "consumers": ["alice", "carol", "dave"]},
             "rate_limit": {"key": "consumer", "rate": "1/h", "burst": 3}},
            {"name": "jwt", "match": {"path_prefix": "/jwt"}, "cluster": "app",
             "auth": {"jwt": {"jwks_file": cls.jwks_path, "issuer": "iss", "audience": "shop"},
                      "consumers": ["alice"]}},
            {"name": "adaptive", "match": {"path_prefix": "/adaptive"}, "cluster": "learned"},
            {"name": "open", "match": {"path_prefix": "/"}, "cluster": "app"},
        ]
        clusters = [
            {"name": "app", "endpoints": [endpoint(cls.up.port)], "connect_timeout": "1s"},
            {"name": "learned", "endpoints": [endpoint(cls.up.port)], "connect_timeout": "1s",
             "adaptive_concurrency": {"min_limit": 2, "max_limit": 2, "window": "50ms"}},
        ]
        cfg = make_config(clusters, routes, workers=4)
        cls.ficus = cls.start_ficus_for_class(cfg)
        cls.port = cls.ficus.port

    def upstream_count(self, prefix):
        return sum(1 for r in self.up.requests() if r["target"].startswith(prefix))

    def test_rate_limit_is_exact_across_workers(self):
        """16 connections (spread over 4 workers) hammer one key for ~2 s: the upstream gets
        burst + rate x time, +-1 %."""
        stop = threading.Event()
        statuses = []
        lock = threading.Lock()
        first_sent = []
        last_done = []

        def client():
            mine = {}
            with RawConn(self.port, timeout=5 * TIME_FACTOR) as c:
                while not stop.is_set():
                    t = time.monotonic()
                    with lock:
                        if not first_sent:
                            first_sent.append(t)
                    c.request("GET", "/exact", {"X-Api-Key": "k1"})
                    r = c.read_response()
                    mine[r.status] = mine.get(r.status, 0) + 1
            with lock:
                last_done.append(time.monotonic())
                statuses.append(mine)

        threads = [threading.Thread(target=client) for _ in range(16)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join(30)
        window = max(last_done) - first_sent[0]
        ok = sum(m.get(200, 0) for m in statuses)
        limited = sum(m.get(429, 0) for m in statuses)
        self.assertEqual(sum(sum(m.values()) for m in statuses), ok + limited)
        self.assertGreater(limited, ok, "the clients must out-run the limit")
        self.assertTrue(wait_until(lambda: self.upstream_count("/exact") == ok, 5))
        expected = 50 + 200 * window
        print("rate limit: %d through in %.3f s, expected %.1f (burst 50 + 200/s); %d limited"
              % (ok, window, expected, limited))
        # The client's window contains ficus's (first request to last answer): never above it,
        # and below it by at most the last in-flight round trips.
        self.assertLessEqual(ok, expected * 1.01 + 1)
        self.assertGreaterEqual(ok, expected * 0.99 - 2)

    def test_limited_answer_has_the_fields_and_a_problem_body(self):
        seen = []
        for _ in range(3):
            seen.append(request(self.port, "GET", "/fields"))
        self.assertEqual([r.status for r in seen], [200, 200, 429])
        self.assertEqual(seen[0].header("RateLimit-Policy"), '"slow";q=1;w=60')
        self.assertEqual(seen[0].header("RateLimit"), '"slow";r=1;t=60')
        limited = seen[2]
        self.assertEqual(limited.header("Content-Type"), "application/problem+json")
        problem = json.loads(limited.body)
        self.assertEqual(problem["status"], 429)
        self.assertEqual(problem["title"], "Too Many Requests")
        retry = int(limited.header("Retry-After"))
        self.assertTrue(1 <= retry <= 60, retry)
        self.assertEqual(limited.header("RateLimit-Policy"), '"slow";q=1;w=60')
        self.assertTrue(limited.header("RateLimit").startswith('"slow";r=0;t='))
        self.assertEqual(self.upstream_count("/fields"), 2)

    def test_shadow_mode_counts_and_limits_nothing(self):
        for _ in range(4):
            self.assertEqual(request(self.port, "GET", "/shadow").status, 200)
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_rate_limit_requests_total", route="shadow",
                               limit="default", result="shadow_limited"), 3)
        self.assertEqual(m.get("ficus_rate_limit_requests_total", route="shadow",
                               limit="default", result="allowed"), 1)
        self.assertIn("shadow", self.ficus.log_text())

    def test_bulkhead_queues_times_out_and_gives_slots_back(self):
        """max 2, queue 2, queue_timeout 150 ms, each request 600 ms upstream: of 6 at once,
        2 are served, 2 wait and time out, 2 find the queue full; all 4 get 503 + Retry-After."""
        results = []
        lock = threading.Lock()

        def one():
            r = request(self.port, "GET", "/delay?ms=600", timeout=10 * TIME_FACTOR)
            with lock:
                results.append(r)

        threads = []
        for _ in range(6):
            t = threading.Thread(target=one)
            t.start()
            threads.append(t)
            time.sleep(0.02)
        for t in threads:
            t.join(30)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [200, 200, 503, 503, 503, 503])
        for r in results:
            if r.status == 503:
                self.assertEqual(r.header("Retry-After"), "1")
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_concurrency_limit", route="bulkhead"), 2)
        self.assertTrue(wait_until(
            lambda: self.ficus.metrics().get("ficus_concurrency_in_flight", route="bulkhead") == 0,
            5))
        self.assertEqual(m.get("ficus_concurrency_requests_total", route="bulkhead",
                               **{"class": "default", "result": "timed_out"}), 2)
        self.assertEqual(m.get("ficus_concurrency_requests_total", route="bulkhead",
                               **{"class": "default", "result": "no_room"}), 2)
        # Freed: the next request is served at once.
        self.assertEqual(request(self.port, "GET", "/delay?ms=1").status, 200)

    def test_adaptive_limit_caps_the_cluster(self):
        """A cluster whose adaptive limit is pinned at 2: of 5 slow requests at once, 2 pass,
        3 get 503 at once; the slots come back and latency samples reach the limiter."""
        results = []
        lock = threading.Lock()

        def one():
            r = request(self.port, "GET", "/adaptive/delay?ms=400", timeout=10 * TIME_FACTOR)
            with lock:
                results.append(r.status)

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
            time.sleep(0.02)
        for t in threads:
            t.join(30)
        self.assertEqual(sorted(results), [200, 200, 503, 503, 503])
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_adaptive_concurrency_limit", cluster="learned"), 2)
        self.assertEqual(m.sum("ficus_adaptive_concurrency_rejected_total", cluster="learned"), 3)
        self.assertTrue(wait_until(lambda: self.ficus.metrics().get(
            "ficus_adaptive_concurrency_in_flight", cluster="learned") == 0, 5))
        self.assertTrue(wait_until(lambda: request(
            self.port, "GET", "/adaptive/x").status == 200 and self.ficus.metrics().get(
            "ficus_adaptive_concurrency_rtt_seconds", cluster="learned") > 0, 5))

    def test_api_keys_consumers_and_a_key_file_reload(self):
        self.assertEqual(request(self.port, "GET", "/keys").status, 401)
        r = request(self.port, "GET", "/keys", {"X-Api-Key": "nope-nope-nope"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'ApiKey realm="keys"')
        self.assertEqual(request(self.port, "GET", "/keys",
                                 {"X-Api-Key": "alice-secret-0001"}).status, 200)
        self.assertEqual(request(self.port, "GET", "/keys",
                                 {"X-Api-Key": "carol-secret-0001"}).status, 200)
        self.assertEqual(request(self.port, "GET", "/keys",
                                 {"X-Api-Key": "dave-secret-0001"}).status, 401)
        with open(self.keys_path, "a") as f:
            f.write("dave dave-secret-0001\n")
        self.ficus.signal(signal.SIGHUP)
        self.assertTrue(wait_until(lambda: request(
            self.port, "GET", "/keys", {"X-Api-Key": "dave-secret-0001"}).status == 200,
            5 * TIME_FACTOR))
        # The rate limit's key is the consumer: alice's budget is hers alone, and it survived
        # the reload (burst 3: one used above, two left).
        codes = [request(self.port, "GET", "/keys", {"X-Api-Key": "alice-secret-0001"}).status
                 for _ in range(3)]
        self.assertEqual(codes, [200, 200, 429])
        self.assertNotIn("alice-secret", self.ficus.log_text())
        self.assertNotIn("dave-secret", self.ficus.log_text())

    def test_error_samples_redact_api_keys_and_jwts(self):
        r = request(self.port, "GET", "/keys/status/503?api_key=carol-secret-0001&x=1",
                    {"X-Debug": "Bearer " + hs256_token({"sub": "z", "exp": 1})})
        self.assertEqual(r.status, 503)
        request(self.port, "GET", "/keys/status/500", {"X-Api-Key": "carol-secret-0001"})

        def samples():
            got = request(self.ficus.admin_port, "GET", "/error-samples?route=keys").json()
            return got["error_samples"] if len(got["error_samples"]) >= 2 else None

        found = wait_until(samples, 5 * TIME_FACTOR)
        self.assertTrue(found)
        heads = " ".join(s["request_head"] for s in found)
        self.assertIn("api_key=<redacted>&x=1", heads)
        self.assertIn("X-Api-Key: <redacted>", heads)
        self.assertIn("X-Debug: Bearer <redacted-jwt>", heads)
        self.assertNotIn("secret-0001", heads)

    def test_jwt(self):
        now = int(time.time())
        good = {"sub": "alice", "iss": "iss", "aud": "shop", "exp": now + 60}
        r = request(self.port, "GET", "/jwt", {"Authorization": "Bearer " + hs256_token(good)})
        self.assertEqual(r.status, 200)
        bob = dict(good, sub="bob")
        self.assertEqual(request(self.port, "GET", "/jwt",
                                 {"Authorization": "Bearer " + hs256_token(bob)}).status, 403)
        expired = dict(good, exp=now - 3600)
        r = request(self.port, "GET", "/jwt", {"Authorization": "Bearer " + hs256_token(expired)})
        self.assertEqual(r.status, 401)
        self.assertIn('error="invalid_token"', r.header("WWW-Authenticate"))
        none = b64(b'{"alg":"none"}') + "." + b64(json.dumps(good).encode()) + "."
        self.assertEqual(request(self.port, "GET", "/jwt",
                                 {"Authorization": "Bearer " + none}).status, 401)
        self.assertEqual(request(self.port, "GET", "/jwt",
                                 {"Authorization": "Bearer " + hs256_token(good, kid="x")}).status,
                         401)
        r = request(self.port, "GET", "/jwt")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.header("WWW-Authenticate"), 'Bearer realm="jwt"')
        two = [("Authorization", "Bearer " + hs256_token(good)), ("Authorization", "Bearer x")]
        self.assertEqual(request(self.port, "GET", "/jwt", two).status, 400)
        m = self.ficus.metrics()
        self.assertEqual(m.get("ficus_auth_requests_total", route="jwt", result="ok"), 1)
        self.assertEqual(m.get("ficus_auth_requests_total", route="jwt", result="forbidden"), 1)


if __name__ == "__main__":
    unittest.main()


class OverloadGuardTest(FicusTestCase):
    def test_sheds_over_a_set_point_and_recovers_after_a_reload(self):
        up = self.start_upstream_for_class("overload")
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}]
        # 16 descriptors: a ficus with two workers always has more open (listeners, epoll,
        # eventfds, the admin socket, the log).
        cfg = make_config({"app": [endpoint(up.port)]}, routes, workers=2,
                          overload={"max_open_files": 16})
        f = self.start_ficus_for_class(cfg)
        self.assertTrue(wait_until(lambda: request(f.port, "GET", "/x").status == 503, 5))
        r = request(f.port, "GET", "/x")
        self.assertEqual(r.header("Retry-After"), "1")
        m = f.metrics()
        self.assertEqual(m.get("ficus_overload_active"), 1)
        self.assertGreaterEqual(m.get("ficus_overload_shed_total"), 1)
        del cfg["overload"]
        f.reload(cfg)
        self.assertTrue(wait_until(lambda: request(f.port, "GET", "/x").status == 200,
                                   5 * TIME_FACTOR))


class AdminReadsTest(FicusTestCase):
    def test_reads_need_the_token_off_loopback(self):
        up = self.start_upstream_for_class("admin-reads")
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}]
        token = "t" * 32
        cfg = make_config({"app": [endpoint(up.port)]}, routes)
        port = cfg["admin"]["listen"].rsplit(":", 1)[1]
        # All addresses, so not loopback; /ready stays open for the harness (and probes).
        cfg["admin"] = {"listen": "0.0.0.0:" + port, "token": token, "public_paths": ["/ready"]}
        f = self.start_ficus_for_class(cfg)
        bearer = {"Authorization": "Bearer " + token}
        for path in ("/metrics", "/config", "/error-samples", "/events", "/live"):
            self.assertEqual(request(f.admin_port, "GET", path).status, 401, path)
            self.assertEqual(request(f.admin_port, "GET", path,
                                     {"Authorization": "Bearer wrong"}).status, 401, path)
            self.assertEqual(request(f.admin_port, "GET", path, bearer).status, 200, path)
        self.assertEqual(request(f.admin_port, "GET", "/ready").status, 200)
