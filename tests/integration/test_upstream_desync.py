"""No response reaches the wrong client: a pooled upstream connection that is out of step with
its requests is never reused, and the proxy duties of RFC 9110/9112 around it.

Each trigger runs against a hostile upstream (hostile_upstream.py) behind one ficus worker, so
every request shares one pool; after the trigger, four fresh client connections each must get
exactly their own response. The same triggers go through nginx (keep-alive upstream pool) in
the differential test.
"""

import gzip
import os
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (ConnectionClosed, FicusTestCase, RawConn, TIME_FACTOR, free_port, make_config,
                     request, wait_until)
from hostile_upstream import HostileUpstream

CLIENTS = 4


def trigger(port, method, path, body=None):
    """Sends the trigger request on its own connection and reads its answer (whatever it is)."""
    with RawConn(port) as c:
        c.request(method, path, body=body)
        try:
            return c.read_response(method)
        except ConnectionClosed:
            return None


def later_clients_get_their_own(port, tag):
    """Four fresh connections, one request each: the list of those that got someone else's
    answer (or none)."""
    wrong = []
    for i in range(CLIENTS):
        path = "/own/%s/%d" % (tag, i)
        try:
            r = request(port, "GET", path)
        except (ConnectionClosed, OSError) as e:
            wrong.append((path, repr(e)))
            continue
        if r.status != 200 or r.body != ("own:" + path).encode():
            wrong.append((path, r.status, r.body[:60]))
    return wrong


TRIGGERS = [
    # (name, method, path, body, wait before the later clients)
    ("late second response", "GET", "/late", None, 0.6),
    ("bytes after 204", "GET", "/nocontent", None, 0.2),
    ("bytes after 304", "GET", "/notmod", None, 0.2),
    ("body after a HEAD response", "HEAD", "/head", None, 0.2),
    ("early answer, body read as a request", "POST", "/early",
     b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n", 0.2),
]


class BehindOneWorker(FicusTestCase):
    """One hostile upstream and one ficus worker for the whole class: every request shares one
    pool."""

    @classmethod
    def setUpClass(cls):
        cls.up = HostileUpstream().start()
        cls.addClassCleanup(cls.up.stop)
        cls.ficus = cls.start_ficus_for_class(make_config(
            {"app": ["127.0.0.1:%d" % cls.up.port]}, [{"name": "all", "cluster": "app"}]))


class PooledConnectionDesync(BehindOneWorker):

    def check_trigger(self, name, method, path, body, wait):
        trigger(self.ficus.port, method, path, body)
        time.sleep(wait * TIME_FACTOR)
        wrong = later_clients_get_their_own(self.ficus.port, path.strip("/"))
        self.assertEqual(wrong, [], "after %s, clients got another request's answer" % name)

    def test_late_unsolicited_response(self):
        self.check_trigger(*TRIGGERS[0])

    def test_bytes_after_204(self):
        self.check_trigger(*TRIGGERS[1])

    def test_bytes_after_304(self):
        self.check_trigger(*TRIGGERS[2])

    def test_body_after_head_response(self):
        self.check_trigger(*TRIGGERS[3])

    def test_early_answer_before_body_is_read(self):
        name, method, path, body, wait = TRIGGERS[4]
        self.check_trigger(name, method, path, body, wait)
        # Whatever the upstream made of the body, its answer went to no client.
        self.assertLessEqual(self.up.count("GET", "/smuggled"), 1)

    def test_repeated_triggers_interleaved_with_clients(self):
        # Each trigger's stray bytes come in a write of their own, some time after the answer:
        # the later clients come once they have arrived (bytes still on the wire when a pooled
        # connection is reused cannot be told from that request's answer, behind any proxy).
        for _ in range(3):
            for t in TRIGGERS[1:]:
                trigger(self.ficus.port, t[1], t[2], t[3])
                time.sleep(t[4] * TIME_FACTOR)
                self.assertEqual(later_clients_get_their_own(self.ficus.port, "mix"), [],
                                 "after %s" % t[0])


class KeepAliveRaceIsNotReplayedForPost(FicusTestCase):
    """The upstream closes a pooled connection on its next request without answering: a GET is
    sent again on a fresh connection, a POST is not (it may have been acted on): 502."""

    def setUp(self):
        super().setUp()
        self.up = HostileUpstream().start()
        self.addCleanup(self.up.stop)
        self.ficus = self.start_ficus(make_config(
            {"app": ["127.0.0.1:%d" % self.up.port]}, [{"name": "all", "cluster": "app"}]))

    def pooled_then(self, method, body=None, headers=None):
        with RawConn(self.ficus.port) as c:
            c.request("GET", "/once")
            self.assertEqual(c.read_response().status, 200)
            time.sleep(0.05)
            c.request(method, "/after", headers=headers, body=body)
            return c.read_response(method)

    def test_post_reaches_the_application_once_and_gets_502(self):
        r = self.pooled_then("POST", body=b"pay=1")
        self.assertEqual(r.status, 502)
        self.assertEqual(self.up.count("POST", "/after"), 1)

    def test_get_is_sent_again(self):
        r = self.pooled_then("GET")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"own:/after")
        self.assertEqual(self.up.count("GET", "/after"), 2)

    def test_post_with_idempotency_key_is_sent_again(self):
        r = self.pooled_then("POST", body=b"pay=1", headers=[("Idempotency-Key", "k1")])
        self.assertEqual(r.status, 200)
        self.assertEqual(self.up.count("POST", "/after"), 2)


