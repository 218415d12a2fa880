#!/usr/bin/env python3
"""Async offload: acknowledged (fsynced) jobs per second and enqueue latency (issue 17).

Side by side in one run, small bodies (100 B), many concurrent clients:
- ficus: an `offload:` route (SQLite WAL, synchronous=FULL, group commit by one writer thread,
  checkpoints on their own thread); `ficus load --closed` at 64, 256 and 1024 connections for
  the throughput, then the open model at a fixed rate (default 10,000/s) for the enqueue p50
  and p99. First enqueue only (the queue delivers 1 job/s), then while every job is delivered to
  the application (a single-process nginx answering 200; three writes per job).
- Redis `XADD` with `appendfsync always` (Debian's redis-server and redis-benchmark, the same
  connection counts): Redis fsyncs its append-only file once per event-loop turn, the same
  group commit.
- SQLite with one commit per job (WAL, synchronous=FULL), and with 100 jobs per commit: the
  anchors the issue quotes (Python's sqlite3, same machine, same disk).
- The fdatasync latency of the disk under the data directory (4 KiB appends), which bounds
  any acknowledged write's p99.
- The remedy itself: the sample shop (examples/shop) with its slow signup (300 ms), the same
  open-model burst before (proxied) and after (`offload:`): the client's p50/p99 and the
  shop's peak concurrent signups (its /debug/signups), and how long the queue took to deliver
  every job.

Python 3 standard library only; everything started is stopped by PID. Figures are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_FICUS = ROOT / "build" / "release" / "apps" / "ficus"
BODY = "x" * 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("port %d did not open" % port)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_app(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    d = tmp / "app"
    d.mkdir()
    conf = d / "nginx.conf"
    conf.write_text("""
daemon off; master_process off; pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path %(d)s; proxy_temp_path %(d)s;
  fastcgi_temp_path %(d)s; uwsgi_temp_path %(d)s; scgi_temp_path %(d)s;
  keepalive_requests 100000000;
  server { listen 127.0.0.1:%(p)d backlog=4096; location / { return 200 "ok"; } }
}
""" % {"d": d, "p": port})
    proc = subprocess.Popen(["nginx", "-p", str(d), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, port


def start_ficus(ficus: Path, tmp: Path, app_port: int, workers: int,
                deliver: bool) -> tuple[subprocess.Popen, int]:
    port, admin = free_port(), free_port()
    d = tmp / ("ficus-deliver" if deliver else "ficus-enqueue")
    d.mkdir()
    (d / "ficus.yaml").write_text("""
workers: %d
data_dir: %s
admin: { listen: 127.0.0.1:%d }
listeners: [{ listen: 127.0.0.1:%d }]
clusters: [{ name: app, endpoints: [127.0.0.1:%d] }]
routes:
  - { match: { path: /signup }, cluster: app, offload: { queue: signup } }
queues:
  - { name: signup, concurrency: 32, max_jobs: 10000000, max_bytes: 4GiB, rate: %s }
