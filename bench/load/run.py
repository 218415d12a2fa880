#!/usr/bin/env python3
"""`ficus load --closed` vs wrk against the same nginx backend (`make bench`, after the proxy
bench).

Both generators send the same request (wrk is given ficus's User-Agent) with the same threads,
connections and duration, pinned to the same CPU (1; the backend nginx runs on CPU 0), and run
in interleaved rounds whose order alternates (wrk, ficus | ficus, wrk | ...) so drift on a
shared machine hits both alike. Prints each run, the medians and the ratios the issue sets as
targets: req/s >= 1.0 x wrk, p50 within 20 % of wrk's. CPU time per request of each generator, and of the backend while each generator drove
it, are shown too: the backend is usually the bottleneck, so its cost per request is what the
req/s follow.

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

# The generator under test runs on CPU 1; the backend nginx on CPU 0 or, in the shared layout,
# on CPU 1 too (run_layout sets proxy_bench.BACKEND_CPU).
GEN_CPU = 1
# `ficus load` names itself in a User-Agent header; wrk sends none. wrk gets the same header so
# both put the same bytes on the wire: nginx looks the agent up for browser quirks, about 0.1 us
# per request (0.7-0.9 % of its req/s when it is the bottleneck, measured with 20 paired rounds).
SAME_REQUEST_HEADERS = ["-H", "User-Agent: ficus-load"]


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def backend_ticks(bench: proxy_bench.Bench) -> int:
    return proxy_bench.cpu_ticks(bench.servers["backend"].pids())


def run_wrk(url: str, threads: int, connections: int, duration: int) -> dict:
    argv = ["taskset", "-c", str(GEN_CPU), proxy_bench.tool("wrk"), f"-t{threads}",
            f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s",
            *SAME_REQUEST_HEADERS, url]
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


LAYOUTS = {
    # The generator alone on its CPU: the single nginx worker is usually the bottleneck, so
    # req/s follow the backend's cost per request and how the generator's timing affects it.
    "separate": proxy_bench.LOAD_CPU,
    # The generator shares the backend's CPU, as on a machine running both: every microsecond
    # the generator spends is taken from the server, so req/s follow the generator's efficiency.
    "shared": GEN_CPU,
}


def run_layout(args: argparse.Namespace, layout: str) -> dict:
    proxy_bench.BACKEND_CPU = LAYOUTS[layout]
    bench = proxy_bench.Bench(argparse.Namespace(ficus=args.ficus))
    runs: dict[str, list[dict]] = {"wrk": [], "ficus": []}
    try:
        bench.start_backend()
        url = f"http://127.0.0.1:{bench.ports['backend']}/small"
        print(f"load generators vs nginx (100 B), layout {layout}: -t{args.threads} "
              f"-c{args.connections} {args.duration}s x {args.rounds} interleaved rounds, "
              f"generator on CPU {GEN_CPU}, backend on CPU {proxy_bench.BACKEND_CPU}", flush=True)
        for i in range(args.rounds):
            for name in (("wrk", "ficus") if i % 2 == 0 else ("ficus", "wrk")):
                t0 = backend_ticks(bench)
                if name == "wrk":
                    r = run_wrk(url, args.threads, args.connections, args.duration)
                else:
                    r = run_ficus(args.ficus, url, args.threads, args.connections,
                                  args.duration)
                r["cpu_us_per_req"] = r["cpu_s"] * 1e6 / max(r["requests"], 1)
                r["backend_us_per_req"] = ((backend_ticks(bench) - t0) / proxy_bench.CLK_TCK
                                           * 1e6 / max(r["requests"], 1))
                runs[name].append(r)
                print(f"  round {i + 1} {name:<6} {r['rps']:>10,.0f} req/s  p50 "
                      f"{r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  "
                      f"{r['cpu_us_per_req']:.2f} CPU-us/req (backend "
                      f"{r['backend_us_per_req']:.2f})"
                      + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
                time.sleep(0.5)
    finally:
        bench.stop_all()
    med = {name: {k: proxy_bench.median([r[k] for r in rs])
                  for k in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "backend_us_per_req")}
           for name, rs in runs.items()}
    print("medians")
    for name, m in med.items():
        print(f"  {name:<6} {m['rps']:>10,.0f} req/s  p50 {m['p50_ms']:.3f} ms  "
              f"p99 {m['p99_ms']:.3f} ms  {m['cpu_us_per_req']:.2f} CPU-us/req (backend "
              f"{m['backend_us_per_req']:.2f})")
    rps_ratio = med["ficus"]["rps"] / med["wrk"]["rps"]
    # Each round's two runs are neighbours in time, so their ratio cancels most of the drift.
    paired = proxy_bench.median([f["rps"] / w["rps"] for f, w in zip(runs["ficus"], runs["wrk"])])
    p50_ratio = med["ficus"]["p50_ms"] / med["wrk"]["p50_ms"]
    print(f"ratios (ficus / wrk), layout {layout}: req/s {rps_ratio:.3f} (target >= 1.0; paired "
          f"by round {paired:.3f}), p50 {p50_ratio:.3f} (target 0.8..1.2), CPU per request "
          f"{med['ficus']['cpu_us_per_req'] / med['wrk']['cpu_us_per_req']:.3f}, backend CPU per "
          f"request {med['ficus']['backend_us_per_req'] / med['wrk']['backend_us_per_req']:.3f}",
          flush=True)
    return {"runs": runs, "medians": med,
            "ratios": {"rps": rps_ratio, "rps_paired": paired, "p50": p50_ratio}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ficus", default=str(ROOT / "build" / "release" / "apps" / "ficus"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5, help="seconds per run")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--layouts", default="separate,shared",
                    help="comma-separated: separate (generator and backend on their own CPUs), "
                         "shared (both on one CPU)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    proxy_bench.require_tools(["wrk", "nginx", "taskset"])
    if not os.access(args.ficus, os.X_OK):
        print(f"ficus binary not found at {args.ficus} (make build)", file=sys.stderr)
        return 2
    layouts = [x for x in args.layouts.split(",") if x]
    unknown = [x for x in layouts if x not in LAYOUTS]
    if unknown:
        print(f"unknown layout {unknown[0]!r} (choose from {', '.join(LAYOUTS)})",
              file=sys.stderr)
        return 2
    results = {layout: run_layout(args, layout) for layout in layouts}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
