#!/usr/bin/env python3
"""Response compression: ficus (`compress:` route) against nginx's gzip filter at the same
level, on a 64 KiB JSON body that one nginx backend serves (identity, `Cache-Control:
no-store`, so every request is compressed anew: the codec's cost, not a cache's). Each proxy
runs one worker pinned to CPU 1, wrk on CPU 0 with `Accept-Encoding` set (the layout of
bench/proxy/run.py, whose helpers this reuses); rounds are interleaved. Prints req/s, the
proxy's CPU per request (µs, /proc utime+stime over the wrk run) and the bytes on the wire per
response, medians over rounds, and ficus/nginx ratios for gzip 1 and gzip 6. brotli 4 and
zstd 3 are ficus's alone (nginx-light has no brotli or zstd filter). Never asserted anywhere.

    python3 bench/compress/run.py [--rounds 3] [--duration 3] [--connections 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "proxy"))
import run as pb  # noqa: E402  (bench/proxy/run.py: Server, wrk, /proc helpers)

FICUS = HERE.parents[1] / "build" / "release" / "apps" / "ficus"
BODY_BYTES = 64 * 1024

BACKEND = """
worker_processes 1; pid {d}/backend.pid; error_log {d}/backend.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off; default_type application/json; etag off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/b1; proxy_temp_path {d}/b2; fastcgi_temp_path {d}/b3;
  uwsgi_temp_path {d}/b4; scgi_temp_path {d}/b5;
  server {{
    listen 127.0.0.1:{port} backlog=4096; root {d}/docroot;
    add_header Cache-Control "no-store";
    location = /data.json {{ }}
  }}
}}
"""

NGINX_GZIP = """
worker_processes 1; pid {d}/{name}.pid; error_log {d}/{name}.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/{name}1; proxy_temp_path {d}/{name}2; fastcgi_temp_path {d}/{name}3;
  uwsgi_temp_path {d}/{name}4; scgi_temp_path {d}/{name}5;
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  gzip on; gzip_comp_level {level}; gzip_types application/json; gzip_proxied any;
  gzip_min_length 1024; gzip_vary on;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
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
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: backend,
            compress: {{ codings: [{coding}], gzip_level: {level}, brotli_level: {level},
                         zstd_level: {level} }} }}]
