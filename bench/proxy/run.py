#!/usr/bin/env python3
"""ficus vs nginx vs HAProxy: throughput, latency, CPU per request and memory (`make bench`).

One nginx backend serves /small (100 B) and /large (16 KiB) on a loopback port. Each
configuration -- direct to the backend, through ficus, through nginx, through HAProxy --
is measured with wrk in interleaved rounds (A B C D A B C D ...), so slow drift on the
machine hits every configuration alike. Every proxy runs with one worker/thread pinned to
CPU 1. The default layout gives wrk CPU 0 to itself and pins the backend next to the proxy
on CPU 1, so the load generator always has headroom and req/s is bounded by the proxy's own
cost (`--layout shared-client` puts the backend on wrk's CPU instead, the layout of earlier
runs). See bench/README.md for how to read the output.

Python 3 standard library only. Everything it starts is killed by PID on exit.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import shutil
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
RESULTS_DIR = ROOT / "bench" / "results"

PROXY_CPU = 1    # every proxy under test
LOAD_CPU = 0     # wrk
BACKEND_CPU = 1  # the backend nginx: with the proxy (default layout) or with wrk (--layout)
LAYOUTS = {
    # wrk alone on its CPU: the client is never the bottleneck; proxy + backend share the other
    # CPU, so a cheaper proxy leaves more of it to the backend and serves more req/s.
    "client-alone": 1,
    # wrk + backend on one CPU, the proxy alone on the other. On 2 cores the client side then
    # saturates first (the proxy idles), and req/s measures how the proxy's wake-ups and
    # batching load that CPU rather than the proxy's own capacity.
    "shared-client": 0,
}
CLK_TCK = os.sysconf("SC_CLK_TCK")
# ficus-obs: ficus with metrics + access log (to a file) + 1 % trace sampling exported to an
# OTLP sink (the backend nginx answers POST /v1/traces); its throughput over bare ficus is the
# observability cost (target >= 0.9).
CONFIG_ORDER = ["direct", "ficus", "ficus-obs", "nginx", "haproxy"]
PROXIES = ["ficus", "ficus-obs", "nginx", "haproxy"]
BODIES = {"small": 100, "large": 16 * 1024}  # path -> body bytes
BODY_LABEL = {"small": "100 B", "large": "16 KiB"}

WARMUP_SECONDS = 1
PER_RUN_OVERHEAD = 0.15  # seconds: wrk start-up, /proc sampling, settling


class BenchError(Exception):
    pass


def log(msg: str = "") -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------------------------------------
# /proc helpers

def children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(entry))
    return kids


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants (nginx: master + workers)."""
    kids = children_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids: list[int]) -> int:
    """Sum of utime + stime (fields 14 and 15 of /proc/PID/stat) in clock ticks."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        rest = data[data.rfind(b")") + 2:].split()  # rest[0] is field 3 (state)
        total += int(rest[11]) + int(rest[12])
    return total


def rss_kib(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def pss_kib(pids: list[int]) -> int:
    """Proportional set size: shared pages split between the processes that map them."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


