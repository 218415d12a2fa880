#!/usr/bin/env python3
"""`ficus load --closed` vs wrk against the same nginx backend (`make bench`, after the proxy
bench).

Both generators get the same threads, connections and duration, pinned to the same CPU (1;
the backend nginx runs on CPU 0), and run in interleaved rounds (wrk, ficus, wrk, ficus, ...)
so drift on a shared machine hits both alike. Prints each run, the medians and the ratios the
issue sets as targets: req/s >= 1.0 x wrk, p50 within 20 % of wrk's. CPU seconds per request
of each generator are shown too (the efficiency behind the req/s).

Python 3 standard library only; reuses bench/proxy/run.py for the backend and wrk's parser.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "proxy"))
import run as proxy_bench  # noqa: E402  (bench/proxy/run.py)

# The backend nginx gets CPU 0 to itself; the generator under test runs on the other CPU.
proxy_bench.BACKEND_CPU = proxy_bench.LOAD_CPU

GEN_CPU = 1


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_wrk(url: str, threads: int, connections: int, duration: int) -> dict:
    argv = ["taskset", "-c", str(GEN_CPU), proxy_bench.tool("wrk"), f"-t{threads}",
            f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s", url]
    c0 = children_cpu()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if p.returncode != 0:
        raise proxy_bench.BenchError(f"wrk failed: {p.stdout}{p.stderr}")
    r = proxy_bench.parse_wrk(p.stdout)
    return {"rps": r["rps"], "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
            "requests": r["requests"], "cpu_s": children_cpu() - c0,
            "errors": r["non_2xx"] + sum((r["socket_errors"] or {}).values())}


def run_ficus(ficus: str, url: str, threads: int, connections: int, duration: int) -> dict:
    argv = ["taskset", "-c", str(GEN_CPU), ficus, "load", url, "--closed", "-t", str(threads),
            "-c", str(connections), "-d", f"{duration}s", "--timeout", "5s", "--json"]
    c0 = children_cpu()
    p = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 30)
    if p.returncode != 0:
        raise proxy_bench.BenchError(f"ficus load failed ({p.returncode}): {p.stderr}")
    r = json.loads(p.stdout)
    lat = r["latency_ms"]["corrected"]
    errors = sum(r["errors"].values()) + sum(v for k, v in r["status"].items() if int(k) >= 400)
    return {"rps": r["achieved_rate"], "p50_ms": lat["p50"], "p99_ms": lat["p99"],
            "requests": r["requests"]["completed"], "cpu_s": children_cpu() - c0,
            "errors": errors}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", default=str(ROOT / "build" / "release" / "apps" / "ficus"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    proxy_bench.require_tools(["wrk", "nginx", "taskset"])
    if not os.access(args.ficus, os.X_OK):
        print(f"ficus binary not found at {args.ficus} (make build)", file=sys.stderr)
        return 2
    bench = proxy_bench.Bench(argparse.Namespace(ficus=args.ficus))
    runs: dict[str, list[dict]] = {"wrk": [], "ficus": []}
    try:
        bench.start_backend()
        url = f"http://127.0.0.1:{bench.ports['backend']}/small"
        print(f"load generators vs nginx (100 B): -t{args.threads} -c{args.connections} "
              f"{args.duration}s x {args.rounds} interleaved rounds, generator on CPU {GEN_CPU}, "
              f"backend on CPU {proxy_bench.BACKEND_CPU}", flush=True)
        for i in range(args.rounds):
            for name in ("wrk", "ficus"):
                if name == "wrk":
                    r = run_wrk(url, args.threads, args.connections, args.duration)
                else:
                    r = run_ficus(args.ficus, url, args.threads, args.connections,
                                  args.duration)
                r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / max(r["requests"], 1)
                runs[name].append(r)
                print(f"  round {i + 1} {name:<6} {r['rps']:>10,.0f} req/s  p50 "
                      f"{r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                      f"{r['cpu_us_per_req']:.2f} CPU-us/req"
                      + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
                time.sleep(0.5)
    finally:
        bench.stop_all()
    med = {name: {k: proxy_bench.median([r[k] for r in rs])
                  for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req")}
           for name, rs in runs.items()}
    print("medians")
    for name, m in med.items():
        print(f"  {name:<6} {m['rps']:>10,.0f} req/s  p50 {m['p50_ms']:.3f} ms  "
              f"p99 {m['p99_ms']:.3f} ms  {m['cpu_us_per_req']:.2f} CPU-us/req")
    rps_ratio = med["ficus"]["rps"] / med["wrk"]["rps"]
    p50_ratio = med["ficus"]["p50_ms"] / med["wrk"]["p50_ms"]
    print(f"ratios (ficus / wrk): req/s {rps_ratio:.3f} (target >= 1.0), p50 {p50_ratio:.3f} "
          f"(target 0.8..1.2), CPU per request "
          f"{med['ficus']['cpu_us_per_req'] / med['wrk']['cpu_us_per_req']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "medians": med,
                                               "ratios": {"rps": rps_ratio, "p50": p50_ratio}},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
