#!/usr/bin/env python3
"""Losing an endpoint under load: ficus vs HAProxy vs nginx, in one run.

Three single-process nginx upstreams (`master_process off`, so kill -9 really closes the
listening socket and the keep-alive connections) behind each proxy with one worker/thread;
wrk -t1 -c20 (closed loop) for --duration seconds; at --fault-at seconds the fault is injected:

  kill       one upstream gets SIGKILL
  dead-hung  one upstream gets SIGKILL and another SIGSTOP (the kernel still completes its
             handshakes; nothing answers)

Each round starts fresh upstreams and runs every proxy in turn (interleaved rounds, so drift
on the machine hits all alike). Printed per proxy: requests, errors (non-2xx + socket errors)
and wrk's p99 and max over the run (which contains the fault).

Configurations (what an operator would write; the same retry conditions where the proxy has
them):
  ficus    p2c_ewma, health checks (5 s), retry on connect_failure, reset, timeout, 502, 503,
           max_tries 3, per_try_timeout 1 s, budget 20 %
  haproxy  balance random(2), check inter 5s, retries 3, option redispatch,
           retry-on conn-failure empty-response response-timeout 502 503, timeout server 1s
  nginx    random two least_conn, keepalive 1024, proxy_next_upstream error timeout,
           proxy_next_upstream_tries 3, proxy_read_timeout 1s

    python3 bench/failover/run.py                    # kill, 3 rounds of 10 s
    python3 bench/failover/run.py --case dead-hung --rounds 1

Python 3 standard library; needs nginx, haproxy and wrk. Everything it starts is killed by PID.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FICUS = ROOT / "build" / "release" / "apps" / "ficus"
PROXIES = ["ficus", "haproxy", "nginx"]
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, path: str = "/health", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"nothing answers 200 on port {port}{path}")


class Proc:
    def __init__(self, argv: list[str], log: Path):
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


def start_upstream(tmp: Path, name: str) -> tuple[Proc, int]:
    port = free_port()
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    conf = d / "nginx.conf"
    conf.write_text(f"""
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        location = /health {{ return 200 "ok"; }}
        location / {{ return 200 "ok"; }}
    }}
}}
""")
    p = Proc(["nginx", "-p", f"{d}/", "-c", str(conf), "-e", f"{d}/error.log",
              "-g", "daemon off; master_process off;"], d / "out.log")
    wait_http(port)
    return p, port


def ficus_config(tmp: Path, port: int, admin: int, ups: list[int]) -> list[str]:
    eps = ", ".join(f"127.0.0.1:{p}" for p in ups)
    path = tmp / "ficus.yaml"
    path.write_text(f"""workers: 1
data_dir: {tmp}/ficus-data
log_level: warn
admin: {{ listen: 127.0.0.1:{admin} }}
listeners: [{{ name: bench, listen: 127.0.0.1:{port} }}]
clusters:
  - name: app
    endpoints: [{eps}]
    connect_timeout: 1s
    load_balancer: p2c_ewma
    health_check: {{ path: /health }}
    retry: {{ on: [connect_failure, reset, timeout, "502", "503"], max_tries: 3,
             per_try_timeout: 1s, budget: 20% }}
routes: [{{ name: all, cluster: app }}]
""")
    return [str(ARGS.ficus), "run", "-c", str(path)]


def haproxy_config(tmp: Path, port: int, ups: list[int]) -> list[str]:
    servers = "\n".join(f"    server u{i} 127.0.0.1:{p}" for i, p in enumerate(ups))
    path = tmp / "haproxy.cfg"
    path.write_text(f"""global
    nbthread 1
    maxconn 4096
defaults
    mode http
    maxconn 4096
    option http-keep-alive
    http-reuse always
    timeout connect 1s
    timeout client 60s
    timeout server 1s
    timeout http-keep-alive 60s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout 502 503
frontend f
    bind 127.0.0.1:{port}
    default_backend b
