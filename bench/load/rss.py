#!/usr/bin/env python3
"""Memory of a long `ficus load` run: RSS sampled every few seconds must stay flat.

Starts the nginx backend of bench/proxy/run.py, runs `ficus load` (open model, default
10,000 req/s for 10 minutes) against it, samples the generator's VmRSS every --interval
seconds, and prints the samples, the growth after warm-up (the first sample at or after
--warmup seconds) and a verdict: flat when the growth is under --max-growth-kib. The
generator keeps histograms and per-second counters, never per-request records, so the
expected growth is a few bytes per second of run.

    python3 bench/load/rss.py                      # the 10-minute run (~10.5 min)
    python3 bench/load/rss.py --duration 30        # check the mechanism

Exit status: 0 flat, 1 grew, 2 could not run. Python 3 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "proxy"))
import run as proxy_bench  # noqa: E402

# The backend nginx on CPU 0, as in bench/load/run.py (the proxy bench's default puts it on 1).
proxy_bench.BACKEND_CPU = proxy_bench.LOAD_CPU


def rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", default=str(ROOT / "build" / "release" / "apps" / "ficus"))
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--duration", type=int, default=600, help="seconds")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds before the baseline")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=256)
    ap.add_argument("--max-growth-kib", type=int, default=1024)
    args = ap.parse_args()
    proxy_bench.require_tools(["nginx"])
    if not os.access(args.ficus, os.X_OK):
        print(f"ficus binary not found at {args.ficus} (make build)", file=sys.stderr)
        return 2
    bench = proxy_bench.Bench(argparse.Namespace(ficus=args.ficus))
    samples: list[tuple[float, int]] = []
    try:
        bench.start_backend()
        url = f"http://127.0.0.1:{bench.ports['backend']}/small"
        argv = [args.ficus, "load", url, "--rate", str(args.rate), "--duration",
                f"{args.duration}s", "-t", str(args.threads), "-c", str(args.connections),
                "--json"]
        print("$ " + " ".join(argv), flush=True)
        # Output into files, not pipes: the JSON summary of a 10-minute run (one entry per
        # second) is larger than a pipe's 64 KiB, and a pipe nobody reads until the process
        # exits blocks its final write forever (that is how the first 10-minute run "overran").
        out_file = tempfile.TemporaryFile(mode="w+")
        err_file = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(argv, stdout=out_file, stderr=err_file, text=True)
        t0 = time.monotonic()
        next_sample = t0
        # The run must end by its duration + the request timeout (10 s) + a little grace.
        deadline = t0 + args.duration + 10 + 15
        while proc.poll() is None:
            now = time.monotonic()
            if now > deadline:
                proc.kill()
                proc.wait()
                print(f"ficus load still running {now - t0:.0f} s into a {args.duration} s run: "
                      "killed", file=sys.stderr)
                return 1
            if now >= next_sample:
                kib = rss_kib(proc.pid)
                if kib is not None:
                    samples.append((now - t0, kib))
                    print(f"  t={now - t0:7.1f}s  rss {kib:7d} KiB", flush=True)
                next_sample += args.interval
            time.sleep(0.05)
        proc.wait()
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    finally:
        bench.stop_all()
    if proc.returncode != 0:
        print(f"ficus load exited {proc.returncode}: {err}", file=sys.stderr)
        return 2
    r = json.loads(out)
    print(f"sent {r['requests']['sent']}, achieved {r['achieved_rate']:.1f} req/s, dropped "
          f"{r['requests']['dropped']}, errors {sum(r['errors'].values())}, corrected p99 "
          f"{r['latency_ms']['corrected']['p99']:.3f} ms")
    steady = [s for s in samples if s[0] >= args.warmup]
    if len(steady) < 2:
        print("too few samples after warm-up", file=sys.stderr)
        return 2
    base, last = steady[0][1], steady[-1][1]
    peak = max(k for _, k in steady)
    growth = last - base
    span = steady[-1][0] - steady[0][0]
    print(f"RSS after warm-up: {base} KiB at t={steady[0][0]:.0f}s, {last} KiB at "
          f"t={steady[-1][0]:.0f}s, peak {peak} KiB: growth {growth:+d} KiB over {span:.0f} s "
          f"({growth / span * 60:+.1f} KiB/min)")
    flat = peak - base < args.max_growth_kib
    print("flat" if flat else f"GREW by more than {args.max_growth_kib} KiB")
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
