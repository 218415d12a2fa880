"""`ficus prove` end to end, against a real ficus and the test upstream: the report finds two
cache candidates (both routes repeat the same body for the same URL in the users' traffic);
proving them runs the same load before and after the change. On `helps` the cache serves the
load's repeated URL and the 30 ms answers become hits: kept. On `unique` the load sends a URL
never seen before on every request (the upstream says `Cache-Control: max-age=60`, but nothing
repeats), so the cache can only miss: inconclusive, reverted. Also: --dry-run changes nothing,
live traffic makes it refuse without --yes, and Ctrl-C during the measurement after the change
puts the old config back. Results land in the report (proof events).

NoisyReplayTest: a noisy API key's proof from a `record:` capture replays the other clients'
recorded requests (measured) beside the key's own recorded requests (the flood), on the
capture's timeline, before and after its rate limit."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config, request,
                     wait_until)
from loopback_server import LoopbackHTTPServer

TOKEN = "prove-admin-token-0123456789abcdef"
HELPS = "/helps/bytes?n=800&body_delay_ms=30"
UNIQUE = "/unique/bytes?n=800&body_delay_ms=30&hdr=Cache-Control:max-age%3D60"
SCENARIO = """requests:
  - { name: helps, method: GET, path: "%s" }
  - { name: unique, method: GET, path: "%s&u={{n}}" }
