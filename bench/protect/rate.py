"""Rate limiting side by side (bench/protect/run.py's first part): ficus `rate_limit` against
nginx `limit_req` and HAProxy stick tables, configured the same way (a per-key GCRA-like limit,
the key from the X-Api-Key header), each with its unlimited twin.

- Overhead: wrk sends /small with X-Api-Key drawn from 10,000 keys; the limit is far above the
  load, so every request is allowed and the difference to the twin is the limiter's cost.
  Throughput and CPU per request (the proxy's utime+stime over the wrk run) per configuration.
- Accuracy: one key limited to --limit-rate req/s with burst --limit-burst, hammered by wrk
  (closed loop, 16 connections); what got through (2xx) against rate x elapsed + burst.

One worker each, pinned as bench/proxy/run.py pins proxies (whose helpers this uses).
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import run as pb  # bench/proxy/run.py

KEYS_LUA = """
math.randomseed(42)
request = function()
  return wrk.format(nil, nil, {["X-Api-Key"] = "key-" .. math.random(1, 10000)})
end
"""

FICUS = """
workers: 1
data_dir: {d}/{name}-data
log_level: warn
admin: {{ listen: 127.0.0.1:{admin} }}
listeners: [{{ name: bench, listen: 127.0.0.1:{port} }}]
clusters: [{{ name: backend, endpoints: [127.0.0.1:{backend}] }}]
routes: [{{ name: all, match: {{ path_prefix: / }}, cluster: backend{extra} }}]
"""
FICUS_LIMIT = (", rate_limit: {{ name: per-key, key: 'header:X-Api-Key', rate: {rate}/s, "
               "burst: {burst} }}")

NGINX = """
worker_processes 1; pid {d}/{name}.pid; error_log {d}/{name}.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off; keepalive_requests 100000000;
  client_body_temp_path {d}/{name}1; proxy_temp_path {d}/{name}2; fastcgi_temp_path {d}/{name}3;
  uwsgi_temp_path {d}/{name}4; scgi_temp_path {d}/{name}5;
  {zone}
  upstream backend {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      {limit}
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
    }}
  }}
}}
"""
NGINX_ZONE = "limit_req_zone $http_x_api_key zone=perkey:64m rate={rate}r/s;"
NGINX_LIMIT = "limit_req zone=perkey burst={burst} nodelay; limit_req_status 429;"

HAPROXY = """
global
    nbthread 1
    maxconn 8192
defaults
    mode http
    maxconn 8192
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend bench
    bind 127.0.0.1:{port}
{limit}
    default_backend backend
backend backend
    server b1 127.0.0.1:{backend}
