"""`ficus load FILE.yaml`, `--html`, route `record:` in the gateway and `ficus replay`.

- a scenario's variables (random integer, list, CSV column, counter, uuid) reach the upstream
  in path, headers and body, its weights hold, its settings and thresholds apply, and the
  command line overrides them;
- a bad scenario exits 2 with FILE:LINE:COL: field: reason before anything is sent;
- --html writes a well-formed self-contained page with the two charts and the summary;
- the gateway records a route's requests (redacted, bodies cut at max_body_bytes, which counts
  a chunked body's payload, not its framing) and a
  replay at 2x sends the same requests in half the recorded time (+-5 %);
- replay --filter, --max-wait, --loop, --host, and its bad input; --loop without --duration
  runs until SIGINT/SIGTERM and then prints the summary.
"""

import html.parser
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, RawConn, endpoint, make_config,
                     wait_until)


def run(*args, timeout=60):
    p = subprocess.run([FICUS_BIN, *args], capture_output=True, text=True,
                       timeout=timeout * TIME_FACTOR)
    return p.returncode, p.stdout, p.stderr


class Scenario(FicusTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ficus-scenario-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_variables_weights_and_settings(self):
        up = self.start_upstream()
        self.write("skus.csv", "sku,name\nA-1,apple\nB-2,\"berry, blue\"\nC-3,cherry\n")
        path = self.write("s.yaml", """\
target: http://127.0.0.1:%d
rate: 300
duration: 1s
threads: 2
connections: 8
seed: 11
variables:
  id: {random_int: [1, 5]}
  user: {pick: [ann, bob, cy]}
  sku: {csv: skus.csv, column: sku}
  n: {counter: 1000}
  rid: uuid
requests:
  - name: get
    weight: 3
    path: /items/{{id}}?n={{n}}
    headers: {X-User: "{{user}}", X-Rid: "{{ rid }}"}
  - name: post
    method: POST
    path: /cart/{{sku}}
    headers: {Content-Type: application/json}
    body: '{"sku":"{{sku}}","n":{{n}}}'
""" % up.port)
        rc, out, err = run("load", path, "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["requests"]["completed"], 300, r)
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= 300, 5))
        reqs = up.complete_requests()
        self.assertEqual(len(reqs), 300)
        gets = [q for q in reqs if q["method"] == "GET"]
        posts = [q for q in reqs if q["method"] == "POST"]
        self.assertEqual(len(gets) + len(posts), 300)
        self.assertTrue(195 <= len(gets) <= 255, len(gets))  # weight 3:1 -> 225 expected
        counters = []
        for q in gets:
            m = re.fullmatch(r"/items/([1-5])\?n=(\d+)", q["target"])
            self.assertIsNotNone(m, q["target"])
            counters.append(int(m.group(2)))
            h = dict(q["headers"])
            self.assertIn(h["X-User"], ("ann", "bob", "cy"))
            self.assertRegex(h["X-Rid"], r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}"
                                         r"-[0-9a-f]{12}$")
        self.assertEqual(len({dict(q["headers"])["X-Rid"] for q in gets}), len(gets))
        self.assertEqual({int(q["target"].split("=")[1]) for q in gets}.__len__(), len(gets))
        for q in posts:
            sku = q["target"].rsplit("/", 1)[1]
            self.assertIn(sku, ("A-1", "B-2", "C-3"))
            self.assertGreater(q["body_length"], len('{"sku":"A-1","n":1000}') - 1)
        # One counter over both threads: every value from 1000 on, once (posts use some).
        self.assertEqual(len(set(counters)), len(counters))
        self.assertTrue(all(1000 <= c < 1300 for c in counters), counters)
        # The command line wins over the file; thresholds come from both.
        rc, out, err = run("load", path, "--rate", "50", "--duration", "1s", "--json",
                           "--threshold", "rate>1000")
        self.assertEqual(rc, 3, err)
        self.assertEqual(json.loads(out)["requests"]["sent"], 50)
        with open(path, "a") as f:
            f.write("thresholds: ['p99<1us']\n")
        rc, out, err = run("load", path, "--rate", "20", "--duration", "1s")
        self.assertEqual(rc, 3, out + err)
        self.assertIn("threshold failed: p99<1us", err)

    def test_bad_scenario_exits_2_before_sending(self):
        up = self.start_upstream()
        path = self.write("bad.yaml", """\
target: http://127.0.0.1:%d
rate: 10
variables:
  id: {random_int: [1, 5]}
requests:
  - path: /a/{{idd}}
  - path: /b
    method: "GE T"
""" % up.port)
        t0 = time.monotonic()
        rc, out, err = run("load", path)
        self.assertEqual(rc, 2, out + err)
        self.assertIn("%s:6:16: requests[0].path: unknown variable 'idd'" % path, err)
        self.assertIn("%s:8:13: requests[1].method: 'GE T' is not an HTTP method token" % path,
                      err)
        self.assertLess(time.monotonic() - t0, 5)
        rc, out, err = run("load", os.path.join(self.dir, "missing.yaml"))
        self.assertEqual(rc, 2)
        self.assertIn("cannot read the scenario file", err)
        no_target = self.write("nt.yaml", "rate: 5\nrequests: [{path: /}]\n")
        rc, out, err = run("load", no_target)
        self.assertEqual(rc, 2)
        self.assertIn("no target", err)
        rc, out, err = run("load", no_target, "-H", "X: y",
                           "--target", "http://127.0.0.1:%d" % up.port)
        self.assertEqual(rc, 2)
        self.assertIn("a scenario sets them per request", err)
        time.sleep(0.1)
        self.assertEqual(up.requests(), [])

    def test_html_report(self):
        up = self.start_upstream()
        page = os.path.join(self.dir, "report.html")
        rc, out, err = run("load", "http://127.0.0.1:%d/status/200" % up.port, "--profile",
                           "ramp:50..150", "--duration", "2s", "--html", page,
                           "--threshold", "p99<10s")
        self.assertEqual(rc, 0, err)
        with open(page) as f:
            text = f.read()
        self.assertTrue(text.startswith("<!DOCTYPE html>"))
        self.assertNotIn("<script", text)
        self.assertNotRegex(text, r"(src|href)=\"https?:")

        class Checker(html.parser.HTMLParser):
            VOID = {"meta", "br", "img", "line", "rect", "polyline", "path", "circle", "hr",
                    "input", "link"}

            def __init__(self):
                super().__init__()
                self.stack, self.tags, self.errors, self.series = [], {}, [], []
                self.tables = []

            def handle_starttag(self, tag, attrs):
                self.tags[tag] = self.tags.get(tag, 0) + 1
                a = dict(attrs)
                if tag == "polyline":
                    self.series.append((a.get("data-name"), a.get("points", "")))
                if tag == "table":
                    self.tables.append(a.get("id"))
                if tag not in self.VOID:
                    self.stack.append(tag)

            def handle_startendtag(self, tag, attrs):
                self.handle_starttag(tag, attrs)
                if tag not in self.VOID:
                    self.stack.pop()

            def handle_endtag(self, tag):
                if tag in self.VOID:
                    return
                if not self.stack or self.stack[-1] != tag:
                    self.errors.append("unexpected </%s> (open: %s)" % (tag, self.stack[-3:]))
                else:
                    self.stack.pop()

        c = Checker()
        c.feed(text)
        c.close()
        self.assertEqual(c.errors, [])
        self.assertEqual(c.stack, [])
        self.assertEqual(c.tags.get("svg"), 2)
        names = [n for n, _ in c.series]
        self.assertEqual(names, ["p50", "p99", "target", "achieved (sent)", "errors"])
        for name, points in c.series:
            self.assertEqual(len(points.split()), 2, name)  # one point per second
        self.assertEqual(c.tables, ["summary", "latency-table", "status", "thresholds"])
        self.assertIn("200", text)
        self.assertIn("p99&lt;10s", text)


