"""Upgrade / WebSocket: the upgrade request is forwarded with its Upgrade and Connection
headers, the upstream's 101 is relayed, and then bytes are tunnelled both ways until either
side closes."""

import base64
import hashlib
import os
import threading
import time
import unittest
import zlib

from harness import TIME_FACTOR, FicusTestCase, RawConn, endpoint, make_config
from upstream import WS_GUID


def ws_headers(key):
    return [("Connection", "Upgrade"), ("Upgrade", "websocket"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]


class UpgradeTest(FicusTestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = cls.start_upstream_for_class("ws")
        cfg = make_config({"app": [endpoint(cls.up.port)]},
                          [{"name": "all", "match": {"path_prefix": "/"}, "cluster": "app"}])
        cls.ficus = cls.start_ficus_for_class(cfg)
        cls.port = cls.ficus.port

    def open_tunnel(self, path="/ws"):
        key = base64.b64encode(os.urandom(16)).decode()
        c = RawConn(self.port, timeout=10)
        self.addCleanup(c.close)
        c.request("GET", path, ws_headers(key))
        r = c.read_response()
        self.assertEqual(r.status, 101, r)
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.assertEqual(r.header("sec-websocket-accept"), accept, r)
        self.assertEqual(r.header("upgrade", "").lower(), "websocket", r)
        self.assertIn("upgrade", r.header("connection", "").lower(), r)
        return c, key

    def recv_exactly(self, c, n):
        got = bytearray()
        while len(got) < n:
            d = c.read_some()
            if not d:
                break
            got += d
        return bytes(got)

    def test_upgrade_request_forwarded_with_upgrade_headers(self):
        self.up.reset()
        c, key = self.open_tunnel("/ws?t=fwd")
        req = [r for r in self.up.requests() if "t=fwd" in r["target"]][0]
        hs = {n.lower(): v for n, v in req["headers"]}
        self.assertEqual(hs.get("upgrade", "").lower(), "websocket", req)
        self.assertIn("upgrade", hs.get("connection", "").lower(), req)
        self.assertEqual(hs.get("sec-websocket-key"), key)

    def test_echo_small_messages(self):
        c, _ = self.open_tunnel()
        for msg in (b"hello", b"\x00\x01\x02binary\xff", b"x" * 1000):
            c.send(msg)
            self.assertEqual(self.recv_exactly(c, len(msg)), msg)

    def test_server_first_bytes_sent_with_the_101(self):
        c, _ = self.open_tunnel("/ws?hello=WELCOME")
        self.assertEqual(self.recv_exactly(c, 7), b"WELCOME")
        c.send(b"ping")
        self.assertEqual(self.recv_exactly(c, 4), b"ping")

    def test_bulk_both_ways(self):
        c, _ = self.open_tunnel()
        n = 8 << 20
        data = os.urandom(1 << 20) * 8
        errs = []

        def sender():
            try:
                mv = memoryview(data)
                for i in range(0, n, 65536):
                    c.sock.sendall(mv[i:i + 65536])
            except OSError as e:
                errs.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        crc, got = 0, 0
        deadline = time.monotonic() + 30 * TIME_FACTOR
        while got < n and time.monotonic() < deadline:
            d = c.read_some()
            if not d:
                break
            crc = zlib.crc32(d, crc)
            got += len(d)
        t.join(10)
        self.assertEqual(errs, [])
        self.assertEqual(got, n)
        self.assertEqual(crc, zlib.crc32(data))

    def test_client_close_closes_upstream_side(self):
        self.up.reset()
        c, _ = self.open_tunnel("/ws?t=cc")
        c.send(b"ping")
        self.assertEqual(self.recv_exactly(c, 4), b"ping")
        c.close()

        def closed(up):
            conns = [x for x in up.connections()
                     if any("t=cc" in r["target"] for r in x["requests"])]
            return conns and conns[0]["closed"] is not None
        self.assertTrue(self.up.wait_for(closed, 5 * TIME_FACTOR),
                        "the upstream side of the tunnel stayed open after the client closed")

    def test_upstream_close_closes_client_side(self):
        c, _ = self.open_tunnel("/ws?close_after=5")
        c.send(b"hello world")
        self.assertEqual(self.recv_exactly(c, 5), b"hello")
        self.assertTrue(c.is_closed(5), "the client side stayed open after the upstream closed")

    def test_upgrade_declined_by_upstream_stays_http(self):
        # The upstream answers 200 instead of 101: the response arrives intact, and the
        # connection either stays plain HTTP/1.1 or is closed with Connection: close (closing
        # after a declined upgrade is a legitimate anti-smuggling choice), never left dangling.
        with RawConn(self.port) as c:
            c.request("GET", "/echo?declined=1", ws_headers("dGhlIHNhbXBsZSBub25jZQ=="))
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "declined=1")
            if "close" in r.header("connection", "").lower():
                self.assertTrue(c.is_closed(), "Connection: close announced but not done")
                return
            c.request("GET", "/echo?after=1")
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["query"], "after=1")

    def test_upgrade_header_without_connection_upgrade_is_not_an_upgrade(self):
        with RawConn(self.port) as c:
            c.request("GET", "/echo", [("Upgrade", "websocket")])
            r = c.read_response()
            self.assertEqual(r.status, 200, r)
            names = {n.lower() for n, _ in r.json()["headers"]}
            self.assertNotIn("upgrade", names, "Upgrade without Connection: upgrade is hop-by-hop")


if __name__ == "__main__":
    unittest.main()
