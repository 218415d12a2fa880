"""Admin API wiring through a real ficus: POST /config is token-checked and audited like every
state change; stats per endpoint ("cluster/address"); health-check, ejection and breaker events
in the timeline and endpoint state in /health; the route recorders' counters in /metrics
(promtool-clean); a reload whose new listener cannot bind is refused (POST /config answers the
error, SIGHUP logs it) and a removed listener's keep-alive connections get Connection: close."""

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import unittest

from harness import (TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port, make_config,
                     request, to_yaml, wait_until)

TOKEN = "wiring-admin-token-0123456789"
PROMTOOL = shutil.which("promtool")


def post_config(f, cfg, token=TOKEN):
    headers = {"Content-Type": "application/yaml"}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    text = cfg if isinstance(cfg, str) else to_yaml(cfg)
    return request(f.admin_port, "POST", "/config", headers=headers, body=text.encode())


def admin_json(f, path):
    r = request(f.admin_port, "GET", path)
    assert r.status == 200, r
    return r.json()


def events(f, kind):
    return admin_json(f, "/events?kind=" + kind)["events"]


class ConfigAuditTest(FicusTestCase):
    def test_post_config_needs_the_token_and_every_attempt_is_audited(self):
        up = self.start_upstream("a")
        cfg = make_config({"app": [endpoint(up.port)]}, [{"name": "all", "cluster": "app"}],
                          admin={"token": TOKEN})
        f = self.start_ficus(cfg)
        self.assertEqual(post_config(f, cfg, token=None).status, 401)
        self.assertEqual(post_config(f, cfg, token="wrong-token-00000000000000").status, 401)
        bad = post_config(f, "workers: 1\nclusters: 3\n")
        self.assertEqual(bad.status, 400, bad)
        cfg["routes"].insert(0, {"name": "new", "match": {"path": "/new"}, "cluster": "app"})
        ok = post_config(f, cfg)
        self.assertEqual(ok.status, 200, ok)
        audit = [a for a in admin_json(f, "/audit")["audit"] if a["action"] == "POST /config"]
        self.assertEqual([(a["who"], a["outcome"]) for a in audit],
                         [("token", "ok"), ("token", "rejected"), ("anonymous", "unauthorized"),
                          ("anonymous", "unauthorized")])
        self.assertEqual(json.loads(audit[0]["detail"])["routes"]["added"], ["new"])
        self.assertTrue(json.loads(audit[1]["detail"])["errors"])
        self.assertEqual(audit[0]["peer"], "127.0.0.1")
        # GET /config is not a state change: not audited.
        self.assertEqual(request(f.admin_port, "GET", "/config").status, 200)
        self.assertEqual(len([a for a in admin_json(f, "/audit")["audit"]]), 4)


class EndpointStatsTest(FicusTestCase):
    def test_stats_per_endpoint_and_cluster_latency(self):
        a = self.start_upstream("a")
        b = self.start_upstream("b")
        f = self.start_ficus(make_config(
            [{"name": "app", "endpoints": [endpoint(a.port), endpoint(b.port)],
              "load_balancer": "round_robin"}],
            [{"name": "all", "cluster": "app"}]))
        for _ in range(10):
            self.assertEqual(request(f.port, "GET", "/status/200").status, 200)
        for _ in range(4):
            self.assertEqual(request(f.port, "GET", "/status/503").status, 503)
        f.settled_metrics()  # the last 503 is recorded
        eps = {e["name"]: e["windows"]["1m"] for e in admin_json(f, "/stats/endpoints")["endpoints"]}
        self.assertEqual(set(eps), {"app/127.0.0.1:%d" % a.port, "app/127.0.0.1:%d" % b.port})
        self.assertEqual([e["requests"] for e in eps.values()], [7, 7])
        self.assertEqual(sum(e["errors"] for e in eps.values()), 4)
        for e in eps.values():
            self.assertIsNotNone(e["p99_ms"])
        clusters = {c["name"]: c["windows"]["1m"] for c in admin_json(f, "/stats/clusters")["clusters"]}
        self.assertEqual(clusters["app"]["requests"], 14)
        self.assertIsNotNone(clusters["app"]["p50_ms"])  # the cluster's own histogram


