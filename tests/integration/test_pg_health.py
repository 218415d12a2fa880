"""The health checker checks each server on its own: with two databases on two real PostgreSQL
15 servers, the first one hung (its postmaster and the health check's backend stopped with
SIGSTOP, continued in cleanup), the second keeps being checked every health_check_interval, and
the hung one is marked down once its check times out, then up again when it continues.
"""

import json
import os
import signal
import time
import unittest

from harness import FicusTestCase, free_port, request, wait_until, TIME_FACTOR
from pg_server import PostgresServer, APP_PASSWORD
from test_pg import TOKEN


def cont(pid):
    try:
        os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:  # the backend exited once its client (the check) went away
        pass


def servers(f):
    st = json.loads(request(f.admin_port, "GET", "/pg").body)
    return {s["database"]: s for s in st["servers"]}


class HealthChecksAreIndependent(FicusTestCase):
    def test_a_hung_server_does_not_delay_the_others(self):
        a, b = PostgresServer(), PostgresServer()
        for s in (a, b):
            self.addCleanup(s.stop)
            s.start()
        os.environ["PG_APP_PASSWORD"] = APP_PASSWORD
        cfg = {
            "workers": 2,
            "admin": {"listen": "127.0.0.1:%d" % free_port(), "token": TOKEN},
            "listeners": [{"name": "public", "listen": "127.0.0.1:%d" % free_port()},
                          {"name": "db", "listen": "127.0.0.1:%d" % free_port(),
                           "kind": "postgres"}],
            "clusters": [{"name": "app", "endpoints": ["127.0.0.1:9"]}],
            "routes": [{"match": {"path_prefix": "/"}, "cluster": "app"}],
            "postgres": {
                # "hung" first: a checker going through the databases in turn would wait for
                # its timeout before it reached "live".
                "databases": [{"name": "hung", "primary": "127.0.0.1:%d" % a.port,
                               "dbname": "shop"},
                              {"name": "live", "primary": "127.0.0.1:%d" % b.port,
                               "dbname": "shop"}],
                "users": [{"name": "app", "password": "${PG_APP_PASSWORD}"}],
                "health_check_interval": "200ms",
                "health_check_timeout": "5s",
            },
        }
        f = self.start_ficus(cfg)
        self.assertTrue(wait_until(lambda: all(s["checked"] and s["up"]
                                               for s in servers(f).values()) and
                                   len(servers(f)) == 2, 10 * TIME_FACTOR), servers(f))
        # The check's own backend on the hung server, and its postmaster (new connections).
        pids = [int(p) for p in a.psql("shop", "SELECT pid FROM pg_stat_activity WHERE "
                                               "application_name = 'ficus health check'").split()]
        self.assertEqual(len(pids), 1, pids)
        pids.append(a.proc.pid)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            self.addCleanup(cont, pid)
        time.sleep(0.5)  # the hung server's check is now waiting on it
        before = servers(f)["live"]["checks"]
        time.sleep(3)
        after = servers(f)
        # 3 s at 200 ms: ~15 checks; one after another, "live" would get none until "hung"'s
        # 5 s timeout.
        self.assertGreaterEqual(after["live"]["checks"] - before, 8, after)
        self.assertTrue(after["live"]["up"], after)
        self.assertTrue(wait_until(lambda: not servers(f)["hung"]["up"], 10 * TIME_FACTOR),
                        servers(f))
        self.assertIn("health_check_timeout", servers(f)["hung"].get("last_error", ""))
        for pid in pids:
            cont(pid)
        self.assertTrue(wait_until(lambda: servers(f)["hung"]["up"], 15 * TIME_FACTOR),
                        servers(f))


if __name__ == "__main__":
    unittest.main()
