"""Credentials never leave ficus (issue 15): API keys in their header and in a query parameter,
Authorization values and JWTs (in a field, in the path, in a body) are sent through a real
ficus that records the route (`record:`), writes the access log, exports traces to a real
OTLP receiver and keeps error samples; then every one of those outputs, and ficus's own log,
is searched for the secrets. The redaction markers are asserted too, so an output that wrote
nothing cannot pass."""

import json
import os
import shutil
import tempfile
import unittest

from harness import TIME_FACTOR, FicusTestCase, endpoint, make_config, request, wait_until
from jwks_server import Key, claims
from otlp_receiver import OtlpReceiver

API_KEY = "SECRETKEY-0001-abcdef"
OPAQUE = "OPAQUE-BEARER-987654"


class RedactionTest(FicusTestCase):
    def test_no_output_keeps_a_credential(self):
        up = self.start_upstream("redact")
        rx = OtlpReceiver().start()
        self.addCleanup(rx.stop)
        d = tempfile.mkdtemp(prefix="ficus-redact-")
        self.addCleanup(shutil.rmtree, d, True)
        keys = os.path.join(d, "keys.txt")
        with open(keys, "w") as f:
            f.write("alice %s\n" % API_KEY)
        cap = os.path.join(d, "cap.jsonl")
        log = os.path.join(d, "access.log")
        routes = [{"name": "keys", "match": {"path_prefix": "/keys"}, "cluster": "app",
                   "auth": {"api_keys": {"file": keys, "query": "api_key"}},
                   "record": {"path": cap, "max_body_bytes": 4096}}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, workers=2,
                          access_log={"path": log},
                          tracing={"endpoint": "http://127.0.0.1:%d/v1/traces" % rx.port,
                                   "sample": 1.0, "flush_interval": "100ms"})
        f = self.start_ficus(cfg)
        jwt = Key("ES256", "k").sign(claims("alice"))
        signature = jwt.rsplit(".", 1)[1]
        sent = [
            ("GET", "/keys/q?api_key=%s&x=1" % API_KEY, {}, None),
            ("GET", "/keys/h", {"X-Api-Key": API_KEY, "Authorization": "Bearer " + OPAQUE,
                                "X-Debug": "token " + jwt}, None),
            ("GET", "/keys/reset/" + jwt, {"X-Api-Key": API_KEY}, None),
            ("POST", "/keys/body", {"X-Api-Key": API_KEY, "Content-Type": "application/json"},
             json.dumps({"id_token": jwt}).encode()),
            ("GET", "/keys/status/503?api_key=" + API_KEY, {}, None),
        ]
        for method, path, headers, body in sent:
            r = request(f.port, method, path, headers, body=body)
            self.assertIn(r.status, (200, 503), (path, r.status))

        def lines(path):
            if not os.path.exists(path):
                return []
            with open(path) as fh:
                return [line for line in fh.read().splitlines() if line]

        self.assertTrue(wait_until(lambda: len(lines(cap)) >= len(sent), 5 * TIME_FACTOR))
        self.assertTrue(wait_until(lambda: len(lines(log)) >= len(sent), 5 * TIME_FACTOR))
        self.assertTrue(wait_until(
            lambda: len([s for s in rx.spans() if s.get("kind") == 2]) >= len(sent),
            10 * TIME_FACTOR))
        samples = wait_until(
            lambda: request(f.admin_port, "GET", "/error-samples?route=keys").json()
            ["error_samples"], 5 * TIME_FACTOR)
        self.assertTrue(samples)
        outputs = {
            "capture": "\n".join(lines(cap)),
            "access log": "\n".join(lines(log)),
            "traces": json.dumps(rx.spans()),
            "error samples": json.dumps(samples),
            "ficus log": f.log_text(),
        }
        for name, text in outputs.items():
            for secret in (API_KEY, OPAQUE, signature):
                self.assertNotIn(secret, text, "%s keeps a credential" % name)
        capture = outputs["capture"]
        self.assertIn("api_key=<redacted>&x=1", capture)
        self.assertIn('["X-Api-Key","REDACTED"]', capture)
        self.assertIn('["Authorization","REDACTED"]', capture)
        self.assertIn('["X-Debug","token <redacted-jwt>"]', capture)
        self.assertIn("/keys/reset/<redacted-jwt>", capture)
        self.assertIn('id_token\\": \\"<redacted-jwt>', capture)
        self.assertIn('"path":"/keys/reset/<redacted-jwt>"', outputs["access log"])
        self.assertIn('"consumer":"alice"', outputs["access log"])
        self.assertIn("/keys/reset/<redacted-jwt>", outputs["traces"])
        self.assertIn("api_key=<redacted>", outputs["error samples"])
        # The upstream still got the credentials: redaction is of copies only.
        got = [r["target"] for r in up.requests()]
        self.assertIn("/keys/reset/" + jwt, got)


if __name__ == "__main__":
    unittest.main()
