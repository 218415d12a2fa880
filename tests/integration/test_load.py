"""`ficus load`: the open-model load generator against real servers on loopback.

- rate accuracy (2,000 req/s for 5 s, measured by the generator and by the upstream's own
  timestamps) and request counts that match what the upstream saw; 5,000 req/s for 10 s
  against nginx (its access log timestamps) within +-1 % (1,250 req/s on the ASan build);
- coordinated omission: a server that stalls once for 1 s shows the stall in the corrected
  p99 (latency from the intended send time) and not in the uncorrected one;
- response framing (Content-Length, chunked, until close), status counts, error kinds;
- load profiles (--profile, --stage): each second's achieved rate follows the profile;
- thresholds exit 3; bad input exits 2 before anything is sent.
"""

import asyncio
import json
import os
import shutil
import tempfile
import subprocess
import threading
import time
import unittest

from harness import FICUS_BIN, SANITIZED, TIME_FACTOR, RawConn, free_port, wait_until
from upstream import Upstream


def http_get_head(port, url):
    """The response head (bytes, through the blank line) a GET of `url` gets, asked for as
    `ficus load` asks."""
    with RawConn(port) as c:
        c.request("GET", "/" + url.split("/", 3)[3], headers={"User-Agent": "ficus-load"},
                  host="127.0.0.1")
        return c.bs.read_head()


def run_load(*args, timeout=60):
    """Runs `ficus load ARGS`; returns (exit code, stdout, stderr)."""
    p = subprocess.run([FICUS_BIN, "load", *args], capture_output=True, text=True,
                       timeout=timeout * TIME_FACTOR)
    return p.returncode, p.stdout, p.stderr


class StallServer:
    """A tiny asyncio HTTP/1.1 keep-alive server that answers "ok" and, once, 2 s after its
    first request, holds every response for 1 s."""

    def __init__(self, stall_after=2.0, stall_for=1.0):
        self.stall_after = stall_after
        self.stall_for = stall_for
        self.requests = 0
        self.first = None
        self.stall_until = None
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader, writer):
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                now = self._loop.time()
                if self.first is None:
                    self.first = now
                if self.stall_until is None and now - self.first >= self.stall_after:
                    self.stall_until = now + self.stall_for
                if self.stall_until is not None and now < self.stall_until:
                    await asyncio.sleep(self.stall_until - now)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _run(self):
        asyncio.set_event_loop(self._loop)

        async def start():
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def start(self):
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


class SilentServer:
    """Accepts connections and reads requests but never answers (a hung backend)."""

    def __init__(self):
        import socket
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1024)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import selectors
        sel = selectors.DefaultSelector()
        self.listener.setblocking(False)
        sel.register(self.listener, selectors.EVENT_READ)
        while not self._stop:
            for key, _ in sel.select(0.05):
                if key.fileobj is self.listener:
                    try:
                        c, _ = self.listener.accept()
                    except OSError:
                        continue
                    c.setblocking(False)
                    self.conns.append(c)
                    sel.register(c, selectors.EVENT_READ)
                else:
                    try:
                        data = key.fileobj.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
        sel.close()

    def stop(self):
        self._stop = True
        self._thread.join(5)
        for c in self.conns:
            c.close()
        self.listener.close()


