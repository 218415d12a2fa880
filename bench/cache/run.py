#!/usr/bin/env python3
"""The cache hit path: ficus (`cache:` route) against nginx `proxy_cache` (with and without
`open_file_cache`), Varnish and, for reference, ficus proxying without a cache. One nginx
backend serves /small (100 B) and /large (16 KiB) with `Cache-Control: max-age=3600`.

Layout (2 cores): every proxy runs one worker (nginx worker_processes 1, ficus workers 1,
Varnish one thread pool) pinned to CPU 1; wrk runs with one thread on CPU 0; the backend (idle
once the cache is warm) is pinned to CPU 1 too. Identical for every peer. Rounds are
interleaved (A B C D A B C D ...); medians over rounds.

Two modes, each printed with `busy` (the proxy's share of its CPU: req/s x CPU per request):
- `pipeline 1`: one request per round trip, as most clients send. A cache hit costs the proxy
  less than wrk spends per request (its send, the loopback delivery it pays for, its read), so
  wrk saturates CPU 0 with the proxy at 60-85 %: req/s then measures the client, and CPU per
  request is the figure that compares proxies.
- `pipeline N` (default 16, wrk sends N requests per write through a Lua script): wrk's cost
  per request drops below the proxy's, the proxy saturates CPU 1 (busy ~100 %), and req/s is
  the proxy's own capacity. The issue's throughput goal (>= 1.3x the best peer) is read here;
  its CPU goal (<= 0.5x nginx proxy_cache's CPU per request) is printed for both modes.

Prints req/s and the proxy's CPU per request (µs, from /proc utime+stime over the wrk run).
Never asserted anywhere.

    python3 bench/cache/run.py [--rounds 3] [--duration 5] [--connections 50]
        [--pipeline 1,16] [--only ficus-cache,nginx-cache-ofc] [--paths /small,/large]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "proxy"))
import run as pb  # noqa: E402  (bench/proxy/run.py: Server, wrk, /proc helpers)

FICUS = HERE.parents[1] / "build" / "release" / "apps" / "ficus"

BACKEND = """
worker_processes 1; pid {d}/backend.pid; error_log {d}/backend.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off; default_type text/plain; etag off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/b1; proxy_temp_path {d}/b2; fastcgi_temp_path {d}/b3;
  uwsgi_temp_path {d}/b4; scgi_temp_path {d}/b5;
  server {{
    listen 127.0.0.1:{port} backlog=4096; root {d}/docroot;
    add_header Cache-Control "max-age=3600";
    location = /small {{ }}
    location = /large {{ }}
  }}
}}
"""

NGINX_CACHE = """
worker_processes 1; pid {d}/{name}.pid; error_log {d}/{name}.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/{name}1; proxy_temp_path {d}/{name}2; fastcgi_temp_path {d}/{name}3;
  uwsgi_temp_path {d}/{name}4; scgi_temp_path {d}/{name}5;
  proxy_cache_path {d}/{name}-cache levels=1:2 keys_zone=c:10m max_size=100m;
  {open_file_cache}
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_cache c; proxy_cache_lock on;
      add_header Cache-Status $upstream_cache_status;
    }}
  }}
}}
"""

FICUS_CONFIG = """
workers: 1
data_dir: {d}/{name}-data
log_level: warn
admin: {{ listen: 127.0.0.1:{admin} }}
listeners: [{{ name: bench, listen: 127.0.0.1:{port} }}]
clusters: [{{ name: backend, endpoints: [127.0.0.1:{backend}] }}]
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: backend{cache} }}]
"""


def start(name, argv, tmp, port):
    s = pb.Server(name, ["taskset", "-c", str(pb.PROXY_CPU)] + argv, tmp / f"{name}.log")
    pb.wait_accepting(s, port)
    return s


PIPELINE_LUA = """
-- wrk sends {depth} requests of the URL's path in one write; it counts each response.
init = function(args)
  local r = {{}}
  for i = 1, {depth} do r[i] = wrk.format(nil, nil) end
  req = table.concat(r)