"""
# A sliding one-second request rate per key: HAProxy's way to say "rate/s" (no burst knob).
HAPROXY_LIMIT = """    stick-table type string len 32 size 1m expire 10s store http_req_rate(1s)
    http-request track-sc0 req.hdr(X-Api-Key)
    http-request deny deny_status 429 if {{ sc_http_req_rate(0) gt {rate} }}"""

UNLIMITED_RATE, UNLIMITED_BURST = 100_000_000, 1_000_000


def start_all(tmp: Path, ficus: str, backend: int, rate: int, burst: int) -> dict:
    """name -> (Server, port) for the six configurations at this limit."""
    out = {}
    for name, extra in (("ficus", ""), ("ficus-limit", FICUS_LIMIT.format(rate=rate,
                                                                         burst=burst))):
        port, admin = pb.free_port(), pb.free_port()
        conf = tmp / f"{name}.yaml"
        conf.write_text(FICUS.format(d=tmp, name=name, admin=admin, port=port, backend=backend,
                                     extra=extra))
        out[name] = (start(name, [ficus, "run", "-c", str(conf)], tmp, port), port)
    for name, zone, limit in (("nginx", "", ""),
                              ("nginx-limit", NGINX_ZONE.format(rate=rate),
                               NGINX_LIMIT.format(burst=burst))):
        port = pb.free_port()
        conf = tmp / f"{name}.conf"
        conf.write_text(NGINX.format(d=tmp, name=name, port=port, backend=backend, zone=zone,
                                     limit=limit))
        out[name] = (start(name, [pb.tool("nginx"), "-p", f"{tmp}/", "-c", str(conf), "-g",
                                  "daemon off;"], tmp, port), port)
    for name, limit in (("haproxy", ""), ("haproxy-limit", HAPROXY_LIMIT.format(rate=rate))):
        port = pb.free_port()
        conf = tmp / f"{name}.cfg"
        conf.write_text(HAPROXY.format(port=port, backend=backend, limit=limit))
        out[name] = (start(name, [pb.tool("haproxy"), "-db", "-f", str(conf)], tmp, port), port)
    return out


def start(name: str, argv: list[str], tmp: Path, port: int) -> pb.Server:
    s = pb.Server(name, ["taskset", "-c", str(pb.PROXY_CPU)] + argv, tmp / f"{name}.log")
    pb.wait_accepting(s, port)
    return s


def stop_all(proxies: dict) -> None:
    for server, _ in proxies.values():
        server.stop()


def measure(server: pb.Server, port: int, connections: int, duration: int,
            extra: tuple[str, ...]) -> dict:
    before = pb.cpu_ticks(server.pids())
    res, _ = pb.run_wrk(f"http://127.0.0.1:{port}/small", connections, duration, extra=extra)
    ticks = pb.cpu_ticks(server.pids()) - before
    res["cpu_us"] = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(res["requests"], 1)
    return res


def overhead(tmp: Path, ficus: str, backend: int, rounds: int, duration: int) -> dict:
    lua = tmp / "keys.lua"
    lua.write_text(KEYS_LUA)
    proxies = start_all(tmp, ficus, backend, UNLIMITED_RATE, UNLIMITED_BURST)
    runs: dict[str, list[dict]] = {n: [] for n in proxies}
    try:
        for name, (server, port) in proxies.items():  # warm-up
            measure(server, port, 50, 1, ("-s", str(lua)))
        for _ in range(rounds):
            for name, (server, port) in proxies.items():
                runs[name].append(measure(server, port, 50, duration, ("-s", str(lua))))
    finally:
        stop_all(proxies)
    med = {n: {"rps": statistics.median(r["rps"] for r in rs),
               "cpu_us": statistics.median(r["cpu_us"] for r in rs),
               "non_2xx": sum(r["non_2xx"] for r in rs)} for n, rs in runs.items()}
    print(f"\nrate limit overhead: /small, wrk -c50, X-Api-Key from 10,000 keys, limit never "
          f"reached; {rounds} rounds x {duration} s (medians)")
    print(f"{'proxy':15} {'req/s':>9} {'CPU us/req':>11} {'non-2xx':>8}")
    for n, m in med.items():
        print(f"{n:15} {m['rps']:9.0f} {m['cpu_us']:11.2f} {m['non_2xx']:8d}")
    for peer in ("ficus", "nginx", "haproxy"):
        print(f"  {peer}: with limit / without, throughput "
              f"{med[peer + '-limit']['rps'] / med[peer]['rps']:.3f}, CPU per request "
              f"{med[peer + '-limit']['cpu_us'] / med[peer]['cpu_us']:.3f}")
    for peer in ("nginx", "haproxy"):
        print(f"  ficus-limit vs {peer}-limit: throughput "
              f"{med['ficus-limit']['rps'] / med[peer + '-limit']['rps']:.2f}x, CPU per request "
              f"{med['ficus-limit']['cpu_us'] / med[peer + '-limit']['cpu_us']:.2f}x")
    return med


def accuracy(tmp: Path, ficus: str, backend: int, rounds: int, duration: int, rate: int,
             burst: int) -> dict:
    proxies = {n: v for n, v in start_all(tmp, ficus, backend, rate, burst).items()
               if n.endswith("-limit")}
    got: dict[str, list[float]] = {n: [] for n in proxies}
    try:
        for r in range(rounds):
            for name, (server, port) in proxies.items():
                # A fresh key per run: its budget starts full (burst available).
                key = f"hammer-{r}"
                res = measure(server, port, 16, duration, ("-H", f"X-Api-Key: {key}"))
                allowed = res["requests"] - res["non_2xx"]
                expected = rate * res["seconds"] + (burst if not name.startswith("haproxy")
                                                    else 0)
                got[name].append(allowed / expected)
    finally:
        stop_all(proxies)
    print(f"\nrate limit accuracy: one key at {rate}/s burst {burst} (HAProxy: {rate} in any "
          f"sliding second, no burst), wrk -c16 closed loop, {rounds} rounds x {duration} s")
    print(f"{'proxy':15} {'allowed / (rate x t + burst)':>30}  runs")
    for n, xs in got.items():
        print(f"{n:15} {statistics.median(xs):30.4f}  "
              + " ".join(f"{x:.4f}" for x in xs))
    return {n: statistics.median(xs) for n, xs in got.items()}
