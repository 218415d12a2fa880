#!/usr/bin/env python3
"""The cache hit path: ficus (`cache:` route) against nginx `proxy_cache` (with and without
`open_file_cache`) and, for reference, ficus proxying without a cache. One nginx backend serves
/small (100 B) and /large (16 KiB) with `Cache-Control: max-age=3600`; every proxy runs one
worker pinned to CPU 1, wrk runs on CPU 0 (the layout of bench/proxy/run.py, whose helpers this
reuses). Rounds are interleaved (A B C D A B C D ...). Prints req/s and the proxy's CPU per
request (µs, from /proc utime+stime over the wrk run), medians over rounds. Varnish is measured
when `varnishd` is installed. Never asserted anywhere.

    python3 bench/cache/run.py [--rounds 3] [--duration 5] [--connections 50]
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--ficus", default=str(FICUS))
    args = ap.parse_args()
    pb.require_tools(["nginx", "wrk", "taskset"])
    tmp = Path(tempfile.mkdtemp(prefix="ficus-cache-bench-"))
    tmp.chmod(0o755)  # nginx workers (nobody) read the docroot
    (tmp / "docroot").mkdir()
    (tmp / "docroot" / "small").write_bytes(b"x" * 100)
    (tmp / "docroot" / "large").write_bytes(b"y" * 16384)
    servers = []
    try:
        backend_port = pb.free_port()
        (tmp / "backend.conf").write_text(BACKEND.format(d=tmp, port=backend_port))
        servers.append(start("backend", [pb.tool("nginx"), "-p", f"{tmp}/", "-c",
                                         str(tmp / "backend.conf"), "-g", "daemon off;"],
                             tmp, backend_port))
        proxies = {}
        for name, cache in (("ficus-cache", ", cache: {}"), ("ficus-proxy", "")):
            port, admin = pb.free_port(), pb.free_port()
            conf = tmp / f"{name}.yaml"
            conf.write_text(FICUS_CONFIG.format(d=tmp, name=name, admin=admin, port=port,
                                                backend=backend_port, cache=cache))
            proxies[name] = (start(name, [args.ficus, "run", "-c", str(conf)], tmp, port), port)
        for name, ofc in (("nginx-cache", ""),
                          ("nginx-cache-ofc", "open_file_cache max=1000 inactive=600s;")):
            port = pb.free_port()
            conf = tmp / f"{name}.conf"
            conf.write_text(NGINX_CACHE.format(d=tmp, name=name, port=port, backend=backend_port,
                                               open_file_cache=ofc))
            proxies[name] = (start(name, [pb.tool("nginx"), "-p", f"{tmp}/", "-c", str(conf),
                                          "-g", "daemon off;"], tmp, port), port)
        if shutil.which("varnishd"):
            port = pb.free_port()
            vcl = tmp / "default.vcl"
            vcl.write_text('vcl 4.1; backend b { .host = "127.0.0.1"; .port = "%d"; }\n'
                           % backend_port)
            proxies["varnish"] = (start("varnish", [
                "varnishd", "-F", "-a", f"127.0.0.1:{port}", "-f", str(vcl), "-n",
                str(tmp / "varnish"), "-s", "malloc,100m", "-p", "thread_pools=1"], tmp, port),
                port)
        servers += [s for s, _ in proxies.values()]
        results = {(n, p): [] for n in proxies for p in ("/small", "/large")}
        for path in ("/small", "/large"):
            for name, (server, port) in proxies.items():  # warm: the first request fills
                pb.run_wrk(f"http://127.0.0.1:{port}{path}", 4, 1)
            for r in range(args.rounds):
                for name, (server, port) in proxies.items():
                    before = pb.cpu_ticks(server.pids())
                    res, _ = pb.run_wrk(f"http://127.0.0.1:{port}{path}", args.connections,
                                        args.duration)
                    ticks = pb.cpu_ticks(server.pids()) - before
                    cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(res["requests"], 1)
                    results[(name, path)].append((res["rps"], cpu_us, res["non_2xx"]))
        print(f"cache hit path, {args.rounds} rounds x {args.duration} s, "
              f"wrk -t1 -c{args.connections}, one pinned worker each (medians)")
        # busy: the share of its CPU the proxy used (req/s x CPU per request). Well under 100 %
        # means the proxy was not the bottleneck (wrk, alone on the other CPU, was), so req/s
        # then measures the client, and CPU per request is the figure that compares proxies.
        print(f"{'proxy':18} {'path':7} {'req/s':>10} {'CPU us/req':>11} {'busy':>6} "
              f"{'non-2xx':>8}")
        med = {}
        for (name, path), runs in results.items():
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            med[(name, path)] = (rps, cpu)
            print(f"{name:18} {path:7} {rps:10.0f} {cpu:11.1f} {rps * cpu / 1e4:5.0f}% "
                  f"{sum(r[2] for r in runs):8d}")
        # The goals: throughput >= 1.3x the best peer, CPU per request <= 0.5x nginx's.
        peers = [n for n in proxies if not n.startswith("ficus")]
        for path in ("/small", "/large"):
            f_rps, f_cpu = med[("ficus-cache", path)]
            best = max(peers, key=lambda n: med[(n, path)][0])
            line = (f"{path:7} ficus-cache/{best} throughput {f_rps / med[(best, path)][0]:.2f}x; "
                    "CPU per request vs ")
            line += ", ".join(f"{n} {f_cpu / med[(n, path)][1]:.2f}x" for n in peers)
            print(line)
        return 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pb.BenchError as e:
        print(f"bench/cache/run.py: error: {e}", file=sys.stderr)
        sys.exit(1)