""" % (workers, d / "data", admin, port, app_port, "0" if deliver else "1/s"))
    log = open(d / "ficus.log", "wb")
    proc = subprocess.Popen([str(ficus), "run", "-c", str(d / "ficus.yaml")], stdout=log,
                            stderr=subprocess.STDOUT, cwd=d)
    wait_port(port)
    return proc, port


def ficus_load(ficus: Path, port: int, args: list[str], path: str = "/signup",
               body: str = BODY) -> dict:
    cmd = [str(ficus), "load", "http://127.0.0.1:%d%s" % (port, path), "-m", "POST", "--body",
           body, "-H", "Content-Type: text/plain", "--json"] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    try:
        return json.loads(out.stdout)
    except json.JSONDecodeError:
        raise RuntimeError("ficus load: %s %s" % (out.stdout[-2000:], out.stderr[-2000:]))


def summarize(doc: dict) -> str:
    lat = doc["latency_ms"]["uncorrected" if doc["mode"] == "closed" else "corrected"]
    done = doc["requests"]["completed"]
    return "%.0f acknowledged/s, p50 %.2f ms, p99 %.2f ms, statuses %s" % (
        done / doc["elapsed_s"], lat["p50"], lat["p99"], doc.get("status"))


def sqlite_anchor(tmp: Path, per_commit: int, seconds: float) -> float:
    path = tmp / ("anchor-%d.db" % per_commit)
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE jobs(seq INTEGER PRIMARY KEY, id TEXT UNIQUE, body BLOB)")
    n = 0
    deadline = time.monotonic() + seconds
    start = time.monotonic()
    while time.monotonic() < deadline:
        db.execute("BEGIN")
        for _ in range(per_commit):
            db.execute("INSERT INTO jobs(id, body) VALUES(?, ?)", (os.urandom(16).hex(), BODY))
            n += 1
        db.execute("COMMIT")
    rate = n / (time.monotonic() - start)
    db.close()
    return rate


def redis_xadd(tmp: Path, connections: list[int], requests: int) -> list[str]:
    server = shutil.which("redis-server")
    bench = shutil.which("redis-benchmark")
    if not server or not bench:
        return ["skipped: redis-server / redis-benchmark not installed"]
    port = free_port()
    d = tmp / "redis"
    d.mkdir()
    proc = subprocess.Popen([server, "--port", str(port), "--dir", str(d), "--appendonly", "yes",
                             "--appendfsync", "always", "--save", "", "--maxclients", "4096"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = []
    try:
        wait_port(port)
        for c in connections:
            out = subprocess.run([bench, "-p", str(port), "-c", str(c), "-n", str(requests),
                                  "XADD", "jobs", "*", "body", BODY],
                                 capture_output=True, text=True, timeout=300).stdout
            rate = re.search(r"throughput summary: ([\d.]+) requests per second", out)
            lat = re.search(r"avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([\d.]+)\s+([\d.]+)\s+"
                            r"([\d.]+)\s+([\d.]+)\s+([\d.]+)", out)
            if rate and lat:
                lines.append("Redis XADD, appendfsync always, closed, %d connections: %.0f "
                             "acknowledged/s, p50 %s ms, p99 %s ms" % (
                                 c, float(rate.group(1)), lat.group(3), lat.group(5)))
            else:
                lines.append("Redis XADD, %d connections: %s" % (c, out.strip()[-300:]))
        return lines
    finally:
        stop(proc)


def fdatasync_latency(directory: Path, n: int = 2000) -> str:
    """4 KiB appends, each followed by fdatasync: the floor of any acknowledged write."""
    path = directory / "fdatasync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    lat = []
    try:
        block = b"x" * 4096
        for _ in range(n):
            os.write(fd, block)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    q = lambda f: lat[min(n - 1, int(f * n))]  # noqa: E731
    return "disk: fdatasync after a 4 KiB append, %d times: p50 %.3f ms, p90 %.3f ms, " \
        "p99 %.3f ms, max %.3f ms" % (n, q(0.5), q(0.9), q(0.99), lat[-1])


def start_shop() -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "examples" / "shop" / "shop.py"),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    if not line.startswith("READY "):
        stop(proc)
        raise RuntimeError("shop did not start: %r" % line)
    return proc, int(line.split()[1])


def shop_signups(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), 5) as c:
        c.sendall(b"GET /debug/signups HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def shop_remedy(ficus: Path, tmp: Path, rate: int, duration: str, concurrency: int) -> None:
    """The shop's slow signup, proxied then offloaded, under the same open-model burst."""
    body = '{"email": "someone@example.com"}'
    sent = None
    for offload in (False, True):
        shop, shop_port = start_shop()
        port = free_port()
        d = tmp / ("shop-offload" if offload else "shop-proxy")
        d.mkdir()
        (d / "ficus.yaml").write_text("""
workers: 1
data_dir: %s
listeners: [{ listen: 127.0.0.1:%d }]
clusters: [{ name: shop, endpoints: [127.0.0.1:%d] }]
routes:
  - { match: { path: /api/signup, methods: [POST] }, cluster: shop%s }
queues:
  - { name: signup, concurrency: %d }
""" % (d / "data", port, shop_port, ", offload: { queue: signup }" if offload else "",
       concurrency))
        log = open(d / "ficus.log", "wb")
        fx = subprocess.Popen([str(ficus), "run", "-c", str(d / "ficus.yaml")], stdout=log,
                              stderr=subprocess.STDOUT, cwd=d)
        try:
            wait_port(port)
            doc = ficus_load(ficus, port, ["-r", str(rate), "-c", "256", "-d", duration,
                                           "--timeout", "30s"], path="/api/signup", body=body)
            sent = doc["requests"]["completed"]
            lat = doc["latency_ms"]["corrected"]
            line = "shop signup %s, open model %d/s for %s: client p50 %.1f ms, p99 %.1f ms, " \
                "statuses %s, the shop's peak concurrent signups %d" % (
                    "offloaded (202)" if offload else "proxied (201)", rate, duration,
                    lat["p50"], lat["p99"], doc.get("status"),
                    shop_signups(shop_port)["peak_in_flight"])
            if offload:
                # The backlog drains at `concurrency` / 300 ms: wait (bounded) until every
                # acknowledged job was delivered.
                start = time.monotonic()
                while shop_signups(shop_port)["users"] < sent and \
                        time.monotonic() - start < 120:
                    time.sleep(0.2)
                line += "; every job delivered %.1f s after the load ended (%d of %d)" % (
                    time.monotonic() - start, shop_signups(shop_port)["users"], sent)
            print(line)
        finally:
            stop(fx)
            stop(shop)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", default=str(DEFAULT_FICUS))
    ap.add_argument("--connections", default="64,256,1024",
                    help="closed-model connection counts, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--duration", default="4s")
    ap.add_argument("--rate", type=int, default=10000, help="open-model rate for the p99")
    ap.add_argument("--shop-rate", type=int, default=60, help="signups/s for the remedy")
    ap.add_argument("--shop-duration", default="5s")
    ap.add_argument("--shop-concurrency", type=int, default=8,
                    help="the offload queue's deliverers for the remedy")
    ap.add_argument("--skip", default="", help="comma-separated: deliver,redis,sqlite,shop")
    args = ap.parse_args()
    ficus = Path(args.ficus).resolve()
    connections = [int(c) for c in args.connections.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="ficus-bench-offload-"))
    app = fx = None
    try:
        print(fdatasync_latency(tmp))
        app, app_port = start_app(tmp)
        # Enqueue only (the queue delivers 1 job/s: the writer and the workers alone), then
        # enqueue while the deliverer sends every job to the application (3 writes per job).
        for deliver in (False, True):
            if deliver and "deliver" in skip:
                continue
            what = "while delivering" if deliver else "enqueue only"
            fx, port = start_ficus(ficus, tmp, app_port, args.workers, deliver)
            ficus_load(ficus, port, ["--closed", "-c", "16", "-t", "1", "-d", "1s"])  # warm-up
            for c in connections if not deliver else [256]:
                closed = ficus_load(ficus, port, ["--closed", "-c", str(c), "-t",
                                                  str(args.threads), "-d", args.duration])
                print("ficus offload (%s), closed, %d connections: %s" % (
                    what, c, summarize(closed)))
            opened = ficus_load(ficus, port, ["-r", str(args.rate), "-c", "256",
                                              "-t", str(args.threads), "-d", args.duration])
            print("ficus offload (%s), open model %d/s: %s" % (what, args.rate, summarize(opened)))
            stop(fx)
            fx = None
        if "redis" not in skip:
            for line in redis_xadd(tmp, connections, 150000):
                print(line)
        if "sqlite" not in skip:
            print("SQLite, one commit per job: %.0f jobs/s" % sqlite_anchor(tmp, 1, 3.0))
            print("SQLite, 100 jobs per commit: %.0f jobs/s" % sqlite_anchor(tmp, 100, 3.0))
        stop(app)
        app = None
        if "shop" not in skip:
            shop_remedy(ficus, tmp, args.shop_rate, args.shop_duration, args.shop_concurrency)
    finally:
        stop(fx)
        stop(app)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