end
request = function() return req end
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--pipeline", default="1,16",
                    help="comma-separated pipeline depths, one mode each (default 1,16)")
    ap.add_argument("--only", default="",
                    help="comma-separated proxies (ficus-cache, ficus-proxy, nginx-cache, "
                         "nginx-cache-ofc, varnish); default all")
    ap.add_argument("--paths", default="/small,/large")
    ap.add_argument("--ficus", default=str(FICUS))
    ap.add_argument("--ficus-baseline", default="",
                    help="another ficus binary measured beside (ficus-cache-base): before/after")
    args = ap.parse_args()
    pb.require_tools(["nginx", "wrk", "taskset"])
    depths = [int(x) for x in args.pipeline.split(",") if x]
    paths = [x for x in args.paths.split(",") if x]
    only = set(x for x in args.only.split(",") if x)
    wanted = (lambda n: not only or n in only)
    tmp = Path(tempfile.mkdtemp(prefix="ficus-cache-bench-"))
    tmp.chmod(0o755)  # nginx workers (nobody) read the docroot
    (tmp / "docroot").mkdir()
    (tmp / "docroot" / "small").write_bytes(b"x" * 100)
    (tmp / "docroot" / "large").write_bytes(b"y" * 16384)
    scripts = {}
    for depth in depths:
        if depth > 1:
            scripts[depth] = tmp / f"pipeline{depth}.lua"
            scripts[depth].write_text(PIPELINE_LUA.format(depth=depth))
    servers = []
    # As bench/proxy/run.py: idle CPUs poll instead of halting, so waking a proxy that idles
    # often (a cheap one) does not cost the waker several microseconds on this VM.
    idle_polling = pb.hold_idle_polling()
    try:
        backend_port = pb.free_port()
        (tmp / "backend.conf").write_text(BACKEND.format(d=tmp, port=backend_port))
        servers.append(start("backend", [pb.tool("nginx"), "-p", f"{tmp}/", "-c",
                                         str(tmp / "backend.conf"), "-g", "daemon off;"],
                             tmp, backend_port))
        proxies = {}
        ficus_runs = [("ficus-cache", ", cache: {}", args.ficus), ("ficus-proxy", "", args.ficus)]
        if args.ficus_baseline:
            ficus_runs.insert(1, ("ficus-cache-base", ", cache: {}", args.ficus_baseline))
        for name, cache, binary in ficus_runs:
            if not wanted(name):
                continue
            port, admin = pb.free_port(), pb.free_port()
            conf = tmp / f"{name}.yaml"
            conf.write_text(FICUS_CONFIG.format(d=tmp, name=name, admin=admin, port=port,
                                                backend=backend_port, cache=cache))
            proxies[name] = (start(name, [binary, "run", "-c", str(conf)], tmp, port), port)
        for name, ofc in (("nginx-cache", ""),
                          ("nginx-cache-ofc", "open_file_cache max=1000 inactive=600s;")):
            if not wanted(name):
                continue
            port = pb.free_port()
            conf = tmp / f"{name}.conf"
            conf.write_text(NGINX_CACHE.format(d=tmp, name=name, port=port, backend=backend_port,
                                               open_file_cache=ofc))
            proxies[name] = (start(name, [pb.tool("nginx"), "-p", f"{tmp}/", "-c", str(conf),
                                          "-g", "daemon off;"], tmp, port), port)
        if shutil.which("varnishd") and wanted("varnish"):
            port = pb.free_port()
            vcl = tmp / "default.vcl"
            vcl.write_text('vcl 4.1; backend b { .host = "127.0.0.1"; .port = "%d"; }\n'
                           % backend_port)
            proxies["varnish"] = (start("varnish", [
                "varnishd", "-F", "-a", f"127.0.0.1:{port}", "-f", str(vcl), "-n",
                str(tmp / "varnish"), "-s", "malloc,100m", "-p", "thread_pools=1"], tmp, port),
                port)
        servers += [s for s, _ in proxies.values()]
        keys = [(n, p, d) for d in depths for p in paths for n in proxies]
        results = {k: [] for k in keys}
        for path in paths:
            for name, (server, port) in proxies.items():  # warm: the first request fills
                pb.run_wrk(f"http://127.0.0.1:{port}{path}", 4, 1)
        for depth in depths:
            extra = ("-s", str(scripts[depth])) if depth > 1 else ()
            for path in paths:
                for r in range(args.rounds):
                    for name, (server, port) in proxies.items():
                        pids = server.pids()
                        before = pb.cpu_ticks(pids)
                        res, wrk_cpu = pb.run_wrk(f"http://127.0.0.1:{port}{path}",
                                                  args.connections, args.duration, extra=extra)
                        ticks = pb.cpu_ticks(pids) - before
                        n = max(res["requests"], 1)
                        cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / n
                        wrk_us = wrk_cpu * 1e6 / n
                        results[(name, path, depth)].append(
                            (res["rps"], cpu_us, res["non_2xx"], wrk_us))
        print(f"cache hit path, {args.rounds} rounds x {args.duration} s, wrk -t1 "
              f"-c{args.connections} on CPU {pb.LOAD_CPU}, one worker per proxy on CPU "
              f"{pb.PROXY_CPU} (medians); idle "
              f"{'polling' if idle_polling else 'halting (cpu_dma_latency not writable)'}")
        # busy: the share of its CPU the proxy used (req/s x CPU per request). Well under 100 %
        # means the proxy was not the bottleneck (wrk, alone on the other CPU, was), so req/s
        # then measures the client, and CPU per request is the figure that compares proxies.
        print(f"{'proxy':16} {'path':7} {'pipe':>4} {'req/s':>10} {'CPU us/req':>11} "
              f"{'busy':>6} {'wrk us/req':>11} {'non-2xx':>8}")
        med = {}
        for (name, path, depth), runs in results.items():
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            wrk_us = statistics.median(r[3] for r in runs)
            med[(name, path, depth)] = (rps, cpu)
            print(f"{name:16} {path:7} {depth:4d} {rps:10.0f} {cpu:11.2f} "
                  f"{rps * cpu / 1e4:5.0f}% {wrk_us:11.2f} {sum(r[2] for r in runs):8d}")
        # The goals: throughput >= 1.3x the best peer, CPU per request <= 0.5x nginx's.
        peers = [n for n in proxies if not n.startswith("ficus")]
        if "ficus-cache" in proxies and peers:
            for depth in depths:
                for path in paths:
                    f_rps, f_cpu = med[("ficus-cache", path, depth)]
                    best = max(peers, key=lambda n: med[(n, path, depth)][0])
                    line = (f"{path:7} pipeline {depth:2d}: ficus-cache/{best} throughput "
                            f"{f_rps / med[(best, path, depth)][0]:.2f}x; CPU per request vs ")
                    line += ", ".join(f"{n} {f_cpu / med[(n, path, depth)][1]:.2f}x"
                                      for n in peers)
                    print(line)
                    if ("ficus-cache-base", path, depth) in med:
                        b_rps, b_cpu = med[("ficus-cache-base", path, depth)]
                        print(f"{path:7} pipeline {depth:2d}: ficus-cache/ficus-cache-base "
                              f"throughput {f_rps / b_rps:.2f}x, CPU per request "
                              f"{f_cpu / b_cpu:.2f}x")
        return 0
    finally:
        for s in servers:
            s.stop()
        if idle_polling:
            idle_polling.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pb.BenchError as e:
        print(f"bench/cache/run.py: error: {e}", file=sys.stderr)
        sys.exit(1)
