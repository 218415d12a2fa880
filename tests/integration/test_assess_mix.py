"""A route assessed from its `record:` capture gets the recorded mix: every distinct request the
users sent (query strings, methods, bodies) that the access log saw answered 2xx/3xx, weighted
by how often each came; not only the most frequent one, and never a path that answered 404."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
from collections import Counter

from harness import (FICUS_BIN, TIME_FACTOR, FicusTestCase, endpoint, make_config, request,
                     wait_until)

TOKEN = "assess-mix-admin-token-0123456789ab"


class AssessMixTest(FicusTestCase):
    def test_the_recorded_mix_is_the_step_load(self):
        up = self.start_upstream("mix")
        tmp = tempfile.mkdtemp(prefix="ficus-assess-mix-")
        self.addCleanup(shutil.rmtree, tmp, True)
        capture = os.path.join(tmp, "all.jsonl")
        log = os.path.join(tmp, "access.log")
        routes = [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app",
                   "record": {"path": capture}}]
        cfg = make_config({"app": [endpoint(up.port)]}, routes, admin={"token": TOKEN})
        cfg["data_dir"] = "data"
        cfg["access_log"] = {"path": log}
        f = self.start_ficus(cfg)
        users = ([("GET", "/bytes?n=10")] * 6 + [("GET", "/bytes?n=20")] * 3 +
                 [("POST", "/upload?kind=note")] + [("GET", "/status/404")] * 8)
        for method, target in users:
            body = b'{"note": "hi"}' if method == "POST" else None
            headers = [("Content-Type", "application/json")] if body else None
            request(f.port, method, target, headers=headers, body=body)

        def lines(path):
            if not os.path.exists(path):
                return 0
            with open(path) as fh:
                return fh.read().count("\n")
        self.assertTrue(wait_until(lambda: lines(capture) >= len(users) and
                                   lines(log) >= len(users), 10 * TIME_FACTOR))
        up.reset()
        a = subprocess.run([FICUS_BIN, "assess", "-c", f.config_path, "--routes", "all",
                            "--max-rate", "60", "--steps", "1", "--max-duration", "2s", "--json"],
                           capture_output=True, text=True, cwd=f.workdir,
                           timeout=60 * TIME_FACTOR)
        self.assertEqual(a.returncode, 0, a.stdout + a.stderr)
        result = json.loads(a.stdout)[0]
        self.assertEqual(result["recorded_requests"], 3, result)
        sent = Counter((r["method"], r["target"]) for r in up.requests())
        self.assertEqual(set(sent), {("GET", "/bytes?n=10"), ("GET", "/bytes?n=20"),
                                     ("POST", "/upload?kind=note")}, sent)
        # Weighted 6:3:1 (about 120 requests: loose bounds).
        self.assertGreater(sent[("GET", "/bytes?n=10")], sent[("GET", "/bytes?n=20")])
        self.assertGreater(sent[("GET", "/bytes?n=20")], sent[("POST", "/upload?kind=note")])


if __name__ == "__main__":
    unittest.main()
