"""EXPLAIN on demand through the admin API and `ficus pg explain`, against a real PostgreSQL 15:
the plan of a fingerprint's sampled query with its sampled parameters (simple protocol: the
literals; extended protocol: the Bind's values), on a server connection of the pool. The token
is required and each run is audited; ANALYZE only when asked and only for a SELECT; an unknown
fingerprint is a 404; GET /pg never shows the sampled values.
"""

import json
import struct
import subprocess
import unittest

from harness import request, wait_until, FICUS_BIN
from pg_server import RawPg, APP_PASSWORD
from test_pg import PgProxyTestCase, TOKEN

AUTH = {"Authorization": "Bearer " + TOKEN}


class Explain(PgProxyTestCase):
    def fingerprint_of(self, query):
        for q in self.status()["queries"]:
            if q["query"] == query:
                return q["fingerprint"]
        self.fail("no fingerprint for %r in %s" % (query, self.status()["queries"]))

    def explain(self, fp, analyze=None, headers=AUTH):
        target = "/pg/explain?fingerprint=" + fp + ("&analyze=" + analyze if analyze else "")
        r = request(self.ficus.admin_port, "POST", target, headers=headers, timeout=30)
        return r.status, json.loads(r.body)

    def test_simple_query_plan_with_its_literals(self):
        self.psql("SELECT name FROM items WHERE id = 42 /* secret-comment */")
        fp = self.fingerprint_of("select name from items where id = ?")
        self.assertNotIn("42", json.dumps([q for q in self.status()["queries"]
                                           if q["fingerprint"] == fp]))
        status, body = self.explain(fp)
        self.assertEqual(status, 200, body)
        plan = "\n".join(body["plan"])
        self.assertIn("items_pkey", plan)
        self.assertIn("(id = 42)", plan)
        self.assertNotIn("actual time", plan)
        # ANALYZE of a SELECT runs it.
        status, body = self.explain(fp, analyze="1")
        self.assertEqual(status, 200, body)
        self.assertIn("actual time", "\n".join(body["plan"]))
        # Without the token: refused, and the audit trail has both.
        status, body = self.explain(fp, headers={})
        self.assertEqual(status, 401, body)
        def actions():
            audit = json.loads(request(self.ficus.admin_port, "GET", "/audit",
                                       headers=AUTH).body)
            return [(a["outcome"], a["detail"]) for a in audit["audit"]
                    if a["action"] == "POST /pg/explain"]

        self.assertTrue(wait_until(lambda: ("ok", "EXPLAIN ANALYZE " + fp) in actions(), 10),
                        actions())
        self.assertIn(("ok", "EXPLAIN " + fp), actions())

        # The CLI.
        r = subprocess.run([FICUS_BIN, "pg", "explain", fp, "-c", self.ficus.config_path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("items_pkey", r.stdout)
        r = subprocess.run([FICUS_BIN, "pg", "explain", "not-hex", "-c", self.ficus.config_path],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)

    def test_extended_protocol_parameters(self):
        c = RawPg(self.port, "app", APP_PASSWORD, "shop")
        self.addCleanup(c.close)
        # Parse with one int4 parameter, Bind 77 in text, binary results asked, Execute, Sync.
        c.send(b"P", b"\0SELECT name FROM items WHERE id > $1 AND name <> 'x'\0" +
               struct.pack("!HI", 1, 23))
        c.send(b"B", b"\0\0" + struct.pack("!HH", 0, 1) + struct.pack("!I", 2) + b"77" +
               struct.pack("!HH", 1, 1))
        c.send(b"E", b"\0" + struct.pack("!I", 0))
        c.send(b"S", b"")
        while True:
            t, b = c.read()
            self.assertNotEqual(t, b"E", b)
            if t == b"Z":
                break
        fp = self.fingerprint_of("select name from items where id > ? and name <> ?")
        self.assertNotIn("77", json.dumps(self.status()))
        status, body = self.explain(fp)
        self.assertEqual(status, 200, body)
        self.assertIn("(id > 77)", "\n".join(body["plan"]))

    def test_refusals(self):
        self.psql("UPDATE items SET name = name WHERE id = 3")
        fp = self.fingerprint_of("update items set name = name where id = ?")
        status, body = self.explain(fp, analyze="true")
        self.assertEqual(status, 400, body)
        self.assertIn("only a SELECT", body["detail"])
        status, body = self.explain(fp)  # a plain EXPLAIN of an UPDATE runs nothing
        self.assertEqual(status, 200, body)
        self.assertIn("Update on items", "\n".join(body["plan"]))
        status, body = self.explain("00000000000000ff")
        self.assertEqual(status, 404, body)
        status, body = self.explain("xyz")
        self.assertEqual(status, 400, body)
        status, body = self.explain(fp, analyze="maybe")
        self.assertEqual(status, 400, body)
        self.psql("SELECT 1; SELECT 2")
        fp = self.fingerprint_of("select ?; select ?")
        status, body = self.explain(fp)
        self.assertEqual(status, 400, body)
        self.assertIn("several statements", body["detail"])
        r = request(self.ficus.admin_port, "GET", "/pg/explain?fingerprint=" + fp)
        self.assertEqual(r.status, 405)


if __name__ == "__main__":
    unittest.main()
