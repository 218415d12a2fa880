"""Every JSON body, document and line ficus writes parses with a real JSON parser (Python's
json module, strict: valid UTF-8, no raw control characters, no NaN/Infinity) while the fields a
client or a config can influence carry hostile strings: quotes, backslashes, control bytes,
invalid UTF-8, U+2028. Covered: proxy error bodies (404, 502, 400), the admin API (error
answers, /events, /error-samples, /audit, /stats/*, /health, /slo, POST /config errors and
diff), access-log lines, OTLP export, capture files, and `ficus load --json`."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, RawConn, endpoint, free_port,
                     make_config, request, to_yaml, wait_until)
from otlp_receiver import OtlpReceiver

TOKEN = "json-output-admin-token-0123456789"

# Header values hold octets: quote, backslash, tab, obs-text (a lone Latin-1 byte, a stray
# continuation byte, a truncated sequence) and U+2028 in UTF-8. Passed through the harness as
# latin-1 text, so each character is one byte on the wire.
HOSTILE_HEADER = 'a"b\\\tc\xe9\x80\xc3 \xe2\x80\xa8 \xe2\x80\xa9 end'
# The fix's own case: a request id of a"b\ whose upstream is down.
HOSTILE_ID = 'a"b\\'
# Request targets allow fewer bytes; a backslash, percent escapes and obs-text-like bytes.
HOSTILE_PATH = "/api/x\\y%22%5C%00%E2%80%A8"
# JSON input to the admin API: any Unicode, control characters included.
HOSTILE_TEXT = 'q"b\\ \x01\x1f\x7f \u2028\u2029 \ud7ff \U0001f333 </script>'


def strict_json(data):
    """Parses bytes as JSON as strictly as Python can: UTF-8 decode errors, raw control
    characters in strings and the non-JSON constants NaN/Infinity are all failures."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")  # raises on invalid UTF-8

    def no_constants(name):
        raise ValueError("not JSON: %s" % name)

    return json.loads(data, parse_constant=no_constants)


class JsonOutputTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("json")
        cls.rx = OtlpReceiver().start()
        cls.addClassCleanup(cls.rx.stop)
        cls.dir = tempfile.mkdtemp(prefix="ficus-json-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.log_path = os.path.join(cls.dir, "access.log")
        cls.capture_path = os.path.join(cls.dir, "capture.jsonl")
        clusters = [{"name": "app", "endpoints": [endpoint(cls.up.port)]},
                    {"name": "dead", "endpoints": [endpoint(free_port())],
                     "connect_timeout": "1s"}]
        routes = [{"name": "api", "match": {"path_prefix": "/api"}, "cluster": "app",
                   "record": {"path": cls.capture_path, "redact_headers": []}},
                  {"name": "broken", "match": {"path_prefix": "/broken"}, "cluster": "dead"}]
        cls.config = make_config(
            clusters, routes, admin={"token": TOKEN},
            access_log={"path": cls.log_path},
            tracing={"endpoint": "http://127.0.0.1:%d/v1/traces" % cls.rx.port, "sample": 1.0,
                     "flush_interval": "100ms"},
            slos=[{"name": "api-availability", "routes": ["api"], "availability": "99%"}])
        cls.ficus = cls.start_ficus_for_class(cls.config)

    def admin(self, method, path, body=None, token=TOKEN):
        headers = []
        if token is not None:
            headers.append(("Authorization", "Bearer " + token))
        if isinstance(body, (dict, list)):
            headers.append(("Content-Type", "application/json"))
            body = json.dumps(body)
        return request(self.ficus.admin_port, method, path, headers=headers, body=body)

    def hostile_requests(self):
        """Sends the requests whose strings end up in the documents; returns their responses."""
        headers = [("X-Request-Id", HOSTILE_ID), ("User-Agent", HOSTILE_HEADER),
                   ("X-Hostile", HOSTILE_HEADER)]
        out = []
        out.append(request(self.ficus.port, "GET", "/broken/x", headers=headers))
        out.append(request(self.ficus.port, "GET", "/api/status/503", headers=[
            ("X-Request-Id", HOSTILE_HEADER), ("User-Agent", HOSTILE_HEADER)]))
        out.append(request(self.ficus.port, "GET", HOSTILE_PATH, headers=[
            ("X-Request-Id", HOSTILE_HEADER), ("User-Agent", HOSTILE_HEADER)]))
        out.append(request(self.ficus.port, "GET", "/nowhere\\", headers=headers))
        out.append(request(self.ficus.port, "GET", "/api/echo", headers=headers,
                           host='h"\\\xe9.example'))
        return out

    def test_502_for_a_hostile_request_id_is_valid_json(self):
        r = request(self.ficus.port, "GET", "/broken/x", headers=[("X-Request-Id", HOSTILE_ID)])
        self.assertEqual(r.status, 502, r)
        body = strict_json(r.body)
        self.assertEqual(body["request_id"], HOSTILE_ID)
        self.assertEqual(body["error"], "connect_failed")
        self.assertEqual(r.header("x-request-id"), HOSTILE_ID)

    def test_error_bodies(self):
        for r in self.hostile_requests():
            if r.status >= 400 and r.header("content-type") == "application/json":
                body = strict_json(r.body)
                self.assertIn("request_id", body)
        r = request(self.ficus.port, "GET", "/broken/x", headers=[("X-Request-Id", HOSTILE_HEADER)])
        body = strict_json(r.body)
        # Each byte that is not UTF-8 became U+FFFD; U+2028 stays U+2028 (escaped on the wire).
        self.assertEqual(body["request_id"],
                         'a"b\\\tc\ufffd\ufffd\ufffd \u2028 \u2029 end')
        self.assertIn(b"\\u2028", r.body)

    def test_admin_api_documents(self):
        self.hostile_requests()
        r = self.admin("POST", "/events", {"service": HOSTILE_TEXT, "version": HOSTILE_TEXT,
                                           "note": HOSTILE_TEXT})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(strict_json(r.body)["note"], HOSTILE_TEXT)
        events = strict_json(self.admin("GET", "/events").body)["events"]
        self.assertIn(HOSTILE_TEXT, [e.get("note") for e in events])
        # Error answers quote what the client sent.
        for method, path, body in [("GET", "/nope\\\"", None), ("DELETE", "/events", None),
                                   ("POST", "/events", "{\"service\": \"\\u0000"),
                                   ("POST", "/synthetic-key", {"key": HOSTILE_TEXT}),
                                   ("GET", "/events?limit=" + "%22%5C", None)]:
            r = self.admin(method, path, body)
            self.assertGreaterEqual(r.status, 400, (method, path, r))
            if r.header("content-type") == "application/json":
                strict_json(r.body)
        r = self.admin("POST", "/events", {"service": "x"}, token='bad"\\')
        self.assertEqual(r.status, 401)
        strict_json(r.body)

        def samples():
            resp = self.admin("GET", "/error-samples?limit=1000")
            self.assertEqual(resp.status, 200, resp)
            return strict_json(resp.body)["error_samples"]

        got = wait_until(lambda: len(samples()) >= 2, 10 * TIME_FACTOR)
        self.assertTrue(got)
        text = json.dumps(samples())
        self.assertIn("\\ufffd", text)  # the hostile header's invalid bytes, replaced
        for path in ["/audit", "/stats/routes", "/stats/clusters", "/stats/endpoints",
                     "/health", "/slo", "/live", "/ready"]:
            r = self.admin("GET", path)
            self.assertEqual(r.status, 200, (path, r))
            strict_json(r.body)

    def test_post_config_errors_and_diff(self):
        bad = to_yaml(self.config).replace("name: broken", 'name: "br\\"o\\\\ken\\u2028"')
        bad += '\nbogus_key\xe9: "x\\u0001"\n'
        r = self.admin("POST", "/config", bad.encode("latin-1"))
        self.assertEqual(r.status, 400, r)
        errors = strict_json(r.body)["errors"]
        self.assertTrue(errors)
        r = self.admin("POST", "/config", b"\xff\xfe: [\n")
        self.assertEqual(r.status, 400, r)
        strict_json(r.body)
        r = self.admin("POST", "/config", to_yaml(self.config).encode())
        self.assertEqual(r.status, 200, r)
        diff = strict_json(r.body)
        self.assertTrue(diff["applied"])
        self.assertFalse(diff["settings_changed"])

    def test_access_log_lines(self):
        self.hostile_requests()
        send = RawConn(self.ficus.port)
        send.send(b"GET /api\x01 HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\"\\\r\n\r\n")
        send.close()

        def lines():
            with open(self.log_path, "rb") as f:
                return f.read().splitlines()

        wait_until(lambda: len(lines()) >= 6, 10 * TIME_FACTOR)
        parsed = [strict_json(line) for line in lines()]
        ids = [p.get("request_id") for p in parsed]
        self.assertIn(HOSTILE_ID, ids)
        agents = [p.get("user_agent") for p in parsed]
        self.assertIn('a"b\\\tc\ufffd\ufffd\ufffd \u2028 \u2029 end', agents)

    def test_otlp_export(self):
        self.hostile_requests()
        wait_until(lambda: len(self.rx.requests) >= 1, 10 * TIME_FACTOR)
        # The receiver parsed each export with json.loads; check the bytes strictly as well.
        with self.rx.lock:
            bodies = [r["body"] for r in self.rx.requests]
        self.assertTrue(bodies)
        for b in bodies:
            strict_json(json.dumps(b))
        text = json.dumps(bodies)
        self.assertIn('a\\"b\\\\', text)

    def test_capture_file(self):
        self.hostile_requests()
        wait_until(lambda: os.path.exists(self.capture_path)
                   and os.path.getsize(self.capture_path) > 0, 10 * TIME_FACTOR)
        with open(self.capture_path, "rb") as f:
            for line in f.read().splitlines():
                strict_json(line)

    def test_load_report(self):
        url = "http://127.0.0.1:%d/api/echo" % self.ficus.port
        p = subprocess.run([FICUS_BIN, "load", url, "--rate", "20", "--duration", "1s", "--json",
                            "--threshold", "p99<10s", "--threshold", "errors<100%"],
                           capture_output=True, timeout=60 * TIME_FACTOR)
        self.assertEqual(p.returncode, 0, p.stderr)
        report = strict_json(p.stdout)
        self.assertEqual(report["thresholds"][0]["threshold"], "p99<10s")


if __name__ == "__main__":
    unittest.main()
