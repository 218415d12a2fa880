"""ficus's HTTP client over TLS, end to end: a throwaway CA and certificates made with the openssl
command at test time (no key is committed), HTTPS receivers on loopback (Python's ssl module),
and the binary as users run it:
- `ficus slo test-webhooks` delivers to an https:// webhook whose certificate chains to
  `ca_file` and names the host; a certificate for another name and one from an unknown CA are
  refused, each with a clear reason;
- `ficus run`: an SLO page reaches an HTTPS receiver, and traces go to an HTTPS OTLP collector."""

import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FICUS_BIN, FicusTestCase, TIME_FACTOR, endpoint, free_port, make_config,
                     request, wait_until)
from otlp_receiver import OtlpReceiver
from loopback_server import LoopbackHTTPServer


def make_certs(d):
    """ca.pem: the test CA; other.pem: a CA nobody trusts; server.pem: localhost and 127.0.0.1,
    wrong.pem: elsewhere.example (both issued by ca, same key server.key)."""
    script = """
set -e
for ca in ca other; do
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ficus test $ca" \
    -keyout $ca.key -out $ca.pem -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign
done
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > server.cnf
printf 'subjectAltName=DNS:elsewhere.example\\n' > wrong.cnf
for c in server wrong; do
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile $c.cnf -out $c.pem
done
"""
    subprocess.run(["bash", "-c", script], cwd=d, check=True, capture_output=True, timeout=60)


def server_context(d, cert="server.pem"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, cert), os.path.join(d, "server.key"))
    return ctx


class HttpsReceiver:
    """A threaded HTTPS server on loopback recording POSTs (answers 204), with the SNI each
    handshake carried."""

    def __init__(self, context):
        self.requests = []  # (path, headers dict, body bytes)
        self.sni = []
        self.lock = threading.Lock()
        outer = self

        def on_sni(sock, name, ctx):
            with outer.lock:
                outer.sni.append(name)

        context.sni_callback = on_sni

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.requests.append((self.path, dict(self.headers), body))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(LoopbackHTTPServer):
            daemon_threads = True

            def get_request(self):
                sock, addr = self.socket.accept()
                # The handshake runs in the handler thread (a refused client must not stall
                # the accept loop).
                return context.wrap_socket(sock, server_side=True,
                                           do_handshake_on_connect=False), addr

            def handle_error(self, req, addr):
                pass  # handshakes the client aborts (verification failed): expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class CertsMixin:
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = tempfile.mkdtemp(prefix="ficus-tls-")
        make_certs(cls.certs)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certs, True)
        super().tearDownClass()

    def cert(self, name):
        return os.path.join(self.certs, name)


CONFIG = """\
workers: 1
admin: {{ listen: 127.0.0.1:{admin} }}
listeners: [{{ listen: 127.0.0.1:{listen} }}]
clusters: [{{ name: shop, endpoints: [127.0.0.1:3000] }}]
routes: [{{ name: all, cluster: shop }}]
slos:
  - name: api
    availability: 99%
    webhooks: ["{url}"]
{ca_line}"""


