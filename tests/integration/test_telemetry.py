"""The telemetry store and the admin JSON API through a real ficus and upstream: deploy
markers (token, audit), reload events, 5xx error samples with credentials redacted, stats per
route and cluster, rollups in the SQLite file, and `ficus backup` / `ficus restore` while
ficus runs."""

import json
import os
import signal
import sqlite3
import subprocess
import tempfile
import shutil
import time
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, free_port, make_config,
                     request, wait_until)

TOKEN = "telemetry-admin-token-0123456789"


def admin(f, method, path, body=None, token=None):
    headers = [("Content-Type", "application/json")] if body is not None else []
    if token is not None:
        headers.append(("Authorization", "Bearer " + token))
    data = json.dumps(body) if isinstance(body, dict) else body
    return request(f.admin_port, method, path, headers=headers, body=data)


def post_event(f, service, version, note="", token=TOKEN):
    return admin(f, "POST", "/events", {"service": service, "version": version, "note": note},
                 token)


def events(f, query=""):
    r = admin(f, "GET", "/events" + query)
    assert r.status == 200, r
    return r.json()["events"]


def ficus_cli(*args):
    return subprocess.run([FICUS_BIN] + list(args), capture_output=True, text=True,
                          timeout=60 * TIME_FACTOR)


class TelemetryApiTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("telemetry")
        clusters = [{"name": "app", "endpoints": [endpoint(cls.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app"},
                  {"name": "broken", "match": {"path_prefix": "/broken"}, "cluster": "dead"},
                  {"name": "quiet", "match": {"path_prefix": "/quiet"}, "cluster": "app"},
                  {"name": "who", "match": {"path_prefix": "/who"}, "cluster": "app"}]
        cls.ficus = cls.start_ficus_for_class(make_config(
            clusters, routes, admin={"token": TOKEN}, workers=2,
            telemetry={"error_samples_per_route": 5}))

    def test_deploy_marker_needs_the_token_and_every_attempt_is_audited(self):
        f = self.ficus
        r = post_event(f, "shop", "v1.2.3", token=None)
        self.assertEqual(r.status, 401, r)
        r = post_event(f, "shop", "v1.2.3", token="wrong-token-0123456789abcd")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(admin(f, "POST", "/events", "not json", TOKEN).status, 400)
        self.assertEqual(admin(f, "POST", "/events", {"service": "shop"}, TOKEN).status, 400)
        self.assertEqual(admin(f, "POST", "/events", {"service": "shop", "version": "1",
                                                      "extra": 1}, TOKEN).status, 400)
        r = post_event(f, "shop", "v1.2.3", "canary 5 %")
        self.assertEqual(r.status, 201, r)
        created = r.json()
        self.assertEqual(created["kind"], "deploy")
        self.assertGreater(created["id"], 0)
        deploys = events(f, "?kind=deploy")
        self.assertIn(("shop", "v1.2.3", "canary 5 %"),
                      [(e["service"], e["version"], e["note"]) for e in deploys])
        # Nothing the 401s and 400s carried became an event.
        self.assertEqual(sum(1 for e in deploys if e["version"] == "v1.2.3"), 1)
        # The audit trail: newest first, who, peer, what, outcome.
        audit = admin(f, "GET", "/audit?limit=6").json()["audit"]
        outcomes = [(a["who"], a["outcome"]) for a in audit]
        self.assertEqual(outcomes[0], ("token", "ok"))
        self.assertEqual(outcomes[1:4], [("token", "bad_request")] * 3)
        self.assertEqual(outcomes[4:6], [("anonymous", "unauthorized")] * 2)
        for a in audit:
            self.assertEqual(a["peer"], "127.0.0.1")
            self.assertEqual(a["action"], "POST /events")
            self.assertNotIn(TOKEN, json.dumps(a))
        self.assertIn("v1.2.3", audit[0]["detail"])
        # Other methods: 405 with Allow.
        r = admin(f, "DELETE", "/events", token=TOKEN)
        self.assertEqual(r.status, 405)
        self.assertEqual(r.header("allow"), "GET, HEAD, POST")

    def test_events_query(self):
        f = self.ficus
        self.assertEqual(post_event(f, "search", "a").status, 201)
        self.assertEqual(post_event(f, "search", "b").status, 201)
        evs = events(f, "?kind=deploy&limit=2")
        self.assertEqual(len(evs), 2)
        self.assertGreaterEqual(evs[0]["ts_ms"], evs[1]["ts_ms"])
        self.assertTrue(any(e["kind"] == "startup" for e in events(f, "?limit=1000")))
        future = int(time.time() * 1000) + 3_600_000
        self.assertEqual(events(f, "?since=%d" % future), [])
        self.assertEqual(admin(f, "GET", "/events?limit=0").status, 400)
        self.assertEqual(admin(f, "GET", "/events?since=yesterday").status, 400)

    def test_error_samples_keep_heads_with_credentials_redacted(self):
        f = self.ficus
        r = request(f.port, "GET", "/api/status/503?hdr=Set-Cookie:sid%3Dupstream-secret",
                    headers=[("Authorization", "Bearer user-secret-1"),
                             ("Cookie", "session=cookie-secret-2"),
                             ("X-Trace-Me", "visible")])
        self.assertEqual(r.status, 503, r)
        request_id = r.header("x-request-id")
        r = request(f.port, "POST", "/broken/x", headers=[("Cookie", "c=cookie-secret-3")],
                    body="payload")
        self.assertEqual(r.status, 502, r)

        def samples(route):
            resp = admin(f, "GET", "/error-samples?route=" + route)
            self.assertEqual(resp.status, 200, resp)
            return resp.json()["error_samples"]

        api = wait_until(lambda: samples("api"), 5 * TIME_FACTOR)
        self.assertTrue(api)
        s = api[0]
        self.assertEqual(s["status"], 503)
        self.assertEqual(s["request_id"], request_id)
        self.assertIn("GET /api/status/503", s["request_head"])
        self.assertIn("Authorization: <redacted>", s["request_head"])
        self.assertIn("Cookie: <redacted>", s["request_head"])
        self.assertIn("X-Trace-Me: visible", s["request_head"])
        self.assertIn("HTTP/1.1 503", s["response_head"])
        self.assertIn("Set-Cookie: <redacted>", s["response_head"])
        broken = wait_until(lambda: samples("broken"), 5 * TIME_FACTOR)
        self.assertEqual(broken[0]["status"], 502)
        self.assertIn("POST /broken/x", broken[0]["request_head"])
        self.assertIn("HTTP/1.1 502", broken[0]["response_head"])
        everything = admin(f, "GET", "/error-samples?limit=1000").body.decode()
        for secret in ("user-secret-1", "cookie-secret-2", "cookie-secret-3"):
            self.assertNotIn(secret, everything)
        # (The upstream's cookie value is in our request's query, so look at its header only.)
        self.assertNotIn("sid=upstream-secret", s["response_head"])
        # Only the newest N (error_samples_per_route: 5) per route are kept.
        for _ in range(8):
            self.assertEqual(request(f.port, "GET", "/api/status/500").status, 500)
        wait_until(lambda: samples("api")[0]["status"] == 500, 5 * TIME_FACTOR)
        time.sleep(0.3)
        self.assertEqual(len(samples("api")), 5)
        # Successful responses are never sampled.
        self.assertEqual(request(f.port, "GET", "/quiet/echo").status, 200)
        self.assertEqual(samples("quiet"), [])

    def test_stats_per_route_and_cluster(self):
        f = self.ficus
        for i in range(20):
            r = request(f.port, "GET", "/api/delay?ms=5" if i < 10 else "/api/echo")
            self.assertEqual(r.status, 200)
        r = admin(f, "GET", "/stats/routes")
        self.assertEqual(r.status, 200, r)
        routes = {x["name"]: x["windows"] for x in r.json()["routes"]}
        for window in ("1m", "5m", "15m"):
            w = routes["api"][window]
            self.assertGreaterEqual(w["requests"], 20)
            self.assertGreater(w["rate_rps"], 0)
            self.assertGreaterEqual(w["p90_ms"], w["p50_ms"])
            self.assertGreaterEqual(w["p99_ms"], 5)  # half the requests waited 5 ms upstream
            self.assertGreaterEqual(w["clients"], 1)
            self.assertGreater(w["bytes_out"], 0)
        clusters = {x["name"]: x["windows"] for x in admin(f, "GET", "/stats/clusters")
                    .json()["clusters"]}
        self.assertGreaterEqual(clusters["app"]["1m"]["requests"], 20)
        # Distinct clients are counted per route only: a cluster does not claim 0 of them.
        self.assertNotIn("clients", clusters["app"]["1m"])
        self.assertIsNotNone(clusters["app"]["1m"]["p50_ms"])
        self.assertEqual(admin(f, "POST", "/stats/routes").status, 405)

    def test_distinct_clients_are_told_apart_by_api_key_then_user_then_address(self):
        # Everything here comes from one address, as through a NAT or another proxy: the keys
        # and users still count as clients of their own, as in the report's noisy clients.
        f = self.ficus
        sent = [{"X-Api-Key": k} for k in ("k1", "k2", "k3") for _ in range(2)]
        sent += [{"X-User": u} for u in ("ann", "bob") for _ in range(2)]
        sent += [{"X-Api-Key": "k1", "X-User": "cy"}]  # the key is who sent it
        sent += [{}, {}]  # no key, no user: the address
        for headers in sent:
            self.assertEqual(request(f.port, "GET", "/who/echo", headers=headers).status, 200)
        f.settled_metrics()
        routes = {x["name"]: x["windows"] for x in admin(f, "GET", "/stats/routes")
                  .json()["routes"]}
        self.assertEqual(routes["who"]["1m"]["requests"], len(sent))
        self.assertEqual(routes["who"]["1m"]["clients"], 6)  # k1 k2 k3 ann bob 127.0.0.1

    def test_health(self):
        r = admin(self.ficus, "GET", "/health")
        self.assertEqual(r.status, 200, r)
        h = r.json()
        self.assertTrue(h["ready"])
        self.assertEqual(h["workers"], 2)
        t = h["telemetry"]
        self.assertTrue(t["path"].endswith("ficus.db"))
        self.assertGreater(t["file_bytes"], 0)
        self.assertEqual(t["max_bytes"], 256 << 20)
        self.assertEqual(t["write_errors"], 0)


class TelemetryStoreTest(FicusTestCase):
    def config(self, up_port, data_dir=None, **extra):
        cfg = make_config({"app": [endpoint(up_port)]},
                          [{"name": "api", "match": {"path_prefix": "/"}, "cluster": "app"}],
                          admin={"token": TOKEN}, **extra)
        if data_dir:
            cfg["data_dir"] = data_dir
        return cfg

    def test_reloads_are_events_and_rollups_reach_the_database(self):
        up = self.start_upstream()
        f = self.start_ficus(self.config(up.port))
        for _ in range(30):
            self.assertEqual(request(f.port, "GET", "/echo").status, 200)
        def reload_notes(n):
            notes = [e["note"] for e in events(f, "?kind=config_reload")]
            return notes if len(notes) >= n else None

        f.reload()
        self.assertTrue(wait_until(lambda: reload_notes(1), 10 * TIME_FACTOR))
        f.reload(text="listeners: [\n")  # invalid: rejected, also on the timeline
        reloads = wait_until(lambda: reload_notes(2), 10 * TIME_FACTOR)
        self.assertTrue(reloads, events(f, "?limit=100"))
        self.assertTrue(reloads[0].startswith("rejected: "), reloads)
        self.assertTrue(reloads[1].startswith("applied: 1 route(s)"), reloads)
        # Within one 10 s interval (plus the tick's margin) the rows are in the file.
        db = os.path.join(f.workdir, "ficus-data", "ficus.db")

        def rows():
            with sqlite3.connect("file:%s?mode=ro" % db, uri=True) as c:
                return c.execute(
                    "SELECT r.res, r.requests FROM rollup r JOIN series s ON s.id = r.series "
                    "WHERE s.kind = 0 AND s.name = 'api'").fetchall()

        def totals():
            return {res: sum(n for r, n in rows() if r == res) for res in (10000, 60000)}

        # The requests may straddle an interval boundary: wait for every row that holds them.
        got = wait_until(lambda: totals() == {10000: 30, 60000: 30}, 25 * TIME_FACTOR,
                         interval=0.5)
        self.assertTrue(got, rows())
        self.assertEqual(sum(n for res, n in rows() if res == 10000), 30)
        self.assertEqual(sum(n for res, n in rows() if res == 60000), 30)

    def test_backup_and_restore_while_running(self):
        up = self.start_upstream()
        f = self.start_ficus(self.config(up.port))
        data_dir = os.path.join(f.workdir, "ficus-data")
        backup_dir = tempfile.mkdtemp(prefix="ficus-backup-")
        self.addCleanup(shutil.rmtree, backup_dir, True)
        self.assertEqual(post_event(f, "shop", "before-backup").status, 201)
        # Writes keep going while the copy is taken.
        for _ in range(20):
            self.assertEqual(request(f.port, "GET", "/echo").status, 200)
        r = ficus_cli("backup", backup_dir, "--data-dir", data_dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.exists(os.path.join(backup_dir, "ficus.db")))
        self.assertEqual(post_event(f, "shop", "after-backup").status, 201)
        versions = [e["version"] for e in events(f, "?kind=deploy")]
        self.assertEqual(versions, ["after-backup", "before-backup"])

        r = ficus_cli("restore", backup_dir, "--data-dir", data_dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([e["version"] for e in events(f, "?kind=deploy")], ["before-backup"])
        # The running ficus keeps writing to the restored database.
        self.assertEqual(post_event(f, "shop", "after-restore").status, 201)
        self.assertEqual(f.stop(), 0)
        # ... and a new ficus on the same data directory has it all.
        f2 = self.start_ficus(self.config(up.port, data_dir=data_dir))
        self.assertEqual([e["version"] for e in events(f2, "?kind=deploy")],
                         ["after-restore", "before-backup"])
        # -c reads data_dir from the config; a file that is not a store is refused.
        r = ficus_cli("backup", os.path.join(backup_dir, "second"), "-c", f2.config_path)
        self.assertEqual(r.returncode, 0, r.stderr)
        junk = os.path.join(backup_dir, "junk.db")
        with open(junk, "w") as fh:
            fh.write("not a database at all, not even close" * 100)
        r = ficus_cli("restore", junk, "--data-dir", data_dir)
        self.assertEqual(r.returncode, 1)
        self.assertIn("not a ficus telemetry database", r.stderr)
        self.assertEqual(len(events(f2, "?kind=deploy")), 2)

    def test_unusable_data_dir_fails_startup(self):
        blocker = tempfile.NamedTemporaryFile(delete=False)
        self.addCleanup(os.unlink, blocker.name)
        up = self.start_upstream()
        f = self.start_ficus(self.config(up.port, data_dir=os.path.join(blocker.name, "sub")),
                             wait=False)
        self.assertEqual(f.proc.wait(10 * TIME_FACTOR), 1)
        self.assertIn("data_dir", f.log_text())


if __name__ == "__main__":
    unittest.main()