backend b
    balance random(2)
    option httpchk GET /health
    default-server check inter 5s fall 3 rise 2
{servers}
""")
    return ["haproxy", "-db", "-f", str(path)]


def nginx_config(tmp: Path, port: int, ups: list[int]) -> list[str]:
    d = tmp / "proxy"
    d.mkdir(exist_ok=True)
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ups)
    conf = d / "nginx.conf"
    conf.write_text(f"""
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_processes 1;
worker_rlimit_nofile 8192;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
    uwsgi_temp_path {d}; scgi_temp_path {d};
    keepalive_requests 100000000;
    upstream backend {{
        random two least_conn;
{servers}
        keepalive 1024;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout 1s;
            proxy_read_timeout 1s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }}
    }}
}}
""")
    return ["nginx", "-p", f"{d}/", "-c", str(conf), "-e", f"{d}/error.log",
            "-g", "daemon off;"]


def parse_wrk(out: str) -> dict:
    def latency(text: str) -> float:
        m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
        return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")
    r = {"requests": int(re.search(r"(\d+) requests in", out).group(1))}
    m = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    r["p99_ms"] = latency(m.group(1)) if m else float("nan")
    m = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out)
    r["max_ms"] = latency(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    r["errors"] = r["non_2xx"] + r["socket_errors"]
    return r


def one_run(name: str, case: str, tmp: Path) -> dict:
    tmp.mkdir(parents=True)
    ups = [start_upstream(tmp, f"u{i}") for i in range(3)]
    port, admin = free_port(), free_port()
    ports = [p for _, p in ups]
    argv = {"ficus": lambda: ficus_config(tmp, port, admin, ports),
            "haproxy": lambda: haproxy_config(tmp, port, ports),
            "nginx": lambda: nginx_config(tmp, port, ports)}[name]()
    proxy = Proc(argv, tmp / f"{name}.log")
    try:
        wait_http(port, "/")
        subprocess.run(["wrk", "-t1", "-c20", "-d1s", f"http://127.0.0.1:{port}/"],
                       capture_output=True, timeout=30)  # warm the pools
        fault = threading.Timer(ARGS.fault_at, lambda: inject(case, ups))
        fault.start()
        out = subprocess.run(["wrk", "-t1", "-c20", f"-d{ARGS.duration}s", "--latency",
                              "--timeout", "5s", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, timeout=ARGS.duration + 60)
        fault.join()
        return parse_wrk(out.stdout)
    finally:
        proxy.stop()
        for p, _ in ups:
            p.stop()


def inject(case: str, ups: list) -> None:
    ups[1][0].signal(signal.SIGKILL)
    if case == "dead-hung":
        ups[2][0].signal(signal.SIGSTOP)


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=["kill", "dead-hung"], default="kill")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--fault-at", type=float, default=3.0)
    ap.add_argument("--only", default=",".join(PROXIES))
    ap.add_argument("--ficus", default=str(DEFAULT_FICUS))
    ARGS = ap.parse_args()
    names = [n for n in ARGS.only.split(",") if n]
    for tool in ["nginx", "wrk"] + (["haproxy"] if "haproxy" in names else []):
        if not shutil.which(tool):
            print(f"{tool} not found", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="ficus-failover-"))
    results: dict[str, list[dict]] = {n: [] for n in names}
    try:
        for r in range(ARGS.rounds):
            for n in names:
                res = one_run(n, ARGS.case, tmp / f"{r}-{n}")
                results[n].append(res)
                print(f"round {r + 1} {n:8s} requests {res['requests']:8d}  errors "
                      f"{res['errors']:6d} (non-2xx {res['non_2xx']}, socket {res['socket_errors']})"
                      f"  p99 {res['p99_ms']:8.2f} ms  max {res['max_ms']:8.1f} ms", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ncase {ARGS.case}: wrk -t1 -c20 -d{ARGS.duration}s, fault at {ARGS.fault_at:.0f} s, "
          f"{ARGS.rounds} round(s)")
    print(f"{'proxy':8s} {'requests':>10s} {'errors':>8s} {'p99 ms (per round)':>28s}")
    for n in names:
        rs = results[n]
        print(f"{n:8s} {sum(x['requests'] for x in rs):10d} {sum(x['errors'] for x in rs):8d} "
              f"{' '.join('%.2f' % x['p99_ms'] for x in rs):>28s}")
    return 0


ARGS: argparse.Namespace

if __name__ == "__main__":
    sys.exit(main())