class HttpsWebhookCliTest(CertsMixin, unittest.TestCase):
    def setUp(self):
        if not os.path.exists(FICUS_BIN):
            self.skipTest("ficus binary not found at %s" % FICUS_BIN)
        self.dir = tempfile.mkdtemp(prefix="ficus-https-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_hooks(self, url, ca_file):
        path = os.path.join(self.dir, "ficus.yaml")
        ca_line = "    ca_file: %s\n" % ca_file if ca_file else ""
        with open(path, "w") as f:
            f.write(CONFIG.format(admin=free_port(), listen=free_port(), url=url,
                                  ca_line=ca_line))
        return subprocess.run([FICUS_BIN, "slo", "test-webhooks", "-c", path, "--attempts", "1"],
                              capture_output=True, text=True, timeout=60 * TIME_FACTOR)

    def receiver(self, cert="server.pem"):
        rx = HttpsReceiver(server_context(self.certs, cert))
        self.addCleanup(rx.stop)
        return rx

    def test_valid_certificate_is_delivered(self):
        rx = self.receiver()
        r = self.run_hooks("https://localhost:%d/hook?team=shop" % rx.port, self.cert("ca.pem"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("webhooks: 1 of 1 delivered", r.stdout)
        self.assertEqual(len(rx.requests), 1)
        path, headers, body = rx.requests[0]
        self.assertEqual(path, "/hook?team=shop")
        self.assertEqual(headers["Host"], "localhost:%d" % rx.port)
        self.assertEqual(json.loads(body)["slo"], "api")
        self.assertIn("localhost", rx.sni)  # SNI names the host
        # An IP literal is checked against the certificate's IP addresses.
        r = self.run_hooks("https://127.0.0.1:%d/hook" % rx.port, self.cert("ca.pem"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_wrong_host_name_is_refused(self):
        rx = self.receiver("wrong.pem")  # issued by the trusted CA, for elsewhere.example
        r = self.run_hooks("https://localhost:%d/hook" % rx.port, self.cert("ca.pem"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("webhooks: 0 of 1 delivered", r.stdout)
        self.assertIn("certificate verification failed: hostname mismatch (the certificate is "
                      "not for 'localhost')", r.stderr)
        self.assertEqual(rx.requests, [])

    def test_unknown_ca_is_refused(self):
        rx = self.receiver()
        # ca_file names another CA; and without ca_file, the system store does not know ours.
        r = self.run_hooks("https://localhost:%d/hook" % rx.port, self.cert("other.pem"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("certificate verification failed: unable to get local issuer certificate",
                      r.stderr)
        self.assertIn("issued by a CA not in ca_file", r.stderr)
        r = self.run_hooks("https://localhost:%d/hook" % rx.port, None)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("the system store does not trust; set ca_file to trust it", r.stderr)
        self.assertEqual(rx.requests, [])

    def test_unreadable_ca_file_is_a_config_error(self):
        r = self.run_hooks("https://localhost:1/hook", os.path.join(self.dir, "absent.pem"))
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("slos[0].ca_file: '%s' is not a readable file"
                      % os.path.join(self.dir, "absent.pem"), r.stderr)


class HttpsGatewayTest(CertsMixin, FicusTestCase):
    def test_slo_page_reaches_an_https_receiver(self):
        rx = HttpsReceiver(server_context(self.certs))
        self.addCleanup(rx.stop)
        up = self.start_upstream("slo")
        cfg = make_config(
            [{"name": "app", "endpoints": [endpoint(up.port)]}],
            [{"name": "api", "cluster": "app"}],
            telemetry={"slo_interval": "200ms"},
            slos=[{"name": "api", "routes": ["api"], "availability": "99%", "min_requests": 5,
                   "webhooks": ["https://localhost:%d/page" % rx.port],
                   "ca_file": self.cert("ca.pem")}])
        f = self.start_ficus(cfg)
        for _ in range(10):
            request(f.port, "GET", "/status/503")
        self.assertTrue(wait_until(lambda: rx.requests, 10 * TIME_FACTOR), f.log_tail())
        path, headers, body = rx.requests[0]
        self.assertEqual(path, "/page")
        page = json.loads(body)
        self.assertEqual((page["slo"], page["from"], page["to"]), ("api", "ok", "page"))

    def test_traces_reach_an_https_collector(self):
        rx = OtlpReceiver()
        rx.server.socket = server_context(self.certs).wrap_socket(rx.server.socket,
                                                                   server_side=True)
        rx.start()
        self.addCleanup(rx.stop)
        up = self.start_upstream("slo")
        cfg = make_config([{"name": "app", "endpoints": [endpoint(up.port)]}],
                          [{"name": "api", "cluster": "app"}])
        cfg["tracing"] = {"endpoint": "https://localhost:%d/v1/traces" % rx.port,
                          "ca_file": self.cert("ca.pem"), "sample": 1.0,
                          "flush_interval": "50ms"}
        f = self.start_ficus(cfg)
        for _ in range(3):
            self.assertEqual(request(f.port, "GET", "/status/200").status, 200)
        self.assertTrue(wait_until(lambda: len(rx.spans()) >= 6, 10 * TIME_FACTOR), f.log_tail())
        # Every batch on one kept-alive TLS connection (counted once the export returned).
        metrics = lambda: request(f.admin_port, "GET", "/metrics").body.decode()
        self.assertTrue(wait_until(
            lambda: "ficus_trace_exchanges_exported_total 3\n" in metrics(), 5 * TIME_FACTOR))
        m = metrics()
        self.assertIn("ficus_trace_export_connections_total 1\n", m)
        self.assertIn("ficus_trace_export_failures_total 0\n", m)


if __name__ == "__main__":
    unittest.main()