variables: { n: counter }
""" % (HELPS, UNIQUE)


class ProveTest(FicusTestCase):
    def setUp(self):
        super().setUp()
        up = self.start_upstream("prove")
        capture_dir = tempfile.mkdtemp(prefix="ficus-prove-capture-")
        self.addCleanup(shutil.rmtree, capture_dir, True)
        self.capture = os.path.join(capture_dir, "helps.jsonl")
        routes = [{"name": "helps", "match": {"path_prefix": "/helps/"}, "cluster": "app",
                   "record": {"path": self.capture}},
                  {"name": "unique", "match": {"path_prefix": "/unique/"}, "cluster": "app"}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, admin={"token": TOKEN},
                          workers=2, telemetry={"repeat_sample": 1})
        cfg["data_dir"] = "data"
        self.f = self.start_ficus(cfg)
        self.scenario = os.path.join(self.f.workdir, "load.yaml")
        with open(self.scenario, "w") as out:
            out.write(SCENARIO)
        # The users' traffic: the same two URLs again and again.
        for _ in range(30):
            self.assertEqual(request(self.f.port, "GET", HELPS).status, 200)
            self.assertEqual(request(self.f.port, "GET", UNIQUE).status, 200)
        # The telemetry thread writes its rollups every 10 s: wait until the report sees both.
        self.assertTrue(wait_until(
            lambda: {"cache:helps", "cache:unique"} <= self.finding_ids(), 30 * TIME_FACTOR,
            interval=1.0), self.finding_ids())

    def cli(self, *args, timeout=120):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                              cwd=self.f.workdir, timeout=timeout * TIME_FACTOR)

    def report(self):
        r = self.cli("report", "-c", self.f.config_path, "--period", "10m", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def finding_ids(self):
        return {"%s:%s" % (x["kind"], x["route"]) for x in self.report()["findings"]}

    def running_config(self):
        return request(self.f.admin_port, "GET", "/config").body.decode()

    def config_posts(self):
        audit = request(self.f.admin_port, "GET", "/audit").json()["audit"]
        return [e for e in audit if e["action"] == "POST /config"]

    def cached(self, path):
        """Whether the second of two requests for `path` is answered from the cache."""
        request(self.f.port, "GET", path)
        return request(self.f.port, "GET", path).has_header("age")

    def prove_args(self, *findings, steps="2", step="2s", more=()):
        return ["prove", *findings, "-c", self.f.config_path, "--scenario", self.scenario,
                "--max-rate", "40", "--steps", steps, "--step-duration", step, *more]

    def test_a_cache_that_helps_is_kept_and_one_that_cannot_hit_is_reverted(self):
        before = self.running_config()
        self.assertNotIn("stale_while_revalidate", before)
        with open(self.f.config_path) as f:
            original = f.read()
        r = self.cli(*self.prove_args("cache:helps", "cache:unique", more=("--save",)))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # --save: the kept change is in the config file, the old file beside it.
        with open(self.f.config_path + ".bak") as f:
            self.assertEqual(f.read(), original)
        with open(self.f.config_path) as f:
            self.assertEqual(f.read().count("stale_while_revalidate"), 1)
        self.assertIn("Before and after", r.stdout)
        lines = {l.split()[0]: l for l in r.stdout.splitlines() if l.startswith("cache:")}
        self.assertIn("kept (better)", lines["cache:helps"], r.stdout)
        self.assertIn("reverted (inconclusive)", lines["cache:unique"], r.stdout)

        # The gateway runs the kept change only.
        self.assertTrue(self.cached(HELPS))
        self.assertFalse(self.cached(UNIQUE + "&u=x"))
        self.assertEqual(self.running_config().count("stale_while_revalidate"), 1)
        # Three reloads through the admin API: helps applied, unique applied, unique reverted.
        posts = self.config_posts()
        self.assertEqual(len(posts), 3, posts)
        self.assertTrue(all(p["who"] == "token" and p["outcome"] == "ok" for p in posts), posts)

        # The report's before/after section, from the timeline's proof events.
        proofs = {p["finding"]: p for p in self.report()["proofs"]}
        self.assertEqual(proofs["cache:helps"]["decision"], "kept")
        self.assertEqual(proofs["cache:helps"]["outcome"], "better")
        self.assertLess(proofs["cache:helps"]["after"]["p99_ms"],
                        proofs["cache:helps"]["before"]["p99_ms"] / 2)
        self.assertLess(proofs["cache:helps"]["after"]["origin_rps"],
                        proofs["cache:helps"]["before"]["origin_rps"] / 2, proofs)
        self.assertEqual(proofs["cache:unique"]["decision"], "reverted")
        self.assertEqual(proofs["cache:unique"]["outcome"], "inconclusive")
        md = self.cli("report", "-c", self.f.config_path, "--period", "10m", "--format",
                      "markdown").stdout
        self.assertIn("## Proofs: before and after", md)

    def test_replay_of_recorded_traffic_is_the_load(self):
        # The users' requests to `helps` were recorded (record:); replayed on their own timeline
        # (twice as fast, looped), they are the load before and after the cache: kept.
        def recorded():
            if not os.path.exists(self.capture):
                return 0
            with open(self.capture) as f:
                return f.read().count("\n")
        self.assertTrue(wait_until(lambda: recorded() >= 30, 10 * TIME_FACTOR))
        r = self.cli("prove", "cache:helps", "-c", self.f.config_path, "--replay", self.capture,
                     "--speed", "2x", "--steps", "2", "--step-duration", "2s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith("cache:helps")]
        self.assertTrue(line and "kept (better)" in line[0], r.stdout)
        proof = {p["finding"]: p for p in self.report()["proofs"]}["cache:helps"]
        self.assertTrue(proof["load"].startswith(
            "replay of %s's requests to route helps at 2x" % self.capture), proof["load"])
        self.assertLess(proof["after"]["p99_ms"], proof["before"]["p99_ms"] / 2, proof)
        # The replay's rate is the capture's: 30 requests in about 1.5 s, at twice the speed.
        self.assertGreater(proof["before"]["requests"], 30, proof)
        self.assertTrue(self.cached(HELPS))
        # A capture that cannot be read is bad input, refused before anything changes.
        bad = self.cli("prove", "cache:helps", "-c", self.f.config_path, "--replay",
                       os.path.join(self.f.workdir, "missing.jsonl"))
        self.assertEqual(bad.returncode, 2, bad.stderr)
        self.assertIn("--replay:", bad.stderr)

    def test_dry_run_changes_nothing(self):
        before = self.running_config()
        r = self.cli("prove", "--all", "--dry-run", "-c", self.f.config_path)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("== cache:helps", r.stdout)
        self.assertIn("+ ", r.stdout)
        self.assertIn("cache:", r.stdout)
        self.assertEqual(self.running_config(), before)
        self.assertEqual(self.config_posts(), [])
        self.assertNotIn("proofs", [k for k, v in self.report().items() if v])

    def test_live_traffic_is_refused_without_yes(self):
        stop = threading.Event()

        def users():
            while not stop.is_set():
                request(self.f.port, "GET", HELPS)

        t = threading.Thread(target=users)
        t.start()
        try:
            r = self.cli(*self.prove_args("cache:helps"))
        finally:
            stop.set()
            t.join()
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("live traffic", r.stderr)
        self.assertEqual(self.config_posts(), [])

    def test_ctrl_c_restores_the_old_config(self):
        before = self.running_config()
        p = subprocess.Popen([FICUS_BIN, *self.prove_args(
            "cache:helps", steps="1", step="4s")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.f.workdir)
        try:
            # The change is applied after the 4 s baseline; interrupt the measurement after it.
            self.assertTrue(wait_until(lambda: "stale_while_revalidate" in self.running_config(),
                                       30 * TIME_FACTOR, interval=0.1))
            time.sleep(1.5)
            p.send_signal(signal.SIGINT)
            out, err = p.communicate(timeout=30 * TIME_FACTOR)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(p.returncode, 130, out + err)
        self.assertIn("interrupted", err)
        self.assertEqual(self.running_config(), before)
        self.assertFalse(self.cached(HELPS))
        self.assertEqual([e["outcome"] for e in self.config_posts()], ["ok", "ok"])


class SlowOrigin(BaseHTTPRequestHandler):
    """Two requests at once, 25 ms each (80 req/s); more wait their turn, as in a small thread
    pool: a flood past that makes everyone's requests wait."""
    slots = threading.Semaphore(2)
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        with SlowOrigin.slots:
            time.sleep(0.025)
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