class UnderscoreHeaders(FicusTestCase):
    def start(self, action=None):
        self.up = HostileUpstream().start()
        self.addCleanup(self.up.stop)
        limits = {"headers_with_underscores": action} if action else None
        return self.start_ficus(make_config({"app": ["127.0.0.1:%d" % self.up.port]},
                                            [{"name": "all", "cluster": "app"}], limits=limits))

    def send(self, f):
        return request(f.port, "POST", "/u", body=b"0\r\n\r\n",
                       headers=[("Transfer_Encoding", "chunked"), ("X_Api_Key", "k"),
                                ("X-Fine", "1")])

    def test_dropped_by_default(self):
        f = self.start()
        r = self.send(f)
        self.assertEqual(r.status, 200)
        names = [n.lower() for n, _ in self.up.seen[-1][2]]
        self.assertNotIn("transfer_encoding", names)
        self.assertNotIn("x_api_key", names)
        self.assertIn("x-fine", names)

    def test_reject(self):
        f = self.start("reject")
        r = self.send(f)
        self.assertEqual(r.status, 400)
        self.assertEqual(self.up.seen, [])

    def test_allow(self):
        f = self.start("allow")
        self.assertEqual(self.send(f).status, 200)
        names = [n.lower() for n, _ in self.up.seen[-1][2]]
        self.assertIn("transfer_encoding", names)


