"""Live SLOs in ficus run: an upstream that answers 5xx burns a tiny SLO's budget; the gateway's
evaluation (every `telemetry.slo_interval`, from the telemetry store and the live counters)
pages, a webhook receiver on loopback gets the page (after a failed first delivery: retried),
GET /slo shows the budget and the burn rates computed from the requests the test sent, the
minimum-traffic guard keeps a second SLO quiet, and a reload does not announce the page again
(states carry over by objective id)."""

import json
import unittest

from harness import FicusTestCase, TIME_FACTOR, endpoint, make_config, request, wait_until
from test_slo import Receiver

TOKEN = "slo-live-admin-token-0123456789"


class SloLiveTest(FicusTestCase):
    def test_page_webhook_status_and_reload(self):
        hook = Receiver(fail_first=1)
        self.addCleanup(hook.stop)
        up = self.start_upstream("slo")
        url = "http://127.0.0.1:%d/hook?team=shop" % hook.port
        cfg = make_config(
            [{"name": "app", "endpoints": [endpoint(up.port)]}],
            [{"name": "api", "match": {"path_prefix": "/status"}, "cluster": "app"},
             {"name": "other", "cluster": "app"}],
            admin={"token": TOKEN},
            telemetry={"slo_interval": "200ms"},
            slos=[{"name": "api", "routes": ["api"], "availability": "99%", "min_requests": 5,
                   "webhooks": [url]},
                  {"name": "guarded", "routes": ["api"], "availability": "99%",
                   "min_requests": 1000}])
        f = self.start_ficus(cfg)
        # Before any traffic: evaluated, everything ok.
        ok = wait_until(lambda: request(f.admin_port, "GET", "/slo").json()["slos"], 5 * TIME_FACTOR)
        self.assertEqual([s["state"] for s in ok], ["ok", "ok"])
        self.assertEqual(hook.requests, [])

        for i in range(10):
            self.assertEqual(request(f.port, "GET", "/status/200").status, 200)
            self.assertEqual(request(f.port, "GET", "/status/503").status, 503)
        for i in range(5):  # another route: not in either SLO
            request(f.port, "GET", "/other")

        delivered = lambda: [r for r in hook.requests if r[4] == 204]
        self.assertTrue(wait_until(delivered, 10 * TIME_FACTOR), f.log_tail())
        self.assertEqual(len(hook.requests), 2)  # the 503 answer was retried
        t, path, headers, body, status = delivered()[0]
        self.assertEqual(path, "/hook?team=shop")
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        page = json.loads(body)
        self.assertEqual((page["slo"], page["sli"], page["from"], page["to"]),
                         ("api", "availability", "ok", "page"))
        self.assertEqual(page["requests"]["5m"], 20)
        self.assertEqual(page["firing"][0]["severity"], "page")

        r = request(f.admin_port, "GET", "/slo")
        self.assertEqual(r.status, 200, r)
        slos = {s["slo"]: s for s in r.json()["slos"]}
        api = slos["api"]
        self.assertEqual(api["state"], "page")
        # 10 of 20 requests failed: SLI 0.5; budget 1 % of 20 = 0.2 requests, 10 spent;
        # burn rate (10/20) / 0.01 = 50 in every window (ficus has run for less than 5 minutes).
        self.assertEqual((api["good"], api["total"]), (10, 20))
        self.assertAlmostEqual(api["sli_value"], 0.5)
        self.assertAlmostEqual(api["budget_remaining"], 1 - 10 / 0.2)
        for w in ("5m", "30m", "1h", "6h", "1d", "3d"):
            self.assertAlmostEqual(api["burn_rates"][w], 50, msg=w)
            self.assertEqual(api["requests"][w], 20, w)
        # The same burn under a guard of 1000 requests: no alert, no webhook.
        self.assertEqual(slos["guarded"]["state"], "ok")
        self.assertAlmostEqual(slos["guarded"]["burn_rates"]["5m"], 50)

        # A reload (the same SLOs, a new route): the page carries over, nothing is re-sent.
        cfg["routes"].insert(1, {"name": "extra", "match": {"path_prefix": "/extra"},
                                 "cluster": "app"})
        f.reload(cfg)
        self.assertTrue(wait_until(lambda: "reload applied" in f.log_text(), 5 * TIME_FACTOR))
        evaluated_after = lambda: request(f.admin_port, "GET", "/slo").json()["slos"][0]["at"]
        at0 = evaluated_after()
        self.assertTrue(wait_until(lambda: evaluated_after() != at0, 5 * TIME_FACTOR))
        self.assertTrue(wait_until(lambda: evaluated_after() != at0, 5 * TIME_FACTOR))
        self.assertEqual(request(f.admin_port, "GET", "/slo").json()["slos"][0]["state"], "page")
        self.assertEqual(len(hook.requests), 2, [json.loads(r[3]) for r in hook.requests])
        self.assertEqual(request(f.admin_port, "POST", "/slo").status, 405)


if __name__ == "__main__":
    unittest.main()
