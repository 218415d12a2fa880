#!/usr/bin/env python3
"""p2c_ewma vs round_robin with one slow endpoint: four local upstreams, one of them
10x slower than the others, behind ficus; `ficus load` (open model, so latencies are
coordinated-omission-correct) measures the client-side p99 for each load balancer in
interleaved rounds, and the script prints the p99s and their ratio (round_robin / p2c_ewma).

    python3 bench/balancers/run.py                 # 3 rounds x 10 s per balancer
    python3 bench/balancers/run.py --quick         # 1 round x 3 s: a smoke run
    python3 bench/balancers/run.py --fast-ms 2 --slow-factor 10 --rate 300

The upstreams are asyncio servers (one process each) that answer every request after a fixed
delay (fast: --fast-ms, slow: fast x --slow-factor), so the difference between balancers is
where requests go, not how fast Python is. Standard library only; everything started is
stopped by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DEFAULT_FICUS = ROOT / "build" / "release" / "apps" / "ficus"

UPSTREAM = r'''
import asyncio, sys
delay = float(sys.argv[2]) / 1000.0
body = b"x" * 64
async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n" + body)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    print("READY", flush=True)
    await server.serve_forever()
asyncio.run(main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d never opened" % port)


def start(cmd: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, **kw)


def stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def ficus_config(balancer: str, listen: int, admin: int, upstreams: list[int]) -> str:
    eps = ", ".join("127.0.0.1:%d" % p for p in upstreams)
    return (
        "workers: 1\n"
        "admin: { listen: 127.0.0.1:%d }\n"
        "listeners: [{ name: public, listen: 127.0.0.1:%d }]\n"
        "clusters: [{ name: app, endpoints: [%s], load_balancer: %s }]\n"
        "routes: [{ cluster: app }]\n" % (admin, listen, eps, balancer))


def run_once(args, balancer: str, upstreams: list[int], tmp: Path) -> dict:
    listen, admin = free_port(), free_port()
    cfg = tmp / ("%s.yaml" % balancer)
    cfg.write_text(ficus_config(balancer, listen, admin, upstreams))
    log = open(tmp / ("%s.log" % balancer), "ab")
    ficus = start([str(args.ficus), "run", "-c", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(listen)
        # Warm up (p2c_ewma learns latencies; connections get pooled), then measure.
        subprocess.run([str(args.ficus), "load", "http://127.0.0.1:%d/" % listen, "--rate",
                        str(args.rate), "--duration", "1s", "--connections", "64"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        out = subprocess.run(
            [str(args.ficus), "load", "http://127.0.0.1:%d/" % listen, "--rate", str(args.rate),
             "--duration", "%ds" % args.duration, "--connections", "64", "--json"],
            capture_output=True, text=True, timeout=args.duration + 60)
        if out.returncode not in (0, 3):
            raise RuntimeError("ficus load failed: %s" % out.stderr)
        return json.loads(out.stdout)
    finally:
        stop(ficus)
        log.close()


def p99_ms(summary: dict) -> float:
    """The coordinated-omission-corrected p99 of a `ficus load --json` summary."""
    return float(summary["latency_ms"]["corrected"]["p99"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", type=Path, default=DEFAULT_FICUS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    ap.add_argument("--rate", type=int, default=300, help="requests per second (open model)")
    ap.add_argument("--fast-ms", type=float, default=2.0)
    ap.add_argument("--slow-factor", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="1 round of 3 s")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.duration = 1, 3
    if not args.ficus.exists():
        print("ficus binary not found at %s (make build)" % args.ficus, file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="ficus-bench-lb-"))
    delays = [args.fast_ms] * 3 + [args.fast_ms * args.slow_factor]
    ports = [free_port() for _ in delays]
    procs = [start([sys.executable, "-c", UPSTREAM, str(p), str(d)], stdout=subprocess.DEVNULL)
             for p, d in zip(ports, delays)]
    results: dict[str, list[float]] = {"round_robin": [], "p2c_ewma": []}
    try:
        for p in ports:
            wait_port(p)
        print("4 upstreams: 3 x %.1f ms, 1 x %.1f ms; %d req/s open model, %d round(s) x %d s"
              % (args.fast_ms, delays[-1], args.rate, args.rounds, args.duration), flush=True)
        for r in range(args.rounds):
            for lb in results:  # interleaved: drift on the machine hits both alike
                summary = run_once(args, lb, ports, tmp)
                results[lb].append(p99_ms(summary))
                print("  round %d %-12s p99 %8.2f ms" % (r + 1, lb, results[lb][-1]), flush=True)
    finally:
        for p in procs:
            stop(p)
    rr = statistics.median(results["round_robin"])
    p2c = statistics.median(results["p2c_ewma"])
    print("p99 (median of rounds): round_robin %.2f ms, p2c_ewma %.2f ms, ratio %.1fx"
          % (rr, p2c, rr / p2c if p2c else float("inf")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
