"""Losing endpoints under load: killed (kill -9) and hung (SIGSTOP) upstreams behind ficus
with closed-loop load from `ficus load --closed` (as wrk: 20 connections, one thread) that
saturates the gateway; and the retry budget holding a cluster-wide failure to its rate.

The upstreams are single-process nginx (`master_process off`), so killing the process really
closes its listening socket and its keep-alive connections, and SIGSTOP leaves the kernel
completing handshakes that nobody serves. Skipped without nginx.

Figures are printed (requests, p99 per second around the fault, retries, budget refusals);
assertions are on counts (errors, statuses, metric counters), never on wall-clock speed.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, UpstreamProcess, endpoint,
                     free_port, make_config, request, wait_until)

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


class NginxUpstream:
    """One nginx process (no master) answering `status` with X-Upstream: name on every path
    but /health (always 200). Each start logs to its own access log."""

    def __init__(self, name, port=None, status=200):
        self.name = name
        self.port = port or free_port()
        self.status = status
        self.dir = tempfile.mkdtemp(prefix="ficus-failover-%s-" % name)
        self.proc = None
        self.starts = 0
        self.start()

    def start(self):
        self.starts += 1
        self.log = os.path.join(self.dir, "access-%d.log" % self.starts)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
worker_rlimit_nofile 4096;
events { worker_connections 2048; }
http {
    access_log %(log)s combined buffer=64k flush=100ms;
    client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
    uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:%(p)d backlog=1024;
        location = /health { access_log off; return 200 "ok"; }
        location / { add_header X-Upstream %(name)s always; return %(status)d "ok"; }
    }
}
""" % {"d": self.dir, "p": self.port, "log": self.log, "name": self.name,
       "status": self.status})
        self.proc = subprocess.Popen([NGINX, "-p", self.dir + "/", "-c", conf, "-e",
                                      os.path.join(self.dir, "error.log"),
                                      "-g", "daemon off; master_process off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                return request(self.port, "GET", "/health", timeout=0.5).status == 200
            except OSError:
                return False
            except Exception:
                return False
        if not wait_until(up, 10 * TIME_FACTOR):
            self.stop()
            raise AssertionError("nginx %s did not start on port %d" % (self.name, self.port))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)

    def served(self):
        """Requests the current process logged (flushed within 100 ms)."""
        try:
            with open(self.log) as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class ClosedLoad:
    """`ficus load --closed` (20 connections, one thread) for `seconds` in the background;
    .result is its JSON summary once joined."""

    def __init__(self, port, seconds, connections=20, path="/"):
        self.argv = [FICUS_BIN, "load", "--closed", "-c", str(connections), "-t", "1",
                     "-d", "%ds" % seconds, "--timeout", "10s", "--json",
                     "http://127.0.0.1:%d%s" % (port, path)]
        self.seconds = seconds
        self.result = None
        self.started = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.started = time.monotonic()
        out = subprocess.run(self.argv, capture_output=True, timeout=self.seconds + 60)
        self.stderr = out.stderr.decode(errors="replace")
        self.result = json.loads(out.stdout) if out.stdout.strip() else None

    def __enter__(self):
        self._thread.start()
        wait_until(lambda: self.started is not None, 5)
        return self

    def __exit__(self, *exc):
        self._thread.join(self.seconds + 90)

    def at(self, t):
        """Sleeps until `t` seconds into the run."""
        delay = self.started + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def p99s(result, first, last):
    return ["%.1f" % s["p99_ms"] for s in result["per_second"] if first <= s["t"] <= last]


def non_200(result):
    return {k: v for k, v in result["status"].items() if k != "200"}


def app_cluster(ports, **extra):
    c = {"name": "app", "endpoints": [endpoint(p) for p in ports], "connect_timeout": "1s",
         "load_balancer": "p2c_ewma",
         "retry": {"on": ["connect_failure", "reset", "502", "503"], "max_tries": 3,
                   "budget": "20%"},
         "health_check": {"path": "/health"}}
    c.update(extra)
    return c


@unittest.skipIf(NGINX is None, "nginx is not installed")
class FailoverTest(FicusTestCase):
    def start_nginx(self, name, **kw):
        u = NginxUpstream(name, **kw)
        self.addCleanup(u.stop)
        return u

    def test_kill_one_of_three_under_saturating_load_costs_no_client_an_error(self):
        # The operator's setup: p2c_ewma, health checks every 5 s (they catch a dead endpoint
        # after 15 s), retries on connect_failure, reset, 502, 503, max_tries 3, budget 20 %.
        ups = [self.start_nginx("u%d" % i) for i in range(3)]
        f = self.start_ficus(make_config([app_cluster([u.port for u in ups])],
                                         [{"name": "all", "cluster": "app"}]))
        with ClosedLoad(f.port, 10) as load:
            load.at(2)
            ups[1].kill()  # its pooled connections die with it, mid-request for some
            load.at(4)
            ups[1].start()  # back on the same port: it must get traffic again
            load.at(6)
            ups[2].kill()
        r = load.result
        self.assertIsNotNone(r, load.stderr)
        m = f.metrics()
        retries = m.get("ficus_upstream_retries_total", cluster="app")
        refused = m.get("ficus_upstream_retry_budget_exhausted_total", cluster="app")
        print("\nkill one of three (twice) under closed-loop load: %d requests (%.0f/s), "
              "non-200 %s, errors %s, p99 %.1f ms, p99 per second around the kills %s / %s ms, "
              "retries %d, budget refusals %d, connect mark-downs %d, restarted upstream "
              "served %d" % (
                  r["requests"]["completed"], r["achieved_rate"], non_200(r), r["errors"],
                  r["latency_ms"]["uncorrected"]["p99"], p99s(r, 1, 3), p99s(r, 5, 7), retries,
                  refused, m.get("ficus_upstream_connect_markdowns_total", cluster="app"),
                  ups[1].served()))
        self.assertGreater(r["requests"]["completed"], 1000)
        self.assertEqual(non_200(r), {})
        self.assertEqual(sum(r["errors"].values()), 0, r["errors"])
        self.assertEqual(refused, 0)
        self.assertGreaterEqual(m.get("ficus_upstream_connect_markdowns_total", cluster="app"), 2)
        # The restarted endpoint came back (a connect probe or a health check cleared its mark)
        # and served requests; the one killed last is still marked down.
        self.assertTrue(wait_until(lambda: ups[1].served() > 0, 2), "u1 never came back")
        self.assertEqual(m.get("ficus_upstream_endpoint_connect_failed", cluster="app",
                               endpoint="127.0.0.1:%d" % ups[1].port), 0)
        self.assertEqual(m.get("ficus_upstream_endpoint_connect_failed", cluster="app",
                               endpoint="127.0.0.1:%d" % ups[2].port), 1)
        self.assertIn("down for new requests", f.log_text())
        self.assertIn("accepts connections again", f.log_text())

    def test_one_dead_and_one_hung_costs_no_error_and_panic_skips_the_dead(self):
        # One endpoint killed and another stopped (SIGSTOP: the kernel still completes its
        # handshakes) out of three. Health checks mark both down within a second, so with the
        # default panic_threshold (50 %) the cluster is in panic: it uses the hung endpoint
        # again (p2c_ewma keeps it nearly idle after its timeouts) but never the dead one.
        ups = [self.start_nginx("u%d" % i) for i in range(3)]
        f = self.start_ficus(make_config(
            [app_cluster([u.port for u in ups],
                         retry={"on": ["connect_failure", "reset", "timeout", "502", "503"],
                                "max_tries": 3, "per_try_timeout": "1s", "budget": "20%"},
                         health_check={"path": "/health", "interval": "250ms",
                                       "timeout": "200ms", "unhealthy_threshold": 2})],
            [{"name": "all", "cluster": "app"}]))
        with ClosedLoad(f.port, 10) as load:
            load.at(2)
            ups[0].kill()
            ups[1].pause()
            load.at(9)
            failures_in_fault = f.metrics().get("ficus_cluster_upstream_connect_failures_total",
                                                cluster="app")
        ups[1].resume()
        r = load.result
        self.assertIsNotNone(r, load.stderr)
        m = f.metrics()
        print("\none dead + one hung of three under closed-loop load: %d requests (%.0f/s), "
              "non-200 %s, errors %s, p99 %.1f ms (p99.9 %.1f ms), p99 per second from the "
              "fault %s ms, retries %d, budget refusals %d, panic picks %d, connect failures "
              "%d" % (
                  r["requests"]["completed"], r["achieved_rate"], non_200(r), r["errors"],
                  r["latency_ms"]["uncorrected"]["p99"], r["latency_ms"]["uncorrected"]["p99.9"],
                  p99s(r, 2, 9), m.get("ficus_upstream_retries_total", cluster="app"),
                  m.get("ficus_upstream_retry_budget_exhausted_total", cluster="app"),
                  m.get("ficus_upstream_panic_total", cluster="app"), failures_in_fault))
        self.assertGreater(r["requests"]["completed"], 1000)
        self.assertEqual(non_200(r), {})
        self.assertEqual(sum(r["errors"].values()), 0, r["errors"])
        self.assertGreater(m.get("ficus_upstream_panic_total", cluster="app"), 0)
        # Only the requests already on their way to the dead endpoint found it refusing; in
        # panic mode nothing more was sent there.
        self.assertLessEqual(failures_in_fault, 40)

    def test_a_cluster_wide_failure_under_overload_is_held_to_the_budget(self):
        # Every endpoint answers 503 and every request wants two retries: without a budget the
        # upstreams would see 3x the client's requests. Sampled every half second, retries
        # stay within 20 % of the window's requests plus the floor (10/s x the 10 s window).
        ups = [self.start_nginx("u%d" % i, status=503) for i in range(3)]
        f = self.start_ficus(make_config(
            [app_cluster([u.port for u in ups],
                         retry={"on": ["503"], "max_tries": 3,
                                "backoff": {"base": "1ms", "max": "2ms"},
                                "budget": {"ratio": 0.2, "min_per_second": 10}})],
            [{"name": "all", "cluster": "app"}]))
        samples = []
        with ClosedLoad(f.port, 8) as load:
            while time.monotonic() < load.started + 8.5:
                m = f.metrics()
                samples.append((m.get("ficus_route_requests_total", route="all"),
                                m.get("ficus_upstream_retries_total", cluster="app")))
                time.sleep(0.5)
        r = load.result
        self.assertIsNotNone(r, load.stderr)
        m = f.settled_metrics()
        client = m.get("ficus_route_requests_total", route="all")
        upstream = m.get("ficus_cluster_upstream_requests_total", cluster="app")
        retries = m.get("ficus_upstream_retries_total", cluster="app")
        refused = m.get("ficus_upstream_retry_budget_exhausted_total", cluster="app")
        print("\nevery endpoint 503 under closed-loop load: %d client requests -> %d upstream "
              "requests (%.3f x; without a budget 3 x), retries %d, refused %d, "
              "worst sample retries/allowed %.2f" % (
                  client, upstream, upstream / max(client, 1), retries, refused,
                  max(t / (0.2 * q + 100) for q, t in samples)))
        self.assertGreater(client, 1000)
        self.assertEqual(r["status"].get("503", 0), r["requests"]["completed"])
        # Every upstream attempt is the first try or a counted retry (a keep-alive resend
        # would add one, hence the small slack).
        self.assertAlmostEqual(upstream, client + retries, delta=0.01 * client)
        # The whole run fits in one 10 s window. A scrape reads the route's requests before the
        # retries, so a sample may count retries of requests it has not counted: 1 % slack.
        for q, t in samples:
            self.assertLessEqual(t, 0.2 * q + 100 + 0.01 * q, samples)
        self.assertLessEqual(upstream, 1.2 * client + 101)
        self.assertGreater(refused, 0.5 * client)  # most requests were refused their retry

    def test_keep_alive_resend_to_a_killed_endpoint_fails_over_within_max_tries(self):
        # A pooled connection to an endpoint that was just killed: the request is sent again
        # on a fresh connection to the same endpoint (the keep-alive race), that connect is
        # refused, and the next try goes to another endpoint. The resend is part of the try,
        # so max_tries: 2 is enough for the client never to see the failure.
        ups = [UpstreamProcess("u%d" % i) for i in range(3)]
        for u in ups:
            self.addCleanup(u.stop)
        f = self.start_ficus(make_config(
            [{"name": "app", "endpoints": [endpoint(u.port) for u in ups],
              "connect_timeout": "1s",
              "retry": {"on": ["connect_failure", "reset"], "max_tries": 2}}],
            [{"name": "all", "cluster": "app"}]))
        for _ in range(6):  # round robin: two pooled connections' worth to each endpoint
            self.assertEqual(request(f.port, "GET", "/echo").status, 200)
        ups[1].proc.send_signal(signal.SIGKILL)
        ups[1].proc.wait()
        seen = []
        for _ in range(9):
            r = request(f.port, "GET", "/echo")
            self.assertEqual(r.status, 200, r)
            seen.append(r.header("x-upstream"))
        m = f.metrics()
        self.assertNotIn("u1", seen)
        self.assertEqual(m.get("ficus_cluster_upstream_connect_failures_total", cluster="app"), 1)
        self.assertEqual(m.get("ficus_upstream_retries_total", cluster="app"), 1)
        self.assertEqual(m.get("ficus_upstream_endpoint_connect_failed", cluster="app",
                               endpoint="127.0.0.1:%d" % ups[1].port), 1)


if __name__ == "__main__":
    unittest.main()