class Nginx:
    """nginx answering 200 "ok" on a loopback port, logging each request's time ($msec)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="ficus-load-nginx-")
        self.port = free_port()
        self.log = os.path.join(self.dir, "access.log")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write("""
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 1024; }
http {
    log_format t '$msec';
    access_log %(d)s/access.log t buffer=64k flush=100ms;
    client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
    uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:%(p)d; location / { return 200 "ok"; } }
}
""" % {"d": self.dir, "p": self.port})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen([nginx, "-p", self.dir + "/", "-c", conf, "-e",
                                      os.path.join(self.dir, "error.log"),
                                      "-g", "daemon off; master_process off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        if not wait_until(up, 5):
            self.stop()
            raise AssertionError("nginx did not start")

    def times(self):
        with open(self.log) as f:
            return sorted(float(line) for line in f if line.strip())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class LoadTest(unittest.TestCase):
    def start_upstream(self):
        up = Upstream(name="load").start()
        self.addCleanup(up.stop)
        return up

    def test_rate_accuracy_and_counts(self):
        up = self.start_upstream()
        rc, out, err = run_load("http://127.0.0.1:%d/status/200" % up.port, "--rate", "2000",
                                "--duration", "5s", "--connections", "32", "--threads", "2",
                                "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["mode"], "open")
        self.assertEqual(r["requests"]["scheduled"], 10000)
        self.assertEqual(r["requests"]["dropped"], 0)
        self.assertAlmostEqual(r["achieved_rate"], 2000, delta=20)  # +-1 %
        self.assertEqual(r["requests"]["sent"], r["requests"]["completed"])
        self.assertEqual(r["status"], {"200": r["requests"]["completed"]})
        self.assertEqual(sum(r["errors"].values()), 0)
        # What the upstream saw: the same count, at the same rate by its own clock.
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= 10000, 5))
        reqs = up.complete_requests()
        self.assertEqual(len(reqs), r["requests"]["completed"])
        times = sorted(q["time"] for q in reqs)
        seen_rate = (len(times) - 1) / (times[-1] - times[0])
        self.assertAlmostEqual(seen_rate, 2000, delta=20, msg="upstream saw %.1f/s" % seen_rate)
        self.assertGreater(r["bytes"]["out"], 0)
        self.assertGreater(r["bytes"]["in"], 0)
        self.assertLessEqual(r["latency_ms"]["uncorrected"]["p50"],
                             r["latency_ms"]["corrected"]["p50"] + 0.01)

    def test_rate_accuracy_5000_for_10s(self):
        # The figure: +-1 % of the target over 10 s at 5,000 req/s, by the generator's
        # count and by nginx's own arrival timestamps. A sanitized build is ~4x slower, so it
        # checks the same accuracy at a quarter of the rate.
        rate = 1250 if SANITIZED else 5000
        if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
            self.skipTest("nginx is not installed (scripts/install-deps.sh)")
        srv = Nginx()
        self.addCleanup(srv.stop)
        rc, out, err = run_load("http://127.0.0.1:%d/" % srv.port, "--rate", str(rate),
                                "--duration", "10s", "--connections", "64", "--threads", "2",
                                "--json", timeout=40)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["requests"]["scheduled"], rate * 10)
        self.assertEqual(r["requests"]["dropped"], 0)
        self.assertEqual(r["requests"]["completed"], rate * 10)
        self.assertAlmostEqual(r["achieved_rate"], rate, delta=0.01 * rate)
        # Each whole second too (a request sent a hair after 10 s can open an 11th "second").
        for sec in r["per_second"][:10]:
            self.assertAlmostEqual(sec["achieved"], rate, delta=0.01 * rate, msg=r["per_second"])
        self.assertTrue(wait_until(lambda: len(srv.times()) >= rate * 10, 3))
        times = srv.times()
        self.assertEqual(len(times), rate * 10)
        seen = (len(times) - 1) / (times[-1] - times[0])  # nginx's clock has ms resolution
        self.assertAlmostEqual(seen, rate, delta=0.01 * rate, msg="nginx saw %.1f/s" % seen)

    def test_stall_shows_in_corrected_latency_only(self):
        srv = StallServer().start()
        self.addCleanup(srv.stop)
        rc, out, err = run_load("http://127.0.0.1:%d/" % srv.port, "--rate", "500",
                                "--duration", "5s", "--connections", "4", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertIsNotNone(srv.stall_until, "the server never stalled")
        self.assertEqual(r["requests"]["scheduled"], 2500)
        self.assertEqual(r["requests"]["dropped"], 0)
        self.assertEqual(r["requests"]["completed"], 2500)
        self.assertEqual(srv.requests, 2500)
        corrected = r["latency_ms"]["corrected"]
        uncorrected = r["latency_ms"]["uncorrected"]
        self.assertGreaterEqual(corrected["p99"], 500, r)
        self.assertGreaterEqual(corrected["max"], 900, r)
        self.assertLess(uncorrected["p99"], 100, r)
        self.assertGreater(r["requests"]["late"], 300, r)  # queued behind the stalled ones
        # Per second (by completion time): the stall shows in the seconds it ended in, not
        # before it; every response is counted in exactly one second.
        per = r["per_second"]
        self.assertEqual(sum(p["completed"] for p in per), 2500, per)
        self.assertLess(per[0]["p99_ms"], 400, per)  # loose: a loaded CI machine adds tens of ms
        self.assertLess(per[1]["p99_ms"], 400, per)
        self.assertGreaterEqual(max(p["p99_ms"] for p in per[2:]), 500, per)
        self.assertTrue(all(0 < p["p50_ms"] <= p["p99_ms"] for p in per if p["completed"]), per)

    def test_framing_status_and_errors(self):
        up = self.start_upstream()
        base = "http://127.0.0.1:%d" % up.port
        # Chunked bodies, closed model.
        rc, out, err = run_load(base + "/bytes?n=20000&chunked=1", "--closed", "--duration",
                                "1s", "--connections", "2", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        n = r["requests"]["completed"]
        self.assertGreater(n, 10)
        self.assertEqual(r["status"], {"200": n})
        self.assertEqual(sum(r["errors"].values()), 0, r)
        self.assertGreater(r["bytes"]["in"], 20000 * n)
        # Bodies that end when the server closes, and a POST with a body.
        rc, out, err = run_load(base + "/echo?eof=1", "--rate", "100", "--duration", "1s",
                                "--method", "POST", "--body", "hello", "-H", "X-Test: 1",
                                "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["status"], {"200": 100}, r)
        self.assertEqual(sum(r["errors"].values()), 0, r)
        posted = [q for q in up.complete_requests() if q["method"] == "POST"]
        self.assertEqual(len(posted), 100)
        self.assertTrue(all(q["body_length"] == 5 for q in posted))
        self.assertTrue(all(("X-Test", "1") in [tuple(h) for h in q["headers"]] for q in posted))
        # Status counts and error kinds.
        rc, out, err = run_load(base + "/status/503", "--rate", "50", "--duration", "1s", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["status"], {"503": 50})
        rc, out, err = run_load(base + "/drop", "--rate", "50", "--duration", "1s", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["errors"]["reset"], 50, r)
        self.assertEqual(r["requests"]["completed"], 0)
        rc, out, err = run_load(base + "/garbage", "--rate", "20", "--duration", "1s", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["errors"]["protocol"], 20)
        rc, out, err = run_load(base + "/delay?ms=1500", "--rate", "10", "--duration", "1s",
                                "--timeout", "300ms", "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["errors"]["timeout"], 10)

    def test_responses_that_come_in_pieces(self):
        """Heads sent before their bodies (what nginx and most frameworks do): the closed model
        waits for such small responses whole (peeking), larger ones are read as they come; every
        response is counted once with its exact bytes, and none completes before its body."""
        up = self.start_upstream()
        base = "http://127.0.0.1:%d" % up.port
        for n, delay_ms in ((100, 0), (100, 20), (3000, 0), (20000, 0), (20000, 20)):
            with self.subTest(n=n, delay_ms=delay_ms):
                up.reset()
                url = "%s/bytes?n=%d&body_delay_ms=%d" % (base, n, delay_ms)
                rc, out, err = run_load(url, "--closed", "--duration", "1s", "--connections",
                                        "8", "--json")
                self.assertEqual(rc, 0, err)
                r = json.loads(out)
                done = r["requests"]["completed"]
                self.assertGreater(done, 8, r)
                self.assertEqual(r["status"], {"200": done}, r)
                self.assertEqual(sum(r["errors"].values()), 0, r)
                served = len([q for q in up.complete_requests() if q["path"] == "/bytes"])
                self.assertEqual(served, done, r)
                head = len(http_get_head(up.port, url))
                self.assertEqual(r["bytes"]["in"], done * (head + n), r)
                if delay_ms:
                    self.assertGreaterEqual(r["latency_ms"]["corrected"]["p50"], delay_ms * 0.9, r)

    def test_run_ends_on_time_against_a_server_that_never_answers(self):
        # A hung backend must not hold the run past duration + timeout: requests in flight at
        # the end time out (their own --timeout) and count as timeouts, requests that found no
        # free connection are dropped, and every scheduled request is accounted for.
        srv = SilentServer()
        self.addCleanup(srv.stop)
        url = "http://127.0.0.1:%d/" % srv.port
        for model in (["--rate", "200", "-c", "8"], ["--closed", "-c", "4"]):
            t0 = time.monotonic()
            rc, out, err = run_load(url, *model, "--duration", "2s", "--timeout", "1s", "--json",
                                    timeout=30)
            took = time.monotonic() - t0
            self.assertEqual(rc, 0, err)
            self.assertLess(took, 3 + 1 * TIME_FACTOR, model)  # duration + timeout + grace
            r = json.loads(out)
            q = r["requests"]
            self.assertEqual(q["completed"], 0, model)
            self.assertGreater(q["sent"], 0, model)
            self.assertEqual(r["errors"]["timeout"], q["sent"], (model, r))
            self.assertEqual(q["in_flight_at_end"], 0, (model, q))
            if model[0] == "--rate":
                self.assertEqual(q["scheduled"], 400, q)
                self.assertEqual(q["sent"] + q["dropped"], 400, q)
                self.assertGreater(q["dropped"], 300, q)

    def test_spike_profile_followed_each_second(self):
        # 300 req/s, 1,500 req/s during [2 s, 4 s), 300 req/s to 6 s. The edges fall on second
        # boundaries, so no second is skipped: every second must be within +-5 % of the profile,
        # by the generator's send times and by the upstream's own arrival times.
        up = self.start_upstream()
        t0 = time.monotonic()
        rc, out, err = run_load("http://127.0.0.1:%d/status/200" % up.port, "--profile",
                                "spike:base=300,peak=1500,at=2s,for=2s", "--duration", "6s",
                                "--connections", "32", "--threads", "2", "--json", timeout=15)
        self.assertLess(time.monotonic() - t0, 15 * TIME_FACTOR)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        expected = [300, 300, 1500, 1500, 300, 300]
        per_second = r["per_second"]
        if len(per_second) == 7:
            # On a busy machine a few of the last second's sends go out after 6 s: they are
            # counted in a seventh second with no target of its own (within the 5 % below).
            late = per_second.pop()
            self.assertEqual(late["target"], 0, r["per_second"])
            self.assertLessEqual(late["achieved"], 0.05 * 300, r["per_second"])
            per_second[-1]["achieved"] += late["achieved"]
        self.assertEqual([s["t"] for s in per_second], list(range(6)), r["per_second"])
        self.assertEqual([s["target"] for s in per_second], expected)
        for s in per_second:
            self.assertAlmostEqual(s["achieved"], s["target"], delta=0.05 * s["target"],
                                   msg=r["per_second"])
        self.assertEqual(r["requests"]["scheduled"], 4200)
        self.assertEqual(r["requests"]["dropped"], 0)
        self.assertEqual(r["requests"]["completed"], 4200)
        self.assertAlmostEqual(r["target_rate"], 700, delta=0.01)
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= 4200, 5))
        times = sorted(q["time"] for q in up.complete_requests())
        # The run's start on the upstream's clock: request i of the first two seconds (300/s) is
        # sent at i/300 s. The median of arrival - i/300, not the first arrival: on a machine
        # shared with other work the first request alone may be held up for tens of ms, which
        # would move the 1,500/s second's first requests into the 300/s second before it.
        offsets = sorted(t - i / 300.0 for i, t in enumerate(times[:600]))
        start = offsets[len(offsets) // 2]
        seen = [0] * 6
        for t in times:
            seen[max(0, min(int(t - start), 5))] += 1
        for got, want in zip(seen, expected):
            self.assertAlmostEqual(got, want, delta=0.05 * want, msg="upstream saw %s" % seen)

    def test_stages_ramp_steps_and_pause(self):
        up = self.start_upstream()
        rc, out, err = run_load("http://127.0.0.1:%d/status/200" % up.port,
                                "--stage", "1s:ramp:0..400", "--stage", "1s:constant:0",
                                "--stage", "1.5s:steps:100,300,200", "--json", timeout=15)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        # 200 (ramp) + 0 + 50 + 150 + 100: the last second is half a second long.
        self.assertEqual(r["requests"]["scheduled"], 500)
        self.assertEqual(r["requests"]["completed"], 500)
        self.assertAlmostEqual(r["elapsed_s"], 3.5, delta=0.1)
        self.assertEqual([s["target"] for s in r["per_second"]], [200, 0, 200, 100])
        achieved = [s["achieved"] for s in r["per_second"]]
        self.assertEqual(achieved[1], 0, achieved)  # nothing during the pause
        for got, want in zip(achieved, [200, 0, 200, 100]):
            self.assertAlmostEqual(got, want, delta=max(2, 0.05 * want), msg=achieved)

    def test_progress_line_only_on_a_terminal(self):
        import pty
        up = self.start_upstream()
        url = "http://127.0.0.1:%d/status/200" % up.port
        master, slave = pty.openpty()
        try:
            p = subprocess.run([FICUS_BIN, "load", url, "--rate", "100", "--duration", "3s"],
                               stdout=subprocess.PIPE, stderr=slave, timeout=30 * TIME_FACTOR)
            os.close(slave)
            slave = None
            chunks = []
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the other side is closed and drained
                    break
                if not data:
                    break
                chunks.append(data)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
        self.assertEqual(p.returncode, 0)
        tty = b"".join(chunks).decode()
        lines = [line for line in tty.split("\r") if line.startswith("[")]
        self.assertGreaterEqual(len(lines), 2, repr(tty))
        self.assertRegex(lines[1], r"^\[ *2\.\ds/3\.0s\] target 100/s  achieved (9[5-9]|10[0-5])/s  "
                                   r"p50 [0-9.]+(us|ms)  p99 [0-9.]+(us|ms)  errors 0  dropped 0")
        self.assertNotIn("target", p.stdout.decode().split("\n")[0])  # the summary is on stdout
        # Not a terminal: no progress line.
        rc, out, err = run_load(url, "--rate", "100", "--duration", "2s")
        self.assertEqual(rc, 0)
        self.assertEqual(err, "")

    def test_text_summary(self):
        up = self.start_upstream()
        rc, out, err = run_load("http://localhost:%d/status/200" % up.port, "--rate", "100",
                                "--duration", "1s")
        self.assertEqual(rc, 0, err)
        for word in ("corrected", "uncorrected", "p99.99", "200=100", "dropped", "bytes",
                     "achieved"):
            self.assertIn(word, out)

    def test_thresholds_exit_3(self):
        up = self.start_upstream()
        url = "http://127.0.0.1:%d/status/200" % up.port
        rc, out, err = run_load(url, "--rate", "100", "--duration", "1s",
                                "--threshold", "p99<1us", "--threshold", "errors<1%")
        self.assertEqual(rc, 3, out + err)
        self.assertIn("p99<1us", err)
        self.assertNotIn("errors<1%", err)
        self.assertIn("FAILED", out)
        rc, out, err = run_load(url, "--rate", "100", "--duration", "1s",
                                "--threshold", "p99<10s", "--threshold", "errors<1%",
                                "--threshold", "rate>90", "--threshold", "p999<10s")
        self.assertEqual(rc, 0, out + err)
        rc, out, err = run_load(url, "--rate", "100", "--duration", "1s",
                                "--threshold", "rate>1000")
        self.assertEqual(rc, 3, out + err)
        rc, out, err = run_load("http://127.0.0.1:%d/status/500" % up.port, "--rate", "100",
                                "--duration", "1s", "--threshold", "errors<1%", "--json")
        self.assertEqual(rc, 3, out + err)
        self.assertFalse(json.loads(out)["thresholds"][0]["ok"])

    def test_bad_input_exits_2_before_sending(self):
        up = self.start_upstream()
        url = "http://127.0.0.1:%d/" % up.port
        dead = "http://127.0.0.1:%d/" % free_port()
        cases = [
            ([url.replace("http", "https"), "--rate", "10"], "http://"),
            (["http://example.com/", "--rate", "10"], "IP address"),
            (["http://127.0.0.1:99999/", "--rate", "10"], "port"),
            ([dead, "--rate", "10"], "cannot connect"),
            ([url], "--rate"),
            ([url, "--rate", "0"], "--rate"),
            ([url, "--rate=-5"], "--rate"),
            ([url, "--rate", "10", "--duration", "0s"], "--duration"),
            ([url, "--rate", "10", "--duration", "soon"], "--duration"),
            ([url, "--rate", "10", "--connections", "0"], "--connections"),
            ([url, "--rate", "10", "--threshold", "p99<fast"], "threshold"),
            ([url, "--rate", "10", "--threshold", "latency<1s"], "unknown metric"),
            ([url, "--rate", "10", "-H", "NoColon"], "Name: value"),
            ([url, "--rate", "abc"], "rate"),
            ([url, "--profile", "constant"], "profile 'constant'"),
            ([url, "--profile", "ramp:1-5"], "ramp:FROM..TO"),
            ([url, "--profile", "steps:1,x"], "steps:R1,R2"),
            ([url, "--profile", "spike:base=1,peak=5,at=9s,for=2s", "-d", "10s"],
             "ends after the duration"),
            ([url, "--profile", "spike:base=1,peak=5"], "all four"),
            ([url, "--profile", "sine:5"], "unknown kind"),
            ([url, "--profile", "constant:0"], "sends no requests"),
            ([url, "--rate", "10", "--profile", "constant:5"], "one of"),
            ([url, "--closed", "--profile", "constant:5"], "--closed"),
            ([url, "--stage", "ramp:0..5"], "DURATION:PROFILE"),
            ([url, "--stage", "1s:ramp:0..5", "--stage", "2s:constant:x"], "stage '2s:"),
            ([url, "--stage", "1s:constant:5", "--duration", "2s"], "does not match"),
        ]
        for args, message in cases:
            t0 = time.monotonic()
            rc, out, err = run_load(*args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn(message, err, args)
            self.assertLess(time.monotonic() - t0, 5 * TIME_FACTOR, args)
        time.sleep(0.1)
        self.assertEqual(up.requests(), [])


if __name__ == "__main__":
    unittest.main()
