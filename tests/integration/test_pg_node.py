"""A Node client through the PostgreSQL proxy: node-postgres (npm `pg`, pinned in
tests/pg_node/package-lock.json and installed with `npm ci` on first use) against a real
PostgreSQL 15 in transaction mode with a pool of 2: SCRAM-SHA-256, the simple and extended
protocols, a named prepared statement used by four clients at once (re-prepared on whichever
server connection they get), a transaction, and an error the connection survives.
"""

import json
import os
import subprocess
import unittest

from pg_server import APP_PASSWORD
from test_pg import PgProxyTestCase

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg_node")


class NodePostgres(PgProxyTestCase):
    mode = "transaction"
    pool_size = 2

    def test_node_postgres_through_ficus(self):
        if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                           capture_output=True, timeout=300)
        r = subprocess.run(["node", os.path.join(NODE_DIR, "check_pg.js"), str(self.port), "app",
                            APP_PASSWORD, "shop"], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["simple"], 42)
        self.assertEqual(out["extended"], "item 5")
        self.assertEqual(out["prepared"], 100)
        self.assertEqual(out["transaction"], ["changed", "item 7"])
        self.assertEqual(out["error"], "42P01")
        self.assertEqual(out["after_error"], "item 9")
        st = self.status()
        pool = [p for p in st["pools"] if p["pool"] == "shop/app"][0]
        self.assertLessEqual(pool["servers_open"], 2)
        q = {x["query"]: x for x in st["queries"]}
        self.assertGreaterEqual(q["select id, name from items where id = ?"]["calls"], 101)


if __name__ == "__main__":
    unittest.main()