class UpstreamEventsTest(FicusTestCase):
    def test_health_ejection_and_breaker_events(self):
        up = self.start_upstream("live")
        dead = free_port()
        f = self.start_ficus(make_config(
            [{"name": "checked", "endpoints": [endpoint(up.port), endpoint(dead)],
              "connect_timeout": "200ms",
              "health_check": {"path": "/status/200", "interval": "100ms", "timeout": "200ms",
                               "unhealthy_threshold": 1}},
             {"name": "ejecting", "endpoints": [endpoint(up.port), endpoint(dead)],
              "connect_timeout": "200ms",
              "outlier_detection": {"consecutive_gateway_failures": 1,
                                    "max_ejection_percent": 50}},
             {"name": "narrow", "endpoints": [endpoint(up.port)],
              "circuit_breakers": {"max_requests": 1}}],
            [{"name": "e", "match": {"path_prefix": "/e/"}, "cluster": "ejecting"},
             {"name": "n", "match": {"path_prefix": "/n/"}, "cluster": "narrow"},
             {"name": "all", "cluster": "checked"}]))
        dead_addr = "127.0.0.1:%d" % dead
        # Health: the dead endpoint fails its first check (its refused connect also marks it
        # down for picks at once: a "down (connect failed)" event of its own).
        health = wait_until(lambda: [e for e in events(f, "health")
                                     if dead_addr + " unhealthy" in e["note"]], 5 * TIME_FACTOR)
        self.assertTrue(health, f.log_tail())
        self.assertEqual(health[0]["service"], "checked")
        h = admin_json(f, "/health")
        checked = [c for c in h["clusters"] if c["name"] == "checked"][0]
        self.assertEqual([(e["address"], e["healthy"]) for e in checked["endpoints"]],
                         [("127.0.0.1:%d" % up.port, True), (dead_addr, False)])
        self.assertEqual(checked["available"], 1)
        # Ejection: traffic reaches the dead endpoint once and ejects it.
        for _ in range(4):
            request(f.port, "GET", "/e/echo")
        ejections = wait_until(lambda: events(f, "ejection"), 5 * TIME_FACTOR)
        self.assertTrue(ejections, f.log_tail())
        self.assertEqual(ejections[0]["service"], "ejecting")
        self.assertIn(dead_addr + " ejected", ejections[0]["note"])
        ejecting = [c for c in admin_json(f, "/health")["clusters"] if c["name"] == "ejecting"][0]
        self.assertTrue(ejecting["endpoints"][1]["ejected"])
        # Breaker: two rounds of concurrent requests over max_requests 1: one event (rate limit).
        for _ in range(2):
            threads = [threading.Thread(target=request, args=(f.port, "GET", "/n/delay?ms=300"))
                       for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        trips = wait_until(lambda: events(f, "breaker"), 5 * TIME_FACTOR)
        self.assertTrue(trips, f.log_tail())
        self.assertEqual(len(trips), 1, trips)  # the second round is within 10 s of the first
        self.assertEqual(trips[0]["service"], "narrow")
        self.assertIn("max_requests rejected", trips[0]["note"])


class RecorderMetricsTest(FicusTestCase):
    def test_recorder_counters_in_metrics(self):
        up = self.start_upstream("a")
        cfg = make_config({"app": [endpoint(up.port)]}, [{"name": "all", "cluster": "app"}])
        capture = os.path.join(self._tmpdir(), "capture.jsonl")
        cfg["routes"][0]["record"] = {"path": capture}
        f = self.start_ficus(cfg)
        for _ in range(5):
            self.assertEqual(request(f.port, "GET", "/echo").status, 200)
        self.assertTrue(wait_until(
            lambda: f.metrics().get("ficus_record_requests_total", file=capture) == 5,
            5 * TIME_FACTOR), f.log_tail())
        m = f.metrics()
        self.assertEqual(m.get("ficus_record_dropped_total", file=capture, default=-1), 0)
        if PROMTOOL:
            text = request(f.admin_port, "GET", "/metrics").body
            p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                               timeout=30)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def _tmpdir(self):
        import tempfile
        d = tempfile.mkdtemp(prefix="ficus-rec-")
        self.addCleanup(shutil.rmtree, d, True)
        return d


class ListenerReloadTest(FicusTestCase):
    def test_a_listener_that_cannot_bind_refuses_the_reload(self):
        up = self.start_upstream("a")
        cfg = make_config({"app": [endpoint(up.port)]}, [{"name": "all", "cluster": "app"}],
                          admin={"token": TOKEN})
        f = self.start_ficus(cfg)
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_port = busy.getsockname()[1]
        nxt = json.loads(json.dumps(cfg))
        nxt["listeners"].append({"name": "taken", "listen": "127.0.0.1:%d" % busy_port})
        nxt["routes"].insert(0, {"name": "new", "match": {"path": "/new"}, "cluster": "app"})
        r = post_config(f, nxt)
        self.assertEqual(r.status, 400, r)
        body = r.json()
        self.assertFalse(body["applied"])
        self.assertIn("cannot listen", json.dumps(body))
        self.assertIn("127.0.0.1:%d" % busy_port, json.dumps(body))
        self.assertIn("Address already in use", json.dumps(body))
        # Nothing changed: the new route is not there.
        self.assertNotIn("name: new", request(f.admin_port, "GET", "/config").body.decode())
        # SIGHUP says so in the log, and the event timeline has the rejection.
        f.reload(nxt)
        self.assertTrue(wait_until(lambda: "reload rejected: cannot listen" in f.log_text(),
                                   5 * TIME_FACTOR), f.log_tail())
        rejected = lambda: [e for e in events(f, "config_reload") if "cannot listen" in e["note"]]
        self.assertTrue(wait_until(lambda: len(rejected()) == 2, 5 * TIME_FACTOR), rejected())
        self.assertEqual(request(f.port, "GET", "/echo").status, 200)

    def test_removed_listener_keep_alive_connections_get_connection_close(self):
        up = self.start_upstream("a")
        second = free_port()
        cfg = make_config({"app": [endpoint(up.port)]}, [{"name": "all", "cluster": "app"}],
                          admin={"token": TOKEN})
        cfg["listeners"].append({"name": "second", "listen": "127.0.0.1:%d" % second})
        f = self.start_ficus(cfg)
        with RawConn(f.port) as c:
            c.request("GET", "/echo")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.header("connection") or "").lower(), "close")
            nxt = json.loads(json.dumps(cfg))
            del nxt["listeners"][0]
            self.assertEqual(post_config(f, nxt).status, 200)
            self.assertTrue(wait_until(lambda: "listener 127.0.0.1:%d removed" % f.port
                                       in f.log_text(), 3 * TIME_FACTOR))
            c.request("GET", "/echo")
            r = c.read_response()
            self.assertEqual(r.status, 200)
            self.assertEqual((r.header("connection") or "").lower(), "close")
            self.assertTrue(c.is_closed())
        self.assertEqual(request(second, "GET", "/echo").status, 200)


if __name__ == "__main__":
    unittest.main()
