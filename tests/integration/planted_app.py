"""An application with planted problems of known size, and its healthy twin, for the report's
acceptance test (test_report_planted.py). Nobody tuned the report against it: each problem is
one a team meets, made as plain as a real one.

Planted (healthy=False):
  GET  /catalog/items/ID  80 ms of work per request (an uncached query), the same 1 KiB body
                          for the same ID every time: a cache candidate.
  POST /orders            a pool of 2 connections, 25 ms each; a request waits up to 30 ms for
                          one, then gets 503 "pool exhausted": errors grow with concurrency.
  GET  /feed              20 ms, Cache-Control: max-age=60, but every body is new (a counter
                          and the time): a cache would never hit.
  GET  /health            cheap (a few bytes, no work): never worth a finding.
The noisy API key is in the traffic, not in the application (see the test).

Healthy twin (healthy=True): the same routes and bodies, the catalog served from memory (no
work, a small body), a pool of 64 for orders, the feed as fast."""

import itertools
import threading
import time
from http.server import BaseHTTPRequestHandler

from loopback_server import LoopbackHTTPServer


def make_app(healthy):
    pool = threading.BoundedSemaphore(64 if healthy else 2)
    counter = itertools.count()

    class App(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # The head and the body leave in two writes: with Nagle on, the body waits for the
        # head's ACK, which the proxy delays up to 40 ms, and every route of the "healthy" twin
        # took ~43 ms. An application's latency must be the one planted, nothing else.
        disable_nagle_algorithm = True

        def answer(self, status, body, content_type="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = self.path.split("?")[0]
            if path.startswith("/catalog/items/"):
                item = path.rsplit("/", 1)[1]
                if healthy:
                    self.answer(200, b'{"id": "%s"}' % item.encode())
                else:
                    time.sleep(0.080)
                    self.answer(200, b'{"id": "%s", "about": "%s"}' % (item.encode(),
                                                                        b"x" * 1000))
            elif path == "/feed":
                if not healthy:
                    time.sleep(0.020)
                body = b'{"n": %d, "at": %.6f}' % (next(counter), time.time())
                self.answer(200, body, headers=[("Cache-Control", "max-age=60")])
            elif path == "/health":
                self.answer(200, b"ok", "text/plain")
            else:
                self.answer(404, b'{"error": "not found"}')

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path.split("?")[0] != "/orders":
                self.answer(404, b'{"error": "not found"}')
                return
            if not pool.acquire(timeout=0.030):
                self.answer(503, b'{"error": "pool exhausted"}')
                return
            try:
                time.sleep(0.005 if healthy else 0.025)
            finally:
                pool.release()
            self.answer(201, b'{"ok": true}')

        def log_message(self, *args):
            pass

    return App


def start(healthy):
    """The app on a free loopback port, serving on a daemon thread; stop with .shutdown()."""
    server = LoopbackHTTPServer(("127.0.0.1", 0), make_app(healthy))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