def cpus_allowed(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Cpus_allowed_list:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def cpu_busy_ticks() -> dict[int, tuple[int, int]]:
    """Per CPU: (busy, total) ticks from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if not m:
                continue
            v = [int(x) for x in m.group(2).split()[:8]]
            total = sum(v)
            idle = v[3] + v[4]
            out[int(m.group(1))] = (total - idle, total)
    return out


# ---------------------------------------------------------------------------------------------
# Processes

_libc = ctypes.CDLL(None, use_errno=True)


def hold_idle_polling() -> object | None:
    """Keeps every CPU's idle loop polling (no halt) while the returned file stays open.

    On a VM whose guest idle halts the vCPU (cpuidle haltpoll with guest_halt_poll_ns=0, as on
    the machines this runs on), waking a halted vCPU costs the waker several microseconds. With
    wrk + backend saturating CPU 0, that cost lands on the bottleneck, so a proxy that is idle
    more often (because it needs less CPU per request) is paid back with *less* throughput.
    Holding /dev/cpu_dma_latency at 0 is what tuned's latency-performance profile does; it
    applies to every configuration alike, and idle polling is idle time, so it does not enter
    any process's CPU figures. Returns None when the file cannot be written (not root)."""
    try:
        f = open("/dev/cpu_dma_latency", "wb", buffering=0)
        f.write((0).to_bytes(4, "little"))
        return f
    except OSError:
        return None


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG = 1: if the harness is killed outright, the children get SIGTERM.
    _libc.prctl(1, signal.SIGTERM, 0, 0, 0)


class Server:
    """A process the harness started; killed by PID (and its descendants) on stop()."""

    def __init__(self, name: str, argv: list[str], log_path: Path, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.logf = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT,
            cwd=cwd, start_new_session=True, preexec_fn=_die_with_parent)
        self.pid = self.proc.pid
        self.port: int | None = None

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is not None:
            self.logf.close()
            return
        tree = self.pids()
        for p in tree:
            try:
                os.kill(p, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in tree:  # anything left (including workers of a killed master)
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_accepting(server: Server, port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise BenchError(f"{server.name} exited (status {server.proc.returncode}) before "
                             f"accepting on port {port}; log {server.log_path}:\n{server.log_tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{server.name} did not accept on 127.0.0.1:{port} within {timeout:.0f} s; "
                     f"log {server.log_path}:\n{server.log_tail()}")


def http_get(sock: socket.socket, path: str) -> tuple[int, bytes]:
    """One keep-alive GET on an open socket; returns (status, body). Content-Length only."""
    sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError(f"connection closed before the response head (got {buf[:200]!r})")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
        if k.strip().lower() == "transfer-encoding":
            raise BenchError(f"unexpected Transfer-Encoding: {v.strip()}")
    if length is None:
        raise BenchError(f"response without Content-Length: {lines[0]}")
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise BenchError("connection closed mid-body")
        body += chunk
    return status, body


def check_responses(name: str, port: int, expected: dict[str, bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for path, want in expected.items():
            for _ in range(2):  # twice: the second goes over the same keep-alive connection
                status, body = http_get(s, path)
                if status != 200 or body != want:
                    raise BenchError(f"{name}: GET /{path} returned {status} with "
                                     f"{len(body)} bytes; expected 200 with {len(want)} bytes")


def require_tools(names: list[str]) -> None:
    missing = [n for n in names if shutil.which(n) is None
               and not Path(f"/usr/sbin/{n}").exists()]
    if missing:
        raise BenchError(f"missing tool(s): {', '.join(missing)} -- run `make deps` "
                         f"(scripts/install-deps.sh installs nginx-light, haproxy, wrk)")


def tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def render(template: str, dest: Path, values: dict[str, object]) -> Path:
    text = (HERE / template).read_text()
    for k, v in values.items():
        text = text.replace("{{" + k + "}}", str(v))
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise BenchError(f"{template}: unfilled placeholders {left}")
    dest.write_text(text)
    return dest


# ---------------------------------------------------------------------------------------------
# wrk

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_latency_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise BenchError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    res: dict = {}
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not m:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    res["requests"] = int(m.group(1))
    res["seconds"] = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if not m:
            raise BenchError(f"no {pct}% latency in wrk output (needs --latency):\n{out}")
        res[key] = parse_latency_ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = ({"connect": int(m.group(1)), "read": int(m.group(2)),
                             "write": int(m.group(3)), "timeout": int(m.group(4))} if m else {})
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    return res


def run_wrk(url: str, connections: int, duration: int, threads: int = 1,
            headers: tuple[str, ...] = (), extra: tuple[str, ...] = ()) -> tuple[dict, float]:
    """Runs wrk pinned to LOAD_CPU; returns (parsed output, wrk's own CPU seconds). `headers`:
    request fields ("Name: value") added to every request; `extra`: more wrk arguments (-H,
    -s SCRIPT)."""
    argv = ["taskset", "-c", str(LOAD_CPU), tool("wrk"), f"-t{threads}", f"-c{connections}",
            f"-d{duration}s", "--latency", "--timeout", "5s", *extra]
    for h in headers:
        argv += ["-H", h]
    argv.append(url)
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + duration + 30
        try:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"wrk did not finish within {duration + 30:.0f} s: "
                                     f"{' '.join(argv)}")
                time.sleep(0.02)
        finally:
            if proc.returncode is None:  # timed out or interrupted: don't leave wrk behind
                proc.kill()
                proc.wait()
        out.seek(0)
        text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (exit {proc.returncode}): {' '.join(argv)}\n{text}")
    res = parse_wrk(text)
    return res, ru.ru_utime + ru.ru_stime


# ---------------------------------------------------------------------------------------------
# The bench

class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="ficus-bench-"))
        os.chmod(self.tmp, 0o755)  # nginx workers may run as nobody when we are root
        self.servers: dict[str, Server] = {}  # "backend" and the proxies
        self.ports: dict[str, int] = {}
        self.idle_rss: dict[str, dict] = {}
        self.bodies = {p: self._body(p, n) for p, n in BODIES.items()}

    @staticmethod
    def _body(path: str, n: int) -> bytes:
        line = f"ficus bench /{path} body, {n} bytes. "
        return (line * (n // len(line) + 1)).encode()[: n - 1] + b"\n"

    # -- start-up --------------------------------------------------------------------------------

    def start_backend(self) -> None:
        docroot = self.tmp / "www"
        docroot.mkdir()
        for path, body in self.bodies.items():
            (docroot / path).write_bytes(body)
            os.chmod(docroot / path, 0o644)
        os.chmod(docroot, 0o755)
        for d in ("backend/tmp", "proxy/tmp"):
            (self.tmp / d).mkdir(parents=True, exist_ok=True)
        port = free_port()
        conf = render("backend.nginx.conf", self.tmp / "backend.nginx.conf",
                      {"BACKEND_PORT": port, "DOCROOT": docroot})
        srv = Server("backend nginx", ["taskset", "-c", str(BACKEND_CPU), tool("nginx"),
                                       "-p", f"{self.tmp}/", "-c", str(conf),
                                       "-e", str(self.tmp / "backend" / "error.log"),
                                       "-g", "daemon off; master_process on;"],
                     self.tmp / "backend.out")
        self.servers["backend"] = srv
        wait_accepting(srv, port)
        self.ports["backend"] = self.ports["direct"] = port
        check_responses("direct", port, self.bodies)

    def start_proxy(self, name: str) -> None:
        port = free_port()
        bport = self.ports["backend"]
        pin = ["taskset", "-c", str(PROXY_CPU)]
        if name == "nginx":
            conf = render("proxy.nginx.conf", self.tmp / "proxy.nginx.conf",
                          {"PORT": port, "BACKEND_PORT": bport})
            argv = pin + [tool("nginx"), "-p", f"{self.tmp}/", "-c", str(conf),
                          "-e", str(self.tmp / "proxy" / "error.log"),
                          "-g", "daemon off; master_process on;"]
        elif name == "haproxy":
            conf = render("haproxy.cfg", self.tmp / "haproxy.cfg",
                          {"PORT": port, "BACKEND_PORT": bport, "TMP": self.tmp})
            argv = pin + [tool("haproxy"), "-db", "-f", str(conf)]
        elif name in ("ficus", "ficus-obs"):
            binary = Path(self.args.ficus)
            if not os.access(binary, os.X_OK):
                raise BenchError(f"ficus binary not found at {binary} -- `make build` first, or "
                                 f"leave it out: --only direct,nginx,haproxy")
            conf = render(f"{name}.yaml", self.tmp / f"{name}.yaml",
                          {"PORT": port, "BACKEND_PORT": bport, "ADMIN_PORT": free_port(),
                           "TMP": self.tmp})
            argv = pin + [str(binary), "run", "-c", str(conf)]
        else:
            raise BenchError(f"unknown proxy {name}")
        srv = Server(name, argv, self.tmp / f"{name}.log", cwd=self.tmp)
        self.servers[name] = srv
        wait_accepting(srv, port)
        self.ports[name] = port
        time.sleep(0.3)  # let it finish start-up allocations before the idle RSS reading
        pids = srv.pids()
        self.idle_rss[name] = {"kib": rss_kib(pids), "pss_kib": pss_kib(pids),
                               "processes": len(pids)}
        check_responses(name, port, self.bodies)

    def stop_all(self) -> None:
        for name in reversed(list(self.servers)):
            try:
                self.servers[name].stop()
            except Exception as e:  # keep stopping the others
                print(f"warning: stopping {name}: {e}", file=sys.stderr)
        self.servers.clear()

    # -- measurement ---------------------------------------------------------------------------

    def measure(self, cfg: str, path: str, connections: int, duration: int) -> dict:
        target = self.servers["backend" if cfg == "direct" else cfg]
        backend = self.servers["backend"]
        for srv in (target, backend):
            if not srv.alive():
                raise BenchError(f"{srv.name} died; log {srv.log_path}:\n{srv.log_tail()}")
        tpids, bpids = target.pids(), backend.pids()
        url = f"http://127.0.0.1:{self.ports[cfg]}/{path}"
        c0, b0, s0, t0 = cpu_ticks(tpids), cpu_ticks(bpids), cpu_busy_ticks(), time.monotonic()
        res, wrk_cpu_s = run_wrk(url, connections, duration)
        c1, b1, s1, t1 = cpu_ticks(tpids), cpu_ticks(bpids), cpu_busy_ticks(), time.monotonic()
        wall = t1 - t0
        n = max(res["requests"], 1)
        proxy_s = (c1 - c0) / CLK_TCK
        backend_s = (b1 - b0) / CLK_TCK

        def cpu_share(cpu: int) -> float:
            busy = s1[cpu][0] - s0[cpu][0]
            total = s1[cpu][1] - s0[cpu][1]
            return busy / total if total else 0.0

        res.update({
            "config": cfg, "path": path, "connections": connections, "duration_s": duration,
            "wall_s": round(wall, 3),
            # For "direct" the measured process is the backend itself.
            "cpu_us_per_req": (proxy_s if cfg != "direct" else backend_s) * 1e6 / n,
            "backend_cpu_us_per_req": backend_s * 1e6 / n,
            "util": {
                "proxy": proxy_s / wall if cfg != "direct" else None,
                "backend": backend_s / wall,
                "wrk": wrk_cpu_s / wall,
                f"cpu{PROXY_CPU}_busy": cpu_share(PROXY_CPU),
                f"cpu{LOAD_CPU}_busy": cpu_share(LOAD_CPU),
            },
        })
        u = res["util"]
        # CPU-time on each core that none of our processes accounts for: other users' load.
        backend_on_proxy_cpu = BACKEND_CPU == PROXY_CPU
        other1 = (u[f"cpu{PROXY_CPU}_busy"] - (u["proxy"] or 0.0)
                  - (u["backend"] if backend_on_proxy_cpu else 0.0))
        other0 = (u[f"cpu{LOAD_CPU}_busy"] - u["wrk"]
                  - (0.0 if backend_on_proxy_cpu else u["backend"]))
        u["other_on_proxy_cpu"] = max(other1, 0.0)
        u["other_on_load_cpu"] = max(other0, 0.0)
        errs = sum(res["socket_errors"].values()) if res["socket_errors"] else 0
        if res["non_2xx"] or errs:
            res["warning"] = f"non-2xx {res['non_2xx']}, socket errors {res['socket_errors']}"
        return res

    def print_run(self, tag: str, r: dict) -> None:
        u = r["util"]
        proxy = "   -  " if u["proxy"] is None else f"{u['proxy'] * 100:5.0f}%"
        line = (f"  {tag:<10} {BODY_LABEL[r['path']]:>6} {r['config']:<8} "
                f"{r['rps']:>9,.0f} req/s  p50 {fmt_ms(r['p50_ms']):>8}  p99 {fmt_ms(r['p99_ms']):>8}"
                f"  {r['cpu_us_per_req']:6.2f} µs/req | CPU util: proxy {proxy} "
                f"backend {u['backend'] * 100:3.0f}% wrk {u['wrk'] * 100:3.0f}% "
                f"| other load: cpu{PROXY_CPU} {u['other_on_proxy_cpu'] * 100:3.0f}% "
                f"cpu{LOAD_CPU} {u['other_on_load_cpu'] * 100:3.0f}%")
        log(line)
        if "warning" in r:
            log(f"    WARNING: {r['warning']}")

    def rss_with_connections(self, name: str, count: int) -> dict:
        port = self.ports[name]
        srv = self.servers[name]
        socks: list[socket.socket] = []
        try:
            for i in range(count):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                socks.append(s)
                status, body = http_get(s, "small")
                if status != 200:
                    raise BenchError(f"{name}: connection {i}: status {status}")
            time.sleep(1.0)
            # Make sure they are still open keep-alive connections: reuse the last one.
            status, _ = http_get(socks[-1], "small")
            if status != 200:
                raise BenchError(f"{name}: reused connection returned {status}")
            pids = srv.pids()
            return {"kib": rss_kib(pids), "pss_kib": pss_kib(pids), "processes": len(pids),
                    "connections": len(socks)}
        finally:
            for s in socks:
                s.close()


def fmt_ms(ms: float) -> str:
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 100:
        return f"{ms:.2f} ms"
    return f"{ms:.0f} ms"


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(runs: list[dict], configs: list[str], path: str) -> dict[str, dict]:
    out = {}
    for cfg in configs:
        rs = [r for r in runs if r["config"] == cfg and r["path"] == path]
        if not rs:
            continue
        rps = [r["rps"] for r in rs]
        out[cfg] = {
            "rounds": len(rs),
            "rps": median(rps),
            "rps_spread": (max(rps) - min(rps)) / median(rps) if median(rps) else 0.0,
            "p50_ms": median([r["p50_ms"] for r in rs]),
            "p99_ms": median([r["p99_ms"] for r in rs]),
            "cpu_us_per_req": median([r["cpu_us_per_req"] for r in rs]),
            "backend_cpu_us_per_req": median([r["backend_cpu_us_per_req"] for r in rs]),
            "proxy_util": (median([r["util"]["proxy"] for r in rs])
                           if cfg != "direct" else None),
            "wrk_util": median([r["util"]["wrk"] for r in rs]),
            "backend_util": median([r["util"]["backend"] for r in rs]),
            "other_on_proxy_cpu": median([r["util"]["other_on_proxy_cpu"] for r in rs]),
            "other_on_load_cpu": median([r["util"]["other_on_load_cpu"] for r in rs]),
            "load_cpu_busy": median([r["util"][f"cpu{LOAD_CPU}_busy"] for r in rs]),
            "proxy_cpu_busy": median([r["util"][f"cpu{PROXY_CPU}_busy"] for r in rs]),
            # What shares the client's CPU: wrk, plus the backend in the shared-client layout.
            "load_side_util": median([r["util"]["wrk"] + (r["util"]["backend"]
                                                          if BACKEND_CPU == LOAD_CPU else 0.0)
                                      for r in rs]),
        }
    return out


def print_table(title: str, summ: dict[str, dict], with_cpu: bool = True) -> None:
    log()
    log(title)
    head = (f"  {'config':<9}{'req/s':>10}{'spread':>8}{'p50':>10}{'p99':>10}")
    if with_cpu:
        head += f"{'CPU µs/req':>12}{'proxy CPU':>11}{'backend µs/req':>16}"
    log(head)
    log("  " + "-" * (len(head) - 2))
    for cfg in CONFIG_ORDER:
        s = summ.get(cfg)
        if not s:
            continue
        line = (f"  {cfg:<9}{s['rps']:>10,.0f}{s['rps_spread'] * 100:>7.0f}%"
                f"{fmt_ms(s['p50_ms']):>10}{fmt_ms(s['p99_ms']):>10}")
        if with_cpu:
            cpu = f"{s['cpu_us_per_req']:.2f}"
            if cfg == "direct":
                cpu = f"({cpu})"
            util = "-" if s["proxy_util"] is None else f"{s['proxy_util'] * 100:.0f}%"
            line += f"{cpu:>12}{util:>11}{s['backend_cpu_us_per_req']:>16.2f}"
        log(line)


def paired_ratios(runs: list[dict], a: str, b: str) -> dict[str, float] | None:
    """Median over rounds of a/b measured in the same round (a paired comparison).

    The rounds interleave configurations, so a slow spell on the machine hits a and b of one
    round alike; the ratio within a round cancels it, where the ratio of two medians can pick
    a's median from a fast round and b's from a slow one."""
    by_round: dict[int, dict[str, dict]] = {}
    for r in runs:
        by_round.setdefault(r["round"], {})[r["config"]] = r
    pairs = [(x[a], x[b]) for x in by_round.values() if a in x and b in x]
    if not pairs:
        return None
    out = {"rounds": len(pairs),
           "throughput": median([ra["rps"] / rb["rps"] for ra, rb in pairs if rb["rps"]]),
           "p99": median([ra["p99_ms"] / rb["p99_ms"] for ra, rb in pairs if rb["p99_ms"]])}
    cpu = [ra["cpu_us_per_req"] / rb["cpu_us_per_req"] for ra, rb in pairs
           if rb["cpu_us_per_req"] and a != "direct" and b != "direct"]
    if cpu:
        out["cpu_per_req"] = median(cpu)
    return out


def ratios(summ: dict[str, dict], with_cpu: bool = True,
           runs: list[dict] | None = None) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if "ficus" not in summ:
        return out
    f = summ["ficus"]
    for other in ("nginx", "haproxy"):
        o = summ.get(other)
        if not o:
            continue
        r = {"throughput": f["rps"] / o["rps"] if o["rps"] else float("nan"),
             "p99": f["p99_ms"] / o["p99_ms"] if o["p99_ms"] else float("nan")}
        if with_cpu:
            r["cpu_per_req"] = (f["cpu_us_per_req"] / o["cpu_us_per_req"]
                                if o["cpu_us_per_req"] else float("nan"))
        out[f"ficus/{other}"] = r
    o = summ.get("ficus-obs")
    if o:
        r = {"throughput": o["rps"] / f["rps"] if f["rps"] else float("nan"),
             "p99": o["p99_ms"] / f["p99_ms"] if f["p99_ms"] else float("nan")}
        if with_cpu:
            r["cpu_per_req"] = (o["cpu_us_per_req"] / f["cpu_us_per_req"]
                                if f["cpu_us_per_req"] else float("nan"))
        out["ficus-obs/ficus"] = r
    for k, r in out.items():
        line = f"  {k:<14} throughput {r['throughput']:.2f}x (higher is better)"
        if with_cpu:
            line += f"   CPU/req {r['cpu_per_req']:.2f}x (lower is better)"
        line += f"   p99 {r['p99']:.2f}x (lower is better)"
        log(line)
        a, b = k.split("/")
        pr = paired_ratios(runs, a, b) if runs else None
        if pr:
            r["paired"] = pr
            line = (f"  {'':<14} paired (median of {pr['rounds']} per-round ratios): throughput "
                    f"{pr['throughput']:.2f}x")
            if "cpu_per_req" in pr:
                line += f"   CPU/req {pr['cpu_per_req']:.2f}x"
            line += f"   p99 {pr['p99']:.2f}x"
            log(line)
    if "ficus-obs/ficus" in out:
        o = out["ficus-obs/ficus"]
        t = o["throughput"]
        pt = o.get("paired", {}).get("throughput")
        log(f"  observability cost (metrics + access log + 1% traces): throughput ratio {t:.3f}"
            + (f", paired {pt:.3f}" if pt is not None else "")
            + f" (target >= 0.90: {'met' if min(t, pt if pt is not None else t) >= 0.9 else 'NOT met'})")
    return out


def sanity_notes(summ: dict[str, dict]) -> list[str]:
    notes = []
    spread = {c: s["rps_spread"] for c, s in summ.items() if s["rps_spread"] > 0.15}
    if spread:
        notes.append("req/s varied between rounds (max-min)/median: " + ", ".join(
            f"{c} {v * 100:.0f}%" for c, v in spread.items()))
    load_bound, crowded = [], []
    for cfg, s in summ.items():
        if cfg == "direct" or s["proxy_util"] is None or s["proxy_util"] >= 0.85:
            continue
        if BACKEND_CPU == PROXY_CPU and s["proxy_cpu_busy"] > 0.95:
            continue  # proxy + backend fill their CPU: the proxy's share is what it needs
        if s["load_side_util"] > 0.85:
            load_bound.append(f"{cfg} {s['proxy_util'] * 100:.0f}% (load side "
                              f"{s['load_side_util'] * 100:.0f}%)")
        elif s["load_cpu_busy"] > 0.95 or s["proxy_util"] + s["other_on_proxy_cpu"] > 0.95:
            crowded.append(f"{cfg} {s['proxy_util'] * 100:.0f}%")
    if load_bound:
        notes.append(
            f"proxy below its core's capacity because the load side saturates cpu{LOAD_CPU}: "
            + ", ".join(load_bound) + " -- req/s and latency partly measure the load side; "
            "CPU µs/req is still the proxy's own cost (at this load level).")
    if crowded:
        notes.append(
            f"proxy below its core's capacity because other processes took the cores: "
            + ", ".join(crowded) + " -- req/s and latency mostly measure the neighbours here; "
            "CPU µs/req is the robust number.")

    def other(c: str, s: dict) -> str:
        parts = [] if c == "direct" else [f"cpu{PROXY_CPU} {s['other_on_proxy_cpu'] * 100:.0f}%"]
        return f"{c} " + "/".join(parts + [f"cpu{LOAD_CPU} {s['other_on_load_cpu'] * 100:.0f}%"])

    noisy = {c: s for c, s in summ.items()
             if (c != "direct" and s["other_on_proxy_cpu"] > 0.05) or s["other_on_load_cpu"] > 0.05}
    if noisy:
        notes.append(
            "noisy machine: processes outside this bench used (median) "
            + ", ".join(other(c, s) for c, s in noisy.items()) + " -- compare with care.")
    return notes


def estimate_seconds(args: argparse.Namespace, configs: list[str]) -> float:
    n = len(configs)
    per = args.duration + PER_RUN_OVERHEAD
    total = 1.0 + n * 0.4  # start-up
    total += n * len(BODIES) * (WARMUP_SECONDS + PER_RUN_OVERHEAD)
    total += args.rounds * n * len(BODIES) * per
    total += args.many_rounds * n * per
    if not args.skip_rss:
        total += (n - ("direct" in configs)) * 1.5
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="See bench/README.md.")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5, min 1)")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run (default 5)")
    ap.add_argument("--connections", type=int, default=50,
                    help="wrk connections for the main runs (default 50)")
    ap.add_argument("--many-connections", type=int, default=1000,
                    help="connections for the many-connections run and the RSS test (default 1000)")
    ap.add_argument("--many-rounds", type=int, default=None,
                    help="rounds of the many-connections run (default min(rounds, 3); 0 skips it)")
    ap.add_argument("--only", default=",".join(CONFIG_ORDER),
                    help="comma-separated subset of direct,ficus,ficus-obs,nginx,haproxy")
    ap.add_argument("--skip-rss", action="store_true", help="skip the RSS measurements")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 round, 2 s per run")
    ap.add_argument("--ficus", default=str(DEFAULT_FICUS), help=f"ficus binary (default {DEFAULT_FICUS.relative_to(ROOT)})")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    ap.add_argument("--no-json", action="store_true", help="do not write bench/results/*.json")
    ap.add_argument("--layout", choices=sorted(LAYOUTS), default="client-alone",
                    help="CPU layout: client-alone (default; wrk alone on CPU 0, backend with the "
                         "proxy on CPU 1) or shared-client (backend with wrk on CPU 0)")
    ap.add_argument("--halt-idle", action="store_true",
                    help="let idle CPUs halt (default: hold /dev/cpu_dma_latency at 0 so idle CPUs "
                         "poll; see hold_idle_polling)")
    args = ap.parse_args()
    global BACKEND_CPU
    BACKEND_CPU = LAYOUTS[args.layout]
    if args.quick:
        args.rounds, args.duration = 1, 2
    if args.many_rounds is None:
        args.many_rounds = min(args.rounds, 3)
    if args.rounds < 1 or args.duration <= 0 or args.connections < 1:
        ap.error("--rounds >= 1, --duration > 0, --connections >= 1")
    configs = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = [c for c in configs if c not in CONFIG_ORDER]
    if bad or not configs:
        ap.error(f"--only: unknown configuration(s) {bad}; choose from {','.join(CONFIG_ORDER)}")
    configs = [c for c in CONFIG_ORDER if c in configs]
    proxies = [c for c in configs if c in PROXIES]

    if "ficus" in configs and not os.access(args.ficus, os.X_OK):
        raise BenchError(f"ficus binary not found at {args.ficus} -- `make build` first, or leave "
                         f"it out: --only direct,nginx,haproxy")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("needs at least 2 CPUs (proxies on CPU 1, wrk + backend on CPU 0)")
    tools = ["wrk", "taskset", "nginx"] + (["haproxy"] if "haproxy" in configs else [])
    require_tools(tools)

    # wrk -c1000 and 1000 sockets here (plus the proxies, which inherit it) need descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * args.many_connections + 256
    want = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, 65536))
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < need:
        log(f"warning: RLIMIT_NOFILE is {soft}; {args.many_connections} connections may need {need}")

    idle_polling = None if args.halt_idle else hold_idle_polling()
    idle_mode = ("poll (/dev/cpu_dma_latency held at 0)" if idle_polling else
                 "halt (kernel default" + ("" if args.halt_idle else
                                           "; /dev/cpu_dma_latency not writable") + ")")
    est = estimate_seconds(args, configs)
    log(f"ficus proxy bench: {', '.join(configs)}; {args.rounds} round(s) x {len(BODIES)} bodies, "
        f"wrk -t1 -c{args.connections} -d{args.duration:g}s; "
        f"-c{args.many_connections}: {args.many_rounds} round(s)")
    log(f"layout {args.layout}: proxies (ficus, nginx master+worker, haproxy) on CPU {PROXY_CPU}; "
        f"wrk on CPU {LOAD_CPU}; the backend nginx on CPU {BACKEND_CPU} (taskset -c); "
        f"{os.cpu_count()} CPUs; 1 worker/thread per proxy, upstream keep-alive")
    log(f"idle CPUs: {idle_mode}")
    log(f"estimated runtime: {est / 60:.1f} min ({est:.0f} s)")

    started = time.time()
    bench = Bench(args)
    failed = False
    result: dict = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "args": vars(args), "configs": configs,
        "pinning": {"layout": args.layout, "proxy_cpu": PROXY_CPU, "wrk_cpu": LOAD_CPU,
                    "backend_cpu": BACKEND_CPU},
        "host": {"cpus": os.cpu_count(), "uname": " ".join(os.uname()),
                 "loadavg_start": os.getloadavg(), "idle_cpus": idle_mode},
        "versions": versions(),
        "bodies": BODIES, "runs": [], "many_connection_runs": [],
    }
    try:
        bench.start_backend()
        for p in proxies:
            bench.start_proxy(p)
        log(f"servers up (temp dir {bench.tmp}): " + ", ".join(
            f"{k}={v}" for k, v in bench.ports.items() if k != "direct"))
        affinity = {name: sorted({cpus_allowed(p) for p in srv.pids()})
                    for name, srv in bench.servers.items()}
        result["affinity"] = affinity
        log("CPU affinity (Cpus_allowed_list, all processes of each): " + ", ".join(
            f"{k} {'/'.join(v)}" for k, v in affinity.items()))
        for name, cpus in affinity.items():
            want = str(BACKEND_CPU if name == "backend" else PROXY_CPU)
            if cpus != [want]:
                raise BenchError(f"{name} is not pinned to CPU {want}: {cpus}")

        # RSS with many idle keep-alive connections, on fresh processes before any load.
        rss: dict[str, dict] = {}
        if not args.skip_rss and proxies:
            log(f"\nRSS: idle after start, then with {args.many_connections} open idle keep-alive "
                f"connections (one request each) ...")
            for p in proxies:
                loaded = bench.rss_with_connections(p, args.many_connections)
                rss[p] = {"idle": bench.idle_rss[p], "connections": loaded}
        result["rss"] = rss
        result["rss_idle"] = bench.idle_rss

        log("\nwarm-up (1 s per configuration and body, not recorded) ...")
        for cfg in configs:
            for path in BODIES:
                run_wrk(f"http://127.0.0.1:{bench.ports[cfg]}/{path}", args.connections,
                        WARMUP_SECONDS)

        log(f"\nmain runs: wrk -t1 -c{args.connections} -d{args.duration:g}s, interleaved "
            f"(utilisation = CPU-seconds / wall-second; 'other' = load on that core from "
            f"processes outside this bench)")
        for rnd in range(1, args.rounds + 1):
            for path in BODIES:
                for cfg in configs:
                    r = bench.measure(cfg, path, args.connections, args.duration)
                    r["round"] = rnd
                    result["runs"].append(r)
                    bench.print_run(f"round {rnd}", r)

        if args.many_rounds > 0:
            log(f"\nmany connections: wrk -t1 -c{args.many_connections} -d{args.duration:g}s, "
                f"100 B body")
            for rnd in range(1, args.many_rounds + 1):
                for cfg in configs:
                    r = bench.measure(cfg, "small", args.many_connections, args.duration)
                    r["round"] = rnd
                    result["many_connection_runs"].append(r)
                    bench.print_run(f"c{args.many_connections} r{rnd}", r)
    except KeyboardInterrupt:
        log("\ninterrupted; stopping everything")
        return 130
    except BaseException:
        failed = True
        raise
    finally:
        bench.stop_all()
        if args.keep_tmp or failed:
            log(f"temp dir kept (configs, logs): {bench.tmp}")
        else:
            shutil.rmtree(bench.tmp, ignore_errors=True)

    # ---- report ----
    log("\n" + "=" * 100)
    log(f"RESULTS (median of {args.rounds} interleaved round(s); wrk -t1 -c{args.connections} "
        f"-d{args.duration:g}s; layout {args.layout}: proxies on CPU {PROXY_CPU}, backend on CPU "
        f"{BACKEND_CPU}, wrk on CPU {LOAD_CPU})")
    log("  'CPU µs/req' = proxy (utime+stime) / requests; nginx = master + worker; for direct, "
        "the backend's own, in ().")
    log("  'spread' = (max-min)/median of req/s over rounds; 'proxy CPU' = share of one core used.")
    summaries, all_ratios, notes = {}, {}, []
    for path in BODIES:
        summ = summarize(result["runs"], configs, path)
        summaries[path] = summ
        print_table(f"body {BODY_LABEL[path]} (/{path}):", summ)
        all_ratios[path] = ratios(summ, runs=[r for r in result["runs"] if r["path"] == path])
        notes += [f"{BODY_LABEL[path]}: {n}" for n in sanity_notes(summ)]
    if result["many_connection_runs"]:
        summ = summarize(result["many_connection_runs"], configs, "small")
        summaries[f"c{args.many_connections}"] = summ
        print_table(f"{args.many_connections} connections, body 100 B (median of "
                    f"{args.many_rounds} round(s)):", summ)
        all_ratios[f"c{args.many_connections}"] = ratios(summ, runs=result["many_connection_runs"])
        notes += [f"c{args.many_connections}: {n}" for n in sanity_notes(summ)]
    if result["rss"]:
        log()
        log(f"RSS (VmRSS; nginx = master + worker summed, which counts their shared pages twice; "
            f"PSS splits them):")
        log(f"  {'proxy':<9}{'idle':>12}{f'{args.many_connections} conns':>14}{'per conn':>11}"
            f"{'processes':>11}{'PSS idle':>12}{'PSS conns':>12}")
        for p in PROXIES:
            if p not in result["rss"]:
                continue
            e = result["rss"][p]
            idle, loaded = e["idle"]["kib"], e["connections"]["kib"]
            per = (loaded - idle) * 1024 / max(e["connections"]["connections"], 1)
            log(f"  {p:<9}{idle / 1024:>9.1f} MiB{loaded / 1024:>10.1f} MiB{per / 1024:>7.2f} KiB"
                f"{e['connections']['processes']:>11}{e['idle']['pss_kib'] / 1024:>8.1f} MiB"
                f"{e['connections']['pss_kib'] / 1024:>8.1f} MiB")
        if "ficus" in result["rss"]:
            f = result["rss"]["ficus"]
            for other in ("nginx", "haproxy"):
                if other in result["rss"]:
                    o = result["rss"][other]
                    r_idle = f["idle"]["kib"] / o["idle"]["kib"]
                    r_conn = f["connections"]["kib"] / o["connections"]["kib"]
                    all_ratios.setdefault("rss", {})[f"ficus/{other}"] = {
                        "idle": r_idle, "connections": r_conn}
                    log(f"  ficus/{other:<8} idle {r_idle:.2f}x   with {args.many_connections} "
                        f"connections {r_conn:.2f}x (lower is better)")
    if notes:
        log("\nnotes:")
        for n in notes:
            log(f"  - {n}")
    elapsed = time.time() - started
    log(f"\nruntime: {elapsed:.0f} s (estimated {est:.0f} s); load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    result.update({"summary": summaries, "ratios": all_ratios, "notes": notes,
                   "runtime_s": round(elapsed, 1), "host_loadavg_end": os.getloadavg()})
    if not args.no_json:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"proxy-{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        log(f"raw results: {out.relative_to(ROOT)}")
    return 0


def versions() -> dict[str, str]:
    out = {}
    for name, argv in (("nginx", [tool("nginx"), "-v"]), ("haproxy", [tool("haproxy"), "-v"]),
                       ("wrk", [tool("wrk"), "--version"])):
        try:
            p = subprocess.run(argv, capture_output=True, text=True, timeout=5)
            out[name] = (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            out[name] = "unknown"
    return out


def _on_signal(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGINT, _on_signal)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench/proxy/run.py: error: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
