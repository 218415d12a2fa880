"""Job callbacks (issue 17): when an offloaded job finishes, ficus POSTs its result to the
queue's callback URL (or the one the request named, from an allowed origin), signed as Standard
Webhooks specify; a receiver that fails gets retries with the same webhook-id; a callback still
to send survives `kill -9` of ficus. The receiver here checks every signature with the secret
(HMAC-SHA256 over "id.timestamp.body"), as a Standard Webhooks library does.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import signal
import tempfile
import threading
import time

from harness import TIME_FACTOR, Ficus, FicusTestCase, request, wait_until
from test_offload import App, offload, offload_config
from loopback_server import LoopbackHTTPServer

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
KEY = b"0123456789abcdef0123456789abcdef"


class Receiver:
    """Records every callback POST: (path, headers, body, signature valid); answers `status`
    (a list: one status per call, the last repeated)."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        self.calls = []
        rx = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                mid = self.headers.get("webhook-id", "")
                ts = self.headers.get("webhook-timestamp", "")
                sig = self.headers.get("webhook-signature", "")
                mac = hmac.new(KEY, ("%s.%s." % (mid, ts)).encode() + body, hashlib.sha256)
                want = "v1," + base64.b64encode(mac.digest()).decode()
                valid = hmac.compare_digest(sig, want) and abs(time.time() - int(ts or 0)) < 300
                with rx.lock:
                    rx.calls.append((self.path, mid, body, valid))
                    status = rx.statuses[min(len(rx.calls), len(rx.statuses)) - 1]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self):
        with self.lock:
            return list(self.calls)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CallbackTest(FicusTestCase):
    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="ficus-callback-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        os.environ["FICUS_TEST_WEBHOOK_SECRET"] = SECRET
        self.app = App()
        self.addCleanup(self.app.stop)

    def receiver(self, statuses=(200,)):
        r = Receiver(statuses)
        self.addCleanup(r.stop)
        return r

    def config(self, rx, **callback):
        cb = {"url": "http://127.0.0.1:%d/hooks" % rx.port,
              "secret": "${FICUS_TEST_WEBHOOK_SECRET}", "timeout": "2s"}
        cb.update(callback)
        return offload_config(self.app.port, os.path.join(self.dir, "data"),
                              queue={"callback": cb})

    def test_a_finished_job_is_posted_signed_and_retried_with_the_same_id(self):
        rx = self.receiver(statuses=(503, 500, 200))
        f = self.start_ficus(self.config(rx))
        r = offload(f.port, b"hello")
        self.assertEqual(r.status, 202, r)
        job = r.header("location").rsplit("/", 1)[1]
        self.assertTrue(wait_until(lambda: len(rx.snapshot()) >= 3, 15 * TIME_FACTOR),
                        rx.snapshot())
        time.sleep(0.3)
        calls = rx.snapshot()
        self.assertEqual(len(calls), 3, calls)  # two failures, then delivered: no more
        for path, mid, body, valid in calls:
            self.assertEqual(path, "/hooks")
            self.assertTrue(valid, "bad signature on %s" % mid)
            self.assertEqual(mid, calls[0][1])  # one message, retried
        doc = json.loads(calls[-1][2])
        self.assertEqual(doc["type"], "job.succeeded")
        self.assertEqual(doc["data"]["id"], job)
        self.assertEqual(doc["data"]["response"]["status"], 200)
        self.assertEqual(doc["data"]["location"], "/jobs/signup/" + job)
        m = f.metrics()
        self.assertEqual(m.get("ficus_queue_callbacks_total", queue="signup", outcome="sent"), 1)
        self.assertEqual(m.get("ficus_queue_callbacks_total", queue="signup",
                               outcome="attempts"), 3)
        # The secret is nowhere ficus writes: not in /config, not in its log.
        cfg = request(f.admin_port, "GET", "/config").body.decode()
        self.assertNotIn(SECRET[6:20], cfg)
        with open(f.log_path, errors="replace") as log:
            self.assertNotIn(SECRET[6:20], log.read())

    def test_a_request_names_its_callback_only_on_an_allowed_origin(self):
        rx = self.receiver()
        other = self.receiver()
        f = self.start_ficus(self.config(
            rx, request_header="Callback-Url",
            allowed_origins=["http://127.0.0.1:%d" % other.port]))
        named = "http://127.0.0.1:%d/mine?user=7" % other.port
        r = request(f.port, "POST", "/signup", body=b"x",
                    headers={"Content-Type": "text/plain", "Callback-Url": named})
        self.assertEqual(r.status, 202, r)
        self.assertTrue(wait_until(lambda: other.snapshot(), 10 * TIME_FACTOR))
        self.assertEqual(other.snapshot()[0][0], "/mine?user=7")
        self.assertTrue(other.snapshot()[0][3])
        # The header is ficus's: the application never sees it.
        self.assertTrue(wait_until(lambda: self.app.deliveries, 5 * TIME_FACTOR))
        refused = request(f.port, "POST", "/signup", body=b"y",
                          headers={"Content-Type": "text/plain",
                                   "Callback-Url": "http://127.0.0.1:1/steal"})
        self.assertEqual(refused.status, 400, refused)
        self.assertEqual(refused.json()["error"], "callback_not_allowed")
        # Without the header, the queue's own URL.
        self.assertEqual(offload(f.port, b"z").status, 202)
        self.assertTrue(wait_until(lambda: rx.snapshot(), 10 * TIME_FACTOR))
        self.assertEqual(rx.snapshot()[0][0], "/hooks")

    def test_a_callback_still_to_send_survives_kill_9(self):
        rx = self.receiver(statuses=(503,))
        cfg = self.config(rx)
        first = os.path.join(self.dir, "first")
        os.makedirs(first)
        f = Ficus(cfg, workdir=first)
        f.start()
        try:
            self.assertEqual(offload(f.port, b"durable").status, 202)
            self.assertTrue(wait_until(lambda: rx.snapshot(), 10 * TIME_FACTOR))
            f.proc.send_signal(signal.SIGKILL)
            f.proc.wait()
        finally:
            f.stop()
        before = len(rx.snapshot())
        rx.statuses = [200]
        f = self.start_ficus(cfg)
        self.assertTrue(wait_until(lambda: len(rx.snapshot()) > before, 10 * TIME_FACTOR),
                        "the pending callback was not sent after the restart")
        calls = rx.snapshot()
        self.assertEqual(json.loads(calls[-1][2])["type"], "job.succeeded")
        self.assertEqual(calls[-1][1], calls[0][1])  # the same message
        self.assertTrue(calls[-1][3])


if __name__ == "__main__":
    import unittest
    unittest.main()
