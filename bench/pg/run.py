#!/usr/bin/env python3
"""The PostgreSQL proxy against PgBouncer (issue 19): pgbench -S (read-only) and the default
TPC-B-like mix through ficus (transaction pooling, both workers) and through Debian's pgbouncer
(transaction pooling, one thread), same pool size, same PostgreSQL 15, side by side in one run,
at 10, 100 and 1000 clients. Prints TPS, mean latency and the ratio ficus / pgbouncer.

Python 3 standard library only; every process started is stopped by PID. Figures are printed,
never asserted (timings never gate CI).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from pg_server import PostgresServer, APP_PASSWORD, _free_port  # noqa: E402

DEFAULT_FICUS = ROOT / "build" / "release" / "apps" / "ficus"


def wait_login(port: int, env: dict, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-d", "shop", "-c",
                            "SELECT 1"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if r.returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("no login on port %d" % port)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat), in seconds."""
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pgbench(port: int, env: dict, clients: int, seconds: int, select_only: bool) -> tuple:
    args = ["pgbench", "-n", "-h", "127.0.0.1", "-p", str(port), "-c", str(clients), "-j", "2",
            "-T", str(seconds), "-M", "extended"]
    if select_only:
        args.append("-S")
    r = subprocess.run(args + ["shop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=seconds * 10 + 120)
    out = r.stdout.decode()
    tps = re.search(r"tps = ([0-9.]+)", out)
    lat = re.search(r"latency average = ([0-9.]+) ms", out)
    if r.returncode == 0 and not tps:
        # Logging in this many clients (SCRAM: PBKDF2 in every client) took the whole window.
        return (0.0, 0.0, "no transaction within %d s: raise --seconds" % seconds)
    if r.returncode != 0 or not tps:
        err = [l for l in (r.stderr.decode() + out).splitlines() if "error" in l.lower()]
        return (0.0, 0.0, (err[0] if err else "exit %d" % r.returncode)[:200])
    return (float(tps.group(1)), float(lat.group(1)) if lat else 0.0, "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--ficus", default=str(DEFAULT_FICUS))
    ap.add_argument("--pool-size", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--clients", default="10,100,1000")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds; medians printed")
    ap.add_argument("--client-tls", action="store_true",
                    help="clients connect with TLS (sslmode=require): ficus postgres.tls and\n"
                         "pgbouncer client_tls_sslmode=require with the same certificate")
    a = ap.parse_args()
    # 1,000 pgbench clients and as many proxy connections need more descriptors than the usual
    # soft limit of 1024: raise it to the hard limit for this process and its children.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    pg = PostgresServer()
    procs = []
    work = tempfile.mkdtemp(prefix="ficus-pg-bench-")
    try:
        pg.start()
        env = dict(os.environ, PGUSER="app", PGPASSWORD=APP_PASSWORD, PGSSLMODE="disable")
        subprocess.run(["pgbench", "-i", "-q", "-s", str(a.scale), "-h", "127.0.0.1", "-p",
                        str(pg.port), "shop"], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        tls_yaml, tls_ini, client_env = "", "", env
        if a.client_tls:
            from tls_certs import Certs
            certs = Certs(os.path.join(work, "certs"))
            tls_yaml = "  tls: { cert: %s, key: %s }\n" % (certs.cert, certs.key)
            tls_ini = ("client_tls_sslmode = require\nclient_tls_cert_file = %s\n"
                       "client_tls_key_file = %s\n" % (certs.cert, certs.key))
            client_env = dict(env, PGSSLMODE="require")
        # ficus: transaction pooling, the machine's cores as workers.
        fport, admin = _free_port(), _free_port()
        cfg = Path(work) / "ficus.yaml"
        cfg.write_text(
            "admin: { listen: 127.0.0.1:%d }\n"
            "listeners:\n  - { listen: 127.0.0.1:%d }\n"
            "  - { name: db, listen: 127.0.0.1:%d, kind: postgres }\n"
            "clusters: [{ name: app, endpoints: [127.0.0.1:9] }]\n"
            "routes: [{ match: { path_prefix: / }, cluster: app }]\n"
            "postgres:\n  databases: [{ name: shop, primary: 127.0.0.1:%d, pool_size: %d,\n"
            "                max_waiting: 100000, wait_timeout: 60s }]\n"
            "  users: [{ name: app, password: '%s' }]\n%s"
            % (admin, _free_port(), fport, pg.port, a.pool_size, APP_PASSWORD, tls_yaml))
        ficus = subprocess.Popen([a.ficus, "run", "-c", str(cfg)], cwd=work,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ficus)
        # pgbouncer: the same pool, transaction pooling; it refuses to run as root.
        bport = _free_port()
        Path(work, "userlist.txt").write_text('"app" "%s"\n' % APP_PASSWORD)
        Path(work, "pgbouncer.ini").write_text(
            "[databases]\nshop = host=127.0.0.1 port=%d dbname=shop\n"
            "[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
            "auth_type = scram-sha-256\nauth_file = %s/userlist.txt\npool_mode = transaction\n"
            "default_pool_size = %d\nmax_client_conn = 5000\n"
            "logfile = %s/pgbouncer.log\n%s" % (pg.port, bport, work, a.pool_size, work, tls_ini))
        if pg.uid is not None:
            for root, _, files in os.walk(work):
                os.chown(root, pg.uid, pg.gid)
                for f in files:
                    os.chown(os.path.join(root, f), pg.uid, pg.gid)
        bouncer = subprocess.Popen(["pgbouncer", str(Path(work, "pgbouncer.ini"))],
                                   preexec_fn=pg._demote, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        procs.append(bouncer)
        env = client_env
        wait_login(fport, env)
        wait_login(bport, env)
        print("pgbench through ficus and pgbouncer: pool_size %d, transaction pooling, %d s "
              "per run, scale %d, extended protocol%s" % (a.pool_size, a.seconds, a.scale,
                                                         ", clients over TLS" if a.client_tls else ""))
        print("%-10s %7s  %12s %9s %8s  %12s %9s %8s  %7s  %s" % (
            "mix", "clients", "ficus tps", "lat ms", "cpu us", "bouncer tps", "lat ms", "cpu us",
            "ratio", "overhead us/query"))
        for select_only, name in ((True, "select"), (False, "tpcb")):
            for clients in [int(c) for c in a.clients.split(",")]:
                f_runs, b_runs = [], []
                for _ in range(a.rounds):  # interleaved: both see the same machine
                    # Each run's CPU per transaction of the proxy (user + system, all threads).
                    for port, proc, runs in ((fport, ficus, f_runs), (bport, bouncer, b_runs)):
                        cpu0 = cpu_seconds(proc.pid)
                        r = pgbench(port, env, clients, a.seconds, select_only)
                        cpu = cpu_seconds(proc.pid) - cpu0
                        runs.append(r + (cpu * 1e6 / (r[0] * a.seconds) if r[0] else 0.0,))
                f = sorted(f_runs)[len(f_runs) // 2]
                b = sorted(b_runs)[len(b_runs) // 2]
                ratio = f[0] / b[0] if b[0] else 0.0
                # Latency overhead per query against pgbouncer: -S runs 1 statement per
                # transaction, TPC-B-like 7 (BEGIN, 3 UPDATEs, SELECT, INSERT, END).
                per_query = (f[1] - b[1]) * 1000 / (1 if select_only else 7)
                print("%-10s %7d  %12.0f %9.2f %8.1f  %12.0f %9.2f %8.1f  %7.2f  %+8.1f%s" % (
                    name, clients, f[0], f[1], f[3], b[0], b[1], b[3], ratio, per_query,
                    ("  ficus error: " + f[2]) if f[2] else ("  bouncer error: " + b[2]) if b[2] else ""))
                sys.stdout.flush()
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