"""

# name -> (server kind, coding, level)
CONFIGS = {
    "ficus-gzip1": ("ficus", "gzip", 1),
    "nginx-gzip1": ("nginx", "gzip", 1),
    "ficus-gzip6": ("ficus", "gzip", 6),
    "nginx-gzip6": ("nginx", "gzip", 6),
    "ficus-br4": ("ficus", "br", 4),
    "ficus-zstd3": ("ficus", "zstd", 3),
}


def json_body(n: int) -> bytes:
    parts, size, i = [], 0, 0
    while size < n:
        p = ('{"id":%d,"name":"customer %d","email":"user%d@example.com","active":%s,'
             '"balance":%d.%02d,"tags":["t%d","t%d"]},' % (i, i % 331, i, "true" if i % 3 else
                                                            "false", i * 37 % 10000, i % 100,
                                                            i % 7, i % 13))
        parts.append(p)
        size += len(p)
        i += 1
    return ("[" + "".join(parts))[:n - 1].encode() + b"]"


def wire_bytes(port: int, coding: str) -> int:
    """The body bytes of one response as sent (chunk framing removed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /data.json HTTP/1.1\r\nHost: b\r\nAccept-Encoding: %s\r\n"
                  b"Connection: close\r\n\r\n" % coding.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    fields = head.decode("latin-1").lower()
    if ("content-encoding: " + coding) not in fields:
        raise pb.BenchError(f"port {port}: no Content-Encoding: {coding} in\n{fields}")
    if "transfer-encoding: chunked" not in fields:
        return len(body)
    size = 0
    while True:
        line, _, body = body.partition(b"\r\n")
        n = int(line.split(b";")[0], 16)
        if n == 0:
            return size
        size += n
        body = body[n + 2:]


def start(name, argv, tmp, port):
    s = pb.Server(name, ["taskset", "-c", str(pb.PROXY_CPU)] + argv, tmp / f"{name}.log")
    pb.wait_accepting(s, port)
    return s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--ficus", default=str(FICUS))
    args = ap.parse_args()
    pb.require_tools(["nginx", "wrk", "taskset"])
    if not Path(args.ficus).exists():
        raise pb.BenchError(f"no ficus binary at {args.ficus} (make build)")
    tmp = Path(tempfile.mkdtemp(prefix="ficus-compress-bench-"))
    tmp.chmod(0o755)  # nginx workers (nobody) read the docroot
    (tmp / "docroot").mkdir()
    (tmp / "docroot" / "data.json").write_bytes(json_body(BODY_BYTES))
    servers = []
    try:
        backend_port = pb.free_port()
        (tmp / "backend.conf").write_text(BACKEND.format(d=tmp, port=backend_port))
        servers.append(start("backend", [pb.tool("nginx"), "-p", f"{tmp}/", "-c",
                                         str(tmp / "backend.conf"), "-g", "daemon off;"],
                             tmp, backend_port))
        proxies = {}
        for name, (kind, coding, level) in CONFIGS.items():
            port = pb.free_port()
            if kind == "ficus":
                conf = tmp / f"{name}.yaml"
                conf.write_text(FICUS_CONFIG.format(d=tmp, name=name, admin=pb.free_port(),
                                                    port=port, backend=backend_port,
                                                    coding=coding, level=level))
                argv = [args.ficus, "run", "-c", str(conf)]
            else:
                conf = tmp / f"{name}.conf"
                conf.write_text(NGINX_GZIP.format(d=tmp, name=name, port=port,
                                                  backend=backend_port, level=level))
                argv = [pb.tool("nginx"), "-p", f"{tmp}/", "-c", str(conf), "-g", "daemon off;"]
            proxies[name] = (start(name, argv, tmp, port), port, coding)
        servers += [s for s, _, _ in proxies.values()]
        wire = {name: wire_bytes(port, coding) for name, (_, port, coding) in proxies.items()}
        results = {name: [] for name in proxies}
        for name, (_, port, coding) in proxies.items():  # warm-up
            pb.run_wrk(f"http://127.0.0.1:{port}/data.json", 4, 1,
                       headers=(f"Accept-Encoding: {coding}",))
        for _ in range(args.rounds):
            for name, (server, port, coding) in proxies.items():
                before = pb.cpu_ticks(server.pids())
                res, _ = pb.run_wrk(f"http://127.0.0.1:{port}/data.json", args.connections,
                                    args.duration, headers=(f"Accept-Encoding: {coding}",))
                ticks = pb.cpu_ticks(server.pids()) - before
                cpu_us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(res["requests"], 1)
                results[name].append((res["rps"], cpu_us, res["non_2xx"]))
        print(f"compression, {BODY_BYTES // 1024} KiB JSON, {args.rounds} rounds x "
              f"{args.duration} s, wrk -t1 -c{args.connections}, one pinned worker each "
              "(medians)")
        # busy: the share of its CPU the proxy used (req/s x CPU per request).
        print(f"{'proxy':14} {'req/s':>9} {'CPU us/req':>11} {'busy':>6} {'wire B':>8} "
              f"{'ratio':>6} {'non-2xx':>8}")
        med = {}
        for name, runs in results.items():
            rps = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            med[name] = (rps, cpu)
            print(f"{name:14} {rps:9.0f} {cpu:11.1f} {rps * cpu / 1e4:5.0f}% {wire[name]:8d} "
                  f"{BODY_BYTES / wire[name]:6.2f} {sum(r[2] for r in runs):8d}")
        for level in (1, 6):
            f, n = med[f"ficus-gzip{level}"], med[f"nginx-gzip{level}"]
            print(f"gzip {level}: ficus/nginx throughput {f[0] / n[0]:.2f}x, CPU per request "
                  f"{f[1] / n[1]:.2f}x, wire bytes {wire[f'ficus-gzip{level}']} vs "
                  f"{wire[f'nginx-gzip{level}']}")
        return 0
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pb.BenchError as e:
        print(f"bench/compress/run.py: error: {e}", file=sys.stderr)
        sys.exit(1)
