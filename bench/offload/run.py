#!/usr/bin/env python3
"""Async offload: acknowledged (fsynced) jobs per second and enqueue latency (issue 17).

Side by side in one run, small bodies (100 B), many concurrent clients:
- ficus: an `offload:` route (SQLite WAL, synchronous=FULL, group commit by one writer thread);
  `ficus load --closed` with many connections for the throughput, then the open model at a
  fixed rate (default 10,000/s) for the enqueue p99. The application is a single-process nginx
  answering 200, so jobs are delivered while they are enqueued (as in production).
- SQLite with one commit per job (WAL, synchronous=FULL), and with 100 jobs per commit: the
  anchors the issue quotes (Python's sqlite3, same machine, same disk).
- Redis `XADD` with `appendfsync always` (redis-benchmark, same clients), when redis-server is
  installed.

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


def ficus_load(ficus: Path, port: int, args: list[str]) -> dict:
    cmd = [str(ficus), "load", "http://127.0.0.1:%d/signup" % port, "-m", "POST", "--body", BODY,
           "-H", "Content-Type: text/plain", "--json"] + args
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


def redis_anchor(tmp: Path, clients: int, requests: int) -> str:
    server = shutil.which("redis-server")
    bench = shutil.which("redis-benchmark")
    if not server or not bench:
        return "skipped: redis-server / redis-benchmark not installed"
    port = free_port()
    d = tmp / "redis"
    d.mkdir()
    proc = subprocess.Popen([server, "--port", str(port), "--dir", str(d), "--appendonly", "yes",
                             "--appendfsync", "always", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        out = subprocess.run([bench, "-p", str(port), "-c", str(clients), "-n", str(requests),
                              "-q", "XADD", "jobs", "*", "body", BODY],
                             capture_output=True, text=True, timeout=300).stdout
        m = re.search(r"([\d.]+) requests per second.*?p50=([\d.]+) msec", out, re.S)
        return ("%s XADD/s (p50 %s ms)" % (m.group(1), m.group(2))) if m else out.strip()[-300:]
    finally:
        stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", default=str(DEFAULT_FICUS))
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--rate", type=int, default=10000, help="open-model rate for the p99")
    args = ap.parse_args()
    ficus = Path(args.ficus)
    tmp = Path(tempfile.mkdtemp(prefix="ficus-bench-offload-"))
    app = fx = None
    try:
        app, app_port = start_app(tmp)
        # Enqueue only (the queue delivers 1 job/s: the writer and the workers alone), then
        # enqueue while the deliverer sends every job to the application (3 writes per job).
        for deliver in (False, True):
            what = "while delivering" if deliver else "enqueue only"
            fx, port = start_ficus(ficus, tmp, app_port, args.workers, deliver)
            ficus_load(ficus, port, ["--closed", "-c", "16", "-t", "1", "-d", "1s"])  # warm-up
            closed = ficus_load(ficus, port, ["--closed", "-c", str(args.connections), "-t",
                                              str(args.threads), "-d", args.duration])
            print("ficus offload (%s), closed, %d connections: %s" % (
                what, args.connections, summarize(closed)))
            opened = ficus_load(ficus, port, ["-r", str(args.rate), "-c", str(args.connections),
                                              "-t", str(args.threads), "-d", args.duration])
            print("ficus offload (%s), open model %d/s: %s" % (what, args.rate, summarize(opened)))
            stop(fx)
            fx = None
        print("SQLite, one commit per job: %.0f jobs/s" % sqlite_anchor(tmp, 1, 3.0))
        print("SQLite, 100 jobs per commit: %.0f jobs/s" % sqlite_anchor(tmp, 100, 3.0))
        print("Redis XADD, appendfsync always, %d clients: %s" % (
            args.connections, redis_anchor(tmp, args.connections, 200000)))
    finally:
        stop(fx)
        stop(app)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
