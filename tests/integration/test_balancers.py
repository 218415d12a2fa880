"""Load balancers end to end: `load_balancer: p2c_ewma` and `least_request` steer traffic away
from a slow endpoint; `round_robin` does not.

Each cluster has four test upstreams (a small in-process HTTP/1.1 server, below) of which one
is slow: it adds a fixed delay to every request. Eight client threads send requests through
ficus (one worker, so one balancer sees all of them) and the upstreams count what they got.
"""

import http.server
import threading
import time
import unittest

from loopback_server import LoopbackHTTPServer
from harness import (TIME_FACTOR, ConnectionClosed, FicusTestCase, RawConn, endpoint,
                     make_config)

THREADS = 8


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so ficus pools connections as in production

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.count += 1
        if srv.delay_s:
            time.sleep(srv.delay_s)
        body = srv.name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Upstream", srv.name)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class DelayingUpstream(LoopbackHTTPServer):
    """Answers every GET with its name after `delay_ms`; counts the requests it received."""

    daemon_threads = True

    def __init__(self, name, delay_ms=0):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.name = name
        self.delay_s = delay_ms / 1000.0
        self.lock = threading.Lock()
        self.count = 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.server_address[1]

    def stop(self):
        self.shutdown()
        self.server_close()


class BalancerTest(FicusTestCase):
    def start_cluster(self, load_balancer, slow_delay_ms):
        """Four upstreams (the last one slow) behind ficus; returns (ficus, upstreams)."""
        ups = []
        for i in range(4):
            up = DelayingUpstream("u%d" % i, slow_delay_ms if i == 3 else 0)
            self.addCleanup(up.stop)
            ups.append(up)
        clusters = [{"name": "app", "endpoints": [endpoint(u.port) for u in ups],
                     "load_balancer": load_balancer, "connect_timeout": "1s"}]
        f = self.start_ficus(make_config(clusters, [{"name": "all", "cluster": "app"}]))
        return f, ups

    def drive(self, port, total):
        """`total` GETs from THREADS threads, each on its own keep-alive connection."""
        errors = []
        per_thread = [total // THREADS + (1 if i < total % THREADS else 0)
                      for i in range(THREADS)]

        def run(n):
            conn = None
            try:
                for _ in range(n):
                    for _try in range(2):  # a connection ficus closed: reconnect once
                        if conn is None:
                            conn = RawConn(port)
                        try:
                            conn.request("GET", "/")
                            r = conn.read_response()
                            break
                        except (ConnectionClosed, OSError):
                            conn.close()
                            conn = None
                    else:
                        raise AssertionError("no response")
                    if r.status != 200:
                        errors.append(repr(r))
            except Exception as e:  # noqa: BLE001 — reported by the main thread
                errors.append(repr(e))
            finally:
                if conn is not None:
                    conn.close()

        threads = [threading.Thread(target=run, args=(n,)) for n in per_thread]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60 * TIME_FACTOR)
        self.assertEqual(errors, [])
        return time.monotonic() - started

    def shares(self, ups):
        counts = [u.count for u in ups]
        total = sum(counts)
        return counts, [c / total for c in counts]

    def run_balancer(self, load_balancer, slow_delay_ms, total):
        f, ups = self.start_cluster(load_balancer, slow_delay_ms)
        elapsed = self.drive(f.port, total)
        counts, shares = self.shares(ups)
        self.assertEqual(sum(counts), total, counts)
        print("\n%s: slow endpoint (%d ms) got %d of %d requests (%.1f %%), counts %s, %.2f s"
              % (load_balancer, slow_delay_ms, counts[3], total, 100 * shares[3], counts,
                 elapsed))
        return shares

    def test_round_robin_ignores_latency(self):
        shares = self.run_balancer("round_robin", 50, 300)
        self.assertGreaterEqual(shares[3], 0.20)
        self.assertLessEqual(shares[3], 0.30)

    def test_p2c_ewma_avoids_slow_endpoint(self):
        shares = self.run_balancer("p2c_ewma", 50, 300)
        self.assertLess(shares[3], 0.10)

    def test_least_request_avoids_endpoint_holding_requests(self):
        # Requests to the slow endpoint stay open 200 ms: its active count stays high while
        # the others' drop to zero between requests.
        shares = self.run_balancer("least_request", 200, 300)
        self.assertLess(shares[3], 0.10)


if __name__ == "__main__":
    unittest.main()
