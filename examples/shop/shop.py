#!/usr/bin/env python3
"""shop: a small web shop standing in for a team's MVP, with the problems real MVPs have.

Python 3 standard library only; one threaded HTTP/1.1 server (keep-alive).

    python3 examples/shop/shop.py --port 3000      # prints "READY <port>" once listening

Endpoints (JSON everywhere):
    GET  /health                  fast
    GET  /api/products            the catalog         } cacheable: the same body for the same
    GET  /api/products/<id>       one product         } URL every time, but sent with no
                                                        Cache-Control, ETag or Last-Modified;
                                  each a ~10 ms query on a database pool of 4 connections
                                  (--db-pool, --query-ms): about 400 reads/s at most, so a
                                  client that floods the catalog makes everyone else wait
    GET  /api/cart                the caller's cart (by X-Api-Key), fast
    POST /api/cart/items          add an item, fast
    GET  /api/reports/sales       SLOW: 400-800 ms (an unindexed aggregate query)
    POST /api/signup              SLOW: ~300 ms sending the welcome email synchronously, then a
                                  tiny 201 response (an async-offload candidate)
    GET  /debug/signups           signups being handled now and the most at once since start
                                  (what a remedy such as offload changes: bench/offload)
    POST /api/checkout            ~50 ms of work; with more than --checkout-capacity requests
                                  in flight it answers 503 (a connection pool that runs dry), so
                                  its errors rise with concurrency

The planted noisy client is in the traffic, not here: see traffic.yaml.
"""

import argparse
import hashlib
import http.server
import json
import random
import re
import sys
import threading
import time

PRODUCTS = [
    {"id": i, "name": name, "price_cents": price, "stock": stock,
     "description": "%s, sold by the shop since 2021." % name}
    for i, (name, price, stock) in enumerate([
        ("Fig tree, small", 2499, 40), ("Fig tree, large", 8999, 7), ("Watering can", 1599, 120),
        ("Terracotta pot 20cm", 899, 300), ("Terracotta pot 35cm", 1899, 85),
        ("Potting soil 10l", 699, 500), ("Pruning shears", 2199, 60), ("Plant food", 499, 240),
        ("Grow light", 4599, 25), ("Moss pole", 1299, 90), ("Spray bottle", 599, 150),
        ("Gardening gloves", 999, 110)], start=1)
]
PRODUCT_BY_ID = {p["id"]: p for p in PRODUCTS}
PRODUCT_PATH = re.compile(r"^/api/products/(\d+)$")


class Shop:
    """Shared state; every handler thread uses it under `lock`."""

    def __init__(self, checkout_capacity, seed, db_pool=4, query_ms=10):
        self.lock = threading.Lock()
        # The catalog's database: a query holds one of db_pool connections for query_ms.
        self.db = threading.BoundedSemaphore(db_pool)
        self.query_s = query_ms / 1000.0
        self.checkout_in_flight = 0
        self.checkout_capacity = checkout_capacity
        self.carts = {}      # api key -> [product ids]
        self.users = 0
        self.signups_in_flight = 0
        self.signups_peak = 0
        self.orders = 0
        self.rng = random.Random(seed)

    def query(self):
        """A catalog query: waits for a pooled database connection, holds it query_s."""
        with self.db:
            time.sleep(self.query_s)

    def report_delay(self):
        with self.lock:
            return self.rng.uniform(0.4, 0.8)