class ProxyDuties(BehindOneWorker):

    def test_early_hints_reach_http11_clients(self):
        r = request(self.ficus.port, "GET", "/interim")
        self.assertEqual(r.status, 200)
        self.assertEqual([i.status for i in r.interim], [103])
        self.assertEqual(r.interim[0].header("Link"), "</style.css>; rel=preload")
        self.assertFalse(r.interim[0].has_header("Connection"))

    def test_no_interim_responses_to_http10_clients(self):
        r = request(self.ficus.port, "GET", "/interim", version="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.interim, [])

    def test_forbidden_trailers_are_dropped(self):
        r = request(self.ficus.port, "GET", "/trailers")
        self.assertEqual(r.body, b"hello")
        names = [bytes(t).split(b":", 1)[0].lower() for t in r.trailers]
        self.assertEqual(names, [b"x-checksum", b"x-other"])

    def test_request_trailers_are_filtered_too(self):
        body = b"3\r\nabc\r\n0\r\nHost: evil.example\r\nX-Sum: 1\r\nAuthorization: x\r\n\r\n"
        r = request(self.ficus.port, "POST", "/rt", body=body,
                    headers=[("Transfer-Encoding", "chunked")])
        self.assertEqual(r.status, 200)
        seen = [s for s in self.up.seen if s[1] == "/rt"][-1]
        self.assertEqual(seen[3], b"abc")
        self.assertEqual([n.lower() for n, _ in seen[4]], ["x-sum"])

    def test_no_content_length_on_204(self):
        r = request(self.ficus.port, "GET", "/nocontent-cl")
        self.assertEqual(r.status, 204)
        self.assertFalse(r.has_header("Content-Length"))
        self.assertEqual(r.header("X-A"), "1")

    def test_gzip_transfer_coding_is_decoded(self):
        r = request(self.ficus.port, "GET", "/gzip-te")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"own:/gzip-te" * 1000)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        r10 = request(self.ficus.port, "GET", "/gzip-te", version="HTTP/1.0")
        self.assertEqual(r10.body, b"own:/gzip-te" * 1000)
        self.assertFalse(r10.has_header("Transfer-Encoding"))

    def test_bytes_sent_before_the_101_are_forwarded(self):
        with RawConn(self.ficus.port) as c:
            c.send(b"GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n"
                   b"\r\nhello before 101")
            got = b""
            deadline = time.monotonic() + 5 * TIME_FACTOR
            while b"hello before 101" not in got and time.monotonic() < deadline:
                data = c.read_some(timeout=5 * TIME_FACTOR)
                if not data:
                    break
                got += data
            self.assertIn(b"101", got.split(b"\r\n", 1)[0])
            self.assertIn(b"hello before 101", got)


NGINX_CONF = """
pid %(d)s/nginx.pid;
error_log %(d)s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %(d)s; proxy_temp_path %(d)s; fastcgi_temp_path %(d)s;
    uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
    upstream app { server 127.0.0.1:%(u)d; keepalive 16; }
    server {
        listen 127.0.0.1:%(p)d;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
"""


class DifferentialWithNginx(FicusTestCase):
    """The same hostile upstream behind ficus and behind nginx (a keep-alive pool too): ficus
    gives every later client its own answer whatever nginx does; nginx's outcome is printed as
    the reference."""

    def start_nginx(self, upstream_port):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx):
            self.skipTest("nginx is not installed (scripts/install-deps.sh)")
        d = tempfile.mkdtemp(prefix="ficus-desync-nginx-")
        self.addCleanup(shutil.rmtree, d, True)
        port = free_port()
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF % {"d": d, "u": upstream_port, "p": port})
        proc = subprocess.Popen([nginx, "-p", d + "/", "-c", conf, "-e",
                                 os.path.join(d, "error.log"),
                                 "-g", "daemon off; master_process off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            proc.wait(5)
        self.addCleanup(stop)

        def up():
            try:
                import socket
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return True
            except OSError:
                return False
        self.assertTrue(wait_until(up, 5), "nginx did not start")
        return port

    def test_same_triggers_through_both(self):
        ficus_up = HostileUpstream().start()
        nginx_up = HostileUpstream().start()
        self.addCleanup(ficus_up.stop)
        self.addCleanup(nginx_up.stop)
        f = self.start_ficus(make_config({"app": ["127.0.0.1:%d" % ficus_up.port]},
                                         [{"name": "all", "cluster": "app"}]))
        nginx_port = self.start_nginx(nginx_up.port)
        outcome = {}
        for name, method, path, body, wait in TRIGGERS:
            for who, port in (("ficus", f.port), ("nginx", nginx_port)):
                trigger(port, method, path, body)
                time.sleep(wait * TIME_FACTOR)
                outcome[(who, name)] = later_clients_get_their_own(port, "d")
        for (who, name), wrong in sorted(outcome.items()):
            print("%-5s after %-40s wrong answers: %d" % (who, name, len(wrong)))
        for name, *_ in TRIGGERS:
            self.assertEqual(outcome[("ficus", name)], [], "ficus, after %s" % name)


if __name__ == "__main__":
    unittest.main()