class RecordReplay(FicusTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ficus-capture-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def record(self, up, seconds_profile=("ramp:20..80", "2s")):
        """Sends a scenario through a recording gateway; returns (capture path, sent)."""
        cap = os.path.join(self.dir, "cap.jsonl")
        cfg = make_config({"app": [endpoint(up.port)]},
                          [{"name": "api", "match": {"path_prefix": "/"}, "cluster": "app",
                            "record": {"path": cap, "max_body_bytes": 16}}], workers=2)
        f = self.start_ficus(cfg)
        scenario = os.path.join(self.dir, "s.yaml")
        with open(scenario, "w") as fh:
            fh.write("""\
variables:
  n: counter
requests:
  - path: /r/{{n}}
    weight: 2
    headers: {Authorization: Bearer s3cret, X-Custom: "v{{n}}"}
  - method: POST
    path: /p/{{n}}
    body: 'body number {{n}} with some padding'
""")
        rc, out, err = run("load", scenario, "--target", "http://127.0.0.1:%d" % f.port,
                           "--profile", seconds_profile[0], "--duration", seconds_profile[1],
                           "--json")
        self.assertEqual(rc, 0, err)
        sent = json.loads(out)["requests"]["completed"]

        def lines():
            with open(cap) as fh:
                return fh.read().splitlines()
        self.assertTrue(wait_until(lambda: len(lines()) >= sent, 5), (len(lines()), sent))
        return cap, sent

    def test_record_then_replay_at_2x(self):
        up = self.start_upstream()
        cap, sent = self.record(up)
        self.assertEqual(sent, 100)
        with open(cap) as fh:
            text = fh.read()
        self.assertNotIn("s3cret", text)
        recs = [json.loads(line) for line in text.splitlines()]
        self.assertEqual(len(recs), sent)
        for r in recs:
            self.assertEqual(r["route"], "api")
            h = dict(map(tuple, r["headers"]))
            if r["method"] == "GET":
                self.assertEqual(h["Authorization"], "REDACTED")
                self.assertNotIn("body", r)
            else:
                self.assertEqual(len(r["body"]), 16)  # max_body_bytes
                self.assertTrue(r["truncated"])
                self.assertTrue(r["body"].startswith("body number "))
                self.assertGreater(r["body_bytes"], 16)
        times = sorted(r["t"] for r in recs)
        recorded_span = times[-1] - times[0]
        self.assertAlmostEqual(recorded_span, 2.0, delta=0.1)
        expected = sorted((r["method"], r["target"], len(r.get("body", ""))) for r in recs)

        up.reset()
        t0 = time.monotonic()
        rc, out, err = run("replay", cap, "--target", "http://127.0.0.1:%d" % up.port,
                           "--speed", "2x", "--json")
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, err)
        self.assertIn("were cut at record.max_body_bytes", err)
        r = json.loads(out)
        self.assertEqual(r["requests"]["completed"], sent, r)
        self.assertEqual(r["requests"]["dropped"], 0, r)
        self.assertLess(took, recorded_span / 2 + 3)
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= sent, 5))
        got = up.complete_requests()
        self.assertEqual(sorted((q["method"], q["target"], q["body_length"]) for q in got),
                         expected)
        for q in got:
            h = dict(q["headers"])
            if q["method"] == "GET":
                self.assertEqual(h["X-Custom"], "v" + q["target"].rsplit("/", 1)[1])
        seen = sorted(q["time"] for q in got)
        replay_span = seen[-1] - seen[0]
        self.assertAlmostEqual(replay_span, recorded_span / 2, delta=0.05 * recorded_span / 2,
                               msg="replay took %.3fs for %.3fs recorded" % (replay_span,
                                                                            recorded_span))
        # The elapsed time the summary reports is the replay's too.
        self.assertAlmostEqual(r["elapsed_s"], recorded_span / 2, delta=0.05)

    def test_record_chunked_body_counts_payload_bytes(self):
        # max_body_bytes counts the body, not the chunk framing: a 16-byte budget keeps 16
        # payload bytes of a chunked body however it is split, and body_bytes is the payload.
        up = self.start_upstream()
        cap = os.path.join(self.dir, "chunked.jsonl")
        cfg = make_config({"app": [endpoint(up.port)]},
                          [{"name": "api", "match": {"path_prefix": "/"}, "cluster": "app",
                            "record": {"path": cap, "max_body_bytes": 16}}])
        f = self.start_ficus(cfg)
        chunks = [b"0123456789", b"abcdefghij", b"KLMNOPQRST"]  # 30 payload bytes
        wire = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        small = [b"small", b"body"]
        with RawConn(f.port) as c:
            c.send(b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(wire), 7):  # in pieces that cut the framing anywhere
                c.send(wire[i:i + 7])
                time.sleep(0.01)
            self.assertEqual(c.read_response("POST").status, 200)
            c.send(b"POST /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in small) + b"0\r\n\r\n")
            self.assertEqual(c.read_response("POST").status, 200)

        def lines():
            with open(cap) as fh:
                return [json.loads(line) for line in fh.read().splitlines()]
        self.assertTrue(wait_until(lambda: len(lines()) >= 2, 5))
        recs = {r["target"]: r for r in lines()}
        self.assertEqual(recs["/c"]["body"], "0123456789abcdef")
        self.assertEqual(recs["/c"]["body_bytes"], 30)
        self.assertTrue(recs["/c"]["truncated"])
        # 9 payload bytes in 24 wire bytes: whole, not cut at 16 wire bytes.
        self.assertEqual(recs["/d"]["body"], "smallbody")
        self.assertEqual(recs["/d"]["body_bytes"], 9)
        self.assertFalse(recs["/d"]["truncated"])

    def test_replay_filter_max_wait_loop_and_bad_input(self):
        up = self.start_upstream()
        cap, sent = self.record(up, ("constant:40", "1s"))
        target = "http://127.0.0.1:%d" % up.port
        with open(cap) as fh:
            posts = sum(1 for line in fh if json.loads(line)["method"] == "POST")
        self.assertGreater(posts, 0)
        up.reset()
        rc, out, err = run("replay", cap, "--target", target, "--filter", "method=POST",
                           "--speed", "10x", "--json")
        self.assertEqual(rc, 0, err)
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= posts, 5))
        got = up.complete_requests()
        self.assertEqual(len(got), posts)
        self.assertTrue(all(q["method"] == "POST" for q in got), got)
        self.assertEqual(json.loads(out)["requests"]["completed"], len(got))
        # --max-wait 1ms: 40 requests 25 ms apart go out in ~40 ms.
        rc, out, err = run("replay", cap, "--target", target, "--max-wait", "1ms", "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual(r["requests"]["completed"], sent)
        self.assertLess(r["elapsed_s"], 0.2)
        # --loop until --duration: 40 per second for 2 s.
        rc, out, err = run("replay", cap, "--target", target, "--loop", "--duration", "2s",
                           "--json")
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertAlmostEqual(r["requests"]["completed"], 80, delta=3)
        for args, message in [
            ([cap, "--target", target, "--speed", "0x"], "--speed"),
            ([cap, "--target", target, "--duration", "1s"], "--duration is for --loop"),
            ([cap, "--target", target, "--host", "a b"], "--host"),
            ([cap, "--target", target, "--filter", "colour=red"], "--filter"),
            ([cap, "--target", target, "--filter", "method=PUT"], "no request matches"),
            ([cap, "--target", target, "--rate", "5"], ""),
            ([os.path.join(self.dir, "none.jsonl"), "--target", target], "cannot read"),
            ([cap], "--target"),
        ]:
            rc, out, err = run("replay", *args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertIn(message, err, args)

    def test_replay_host_override_and_loop_until_signal(self):
        up = self.start_upstream()
        cap, sent = self.record(up, ("constant:40", "1s"))
        target = "http://127.0.0.1:%d" % up.port
        # --host replaces the captured Host (in place, once) in every request.
        up.reset()
        rc, out, err = run("replay", cap, "--target", target, "--host", "shop.example:8443",
                           "--speed", "10x", "--json")
        self.assertEqual(rc, 0, err)
        self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= sent, 5))
        for q in up.complete_requests():
            hosts = [v for k, v in q["headers"] if k.lower() == "host"]
            self.assertEqual(hosts, ["shop.example:8443"], q["headers"])
        # --loop without --duration: until a signal, then the summary of what was sent.
        for sig in (signal.SIGINT, signal.SIGTERM):
            up.reset()
            p = subprocess.Popen([FICUS_BIN, "replay", cap, "--target", target, "--loop",
                                  "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            try:
                # Past the first pass (40 requests in 1 s), so it is looping.
                self.assertTrue(wait_until(lambda: len(up.complete_requests()) >= 50,
                                           5 * TIME_FACTOR), "the replay sent too little")
                t0 = time.monotonic()
                p.send_signal(sig)
                out, err = p.communicate(timeout=10 * TIME_FACTOR)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            self.assertLess(time.monotonic() - t0, 2 * TIME_FACTOR)
            self.assertEqual(p.returncode, 0, err)
            r = json.loads(out)
            q = r["requests"]
            self.assertGreaterEqual(q["completed"], 50, q)
            self.assertEqual(q["sent"], q["completed"], q)
            self.assertEqual(q["dropped"], 0, q)
            self.assertTrue(up.wait_for(lambda u: len(u.complete_requests()) >= q["sent"], 5))
            self.assertEqual(len(up.complete_requests()), q["sent"])
            # The summary covers the time actually run, not an open-ended duration.
            self.assertLess(r["elapsed_s"], 5 * TIME_FACTOR)
            self.assertAlmostEqual(r["achieved_rate"], 40, delta=8)
            self.assertLess(len(r["per_second"]), 6 * TIME_FACTOR)


if __name__ == "__main__":
    unittest.main()