def make_handler(shop):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive, as a real app server
        server_version = "shop/1.0"

        def log_message(self, *args):   # quiet: the load would flood the terminal
            pass

        def send_json(self, status, obj, headers=()):
            body = json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def read_body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n > 0 else b""

        def client(self):
            return self.headers.get("X-Api-Key") or self.client_address[0]

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/health":
                return self.send_json(200, {"status": "ok"})
            if path == "/debug/signups":
                with shop.lock:
                    return self.send_json(200, {"in_flight": shop.signups_in_flight,
                                                "peak_in_flight": shop.signups_peak,
                                                "users": shop.users})
            if path == "/api/products":
                # The whole catalog, identical on every call: cacheable, yet no cache headers.
                shop.query()
                return self.send_json(200, {"products": PRODUCTS})
            m = PRODUCT_PATH.match(path)
            if m:
                shop.query()
                product = PRODUCT_BY_ID.get(int(m.group(1)))
                if product is None:
                    return self.send_json(404, {"error": "no such product"})
                return self.send_json(200, product)
            if path == "/api/cart":
                with shop.lock:
                    items = list(shop.carts.get(self.client(), []))
                total = sum(PRODUCT_BY_ID[i]["price_cents"] for i in items)
                return self.send_json(200, {"items": items, "total_cents": total})
            if path == "/api/reports/sales":
                # An aggregate over every order, recomputed on each request without an index.
                time.sleep(shop.report_delay())
                with shop.lock:
                    orders = shop.orders
                digest = hashlib.sha256(str(orders).encode()).hexdigest()[:12]
                # Stamped with when it was computed: no two answers are the same body.
                return self.send_json(200, {"orders": orders, "revenue_cents": orders * 3141,
                                            "by_product": {p["name"]: p["stock"] for p in
                                                           PRODUCTS}, "digest": digest,
                                            "generated_at": round(time.time(), 6)})
            return self.send_json(404, {"error": "not found"})

        def do_POST(self):
            path = self.path.split("?", 1)[0]
            body = self.read_body()
            if path == "/api/signup":
                try:
                    email = json.loads(body or b"{}").get("email", "")
                except (ValueError, AttributeError):
                    email = ""
                if "@" not in str(email):
                    return self.send_json(400, {"error": "email required"})
                with shop.lock:
                    shop.signups_in_flight += 1
                    shop.signups_peak = max(shop.signups_peak, shop.signups_in_flight)
                try:
                    time.sleep(0.3)   # the welcome email, sent over SMTP before answering
                finally:
                    with shop.lock:
                        shop.signups_in_flight -= 1
                        shop.users += 1
                        user = shop.users
                return self.send_json(201, {"id": user})
            if path == "/api/cart/items":
                try:
                    product = int(json.loads(body or b"{}").get("product_id", 0))
                except (ValueError, AttributeError, TypeError):
                    product = 0
                if product not in PRODUCT_BY_ID:
                    return self.send_json(400, {"error": "unknown product_id"})
                with shop.lock:
                    shop.carts.setdefault(self.client(), []).append(product)
                return self.send_json(201, {"added": product})
            if path == "/api/checkout":
                with shop.lock:
                    if shop.checkout_in_flight >= shop.checkout_capacity:
                        overloaded = True
                    else:
                        overloaded = False
                        shop.checkout_in_flight += 1
                if overloaded:
                    # The payment provider's connection pool is exhausted.
                    return self.send_json(503, {"error": "payment pool exhausted, retry later"},
                                          headers=[("Retry-After", "1")])
                try:
                    time.sleep(0.05)
                    with shop.lock:
                        shop.orders += 1
                        order = shop.orders
                finally:
                    with shop.lock:
                        shop.checkout_in_flight -= 1
                return self.send_json(200, {"order": order})
            return self.send_json(404, {"error": "not found"})

    return Handler


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--checkout-capacity", type=int, default=4,
                    help="checkouts in flight before 503 (default 4)")
    ap.add_argument("--seed", type=int, default=1, help="seed for the report's delays")
    ap.add_argument("--db-pool", type=int, default=4,
                    help="catalog database connections (default 4)")
    ap.add_argument("--query-ms", type=float, default=10,
                    help="time a catalog query holds one (default 10 ms)")
    args = ap.parse_args(argv)
    shop = Shop(args.checkout_capacity, args.seed, args.db_pool, args.query_ms)
    server = Server((args.host, args.port), make_handler(shop))
    print("READY %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