# A hundred ordinary keys, each well under the rate the report suggests for the scraper (it is
# derived from the typical key's rate over the report's period).
OTHERS = """requests:
  - { name: browse, path: "/api/items?page={{page}}", headers: { X-Api-Key: "{{who}}" } }
variables: { page: { random_int: [1, 5] }, who: { pick: [%s] } }
""" % ", ".join("u%d" % i for i in range(100))


class NoisyReplayTest(FicusTestCase):
    def setUp(self):
        super().setUp()
        origin = LoopbackHTTPServer(("127.0.0.1", 0), SlowOrigin)
        threading.Thread(target=origin.serve_forever, daemon=True).start()
        self.addCleanup(origin.server_close)
        self.addCleanup(origin.shutdown)
        capture_dir = tempfile.mkdtemp(prefix="ficus-prove-noisy-")
        self.addCleanup(shutil.rmtree, capture_dir, True)
        self.capture = os.path.join(capture_dir, "api.jsonl")
        routes = [{"name": "api", "match": {"path_prefix": "/api/"}, "cluster": "app",
                   "record": {"path": self.capture}}]
        cfg = make_config({"app": [endpoint(origin.server_address[1])]}, routes,
                          admin={"token": TOKEN}, workers=2)
        cfg["data_dir"] = "data"
        self.f = self.start_ficus(cfg)
        others = os.path.join(self.f.workdir, "others.yaml")
        with open(others, "w") as out:
            out.write(OTHERS)
        # The users' traffic, recorded: ordinary keys at 20 req/s in all, and a scraper at
        # 120 req/s, past what the origin serves, for 3 s. No admin token: users, not ficus.
        env = {k: v for k, v in os.environ.items() if k != "FICUS_ADMIN_TOKEN"}
        url = "http://127.0.0.1:%d" % self.f.port
        loads = [subprocess.Popen([FICUS_BIN, "load", others, "--target", url, "--rate", "20",
                                   "--duration", "3s", "--timeout", "10s"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
                 subprocess.Popen([FICUS_BIN, "load", url + "/api/items?page=1", "-H",
                                   "X-Api-Key: scraper", "--rate", "120", "--duration", "3s",
                                   "--timeout", "10s"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)]
        for p in loads:
            _, err = p.communicate(timeout=60 * TIME_FACTOR)
            self.assertIn(p.returncode, (0, 3), err)

        def noisy():
            r = self.cli("report", "-c", self.f.config_path, "--period", "10m", "--format",
                         "json")
            return r.returncode == 0 and any(
                f["kind"] == "noisy_client" for f in json.loads(r.stdout)["findings"])
        self.assertTrue(wait_until(noisy, 30 * TIME_FACTOR, interval=1.0))

    def cli(self, *args, timeout=120):
        return subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                              cwd=self.f.workdir, timeout=timeout * TIME_FACTOR)

    def test_the_others_recorded_requests_are_measured_beside_the_recorded_flood(self):
        # --period 1m: the suggested limit comes from the key's rate over the report's period
        # (see the OTHERS comment), here the minute that holds the 3 s of traffic.
        r = self.cli("prove", "noisy_client:key:scraper", "-c", self.f.config_path, "--replay",
                     self.capture, "--steps", "1", "--step-duration", "3s", "--settle", "2s",
                     "--period", "1m")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith("noisy_client:key:scraper")]
        self.assertTrue(line and "kept (better)" in line[0], r.stdout + r.stderr)
        rep = self.cli("report", "-c", self.f.config_path, "--period", "10m", "--format", "json")
        proof = {p["finding"]: p for p in json.loads(rep.stdout)["proofs"]}[
            "noisy_client:key:scraper"]
        self.assertTrue(proof["load"].startswith(
            "replay of %s: the other clients' requests to api while key:scraper's recorded "
            "requests replay beside them, at 1x" % self.capture), proof["load"])
        # Measured: the others' 20 req/s of the capture (about 60 in 3 s), not the scraper's 360.
        for phase in ("before", "after"):
            self.assertGreater(proof[phase]["requests"], 30, proof)
            self.assertLess(proof[phase]["requests"], 150, proof)
        # The flood made them wait behind it; limited, it no longer does.
        self.assertLess(proof["after"]["p99_ms"], proof["before"]["p99_ms"] / 2, proof)
        self.assertIn("rate_limit", request(self.f.admin_port, "GET", "/config").body.decode())


if __name__ == "__main__":
    unittest.main()
