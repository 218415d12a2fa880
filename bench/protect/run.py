#!/usr/bin/env python3
"""Protection side by side (`make bench`): ficus's rate limiter against nginx `limit_req` and
HAProxy stick tables (overhead and accuracy, rate.py), RS256 JWT verification with and without
ficus's verified-token cache against HAProxy's `jwt_verify` (jwt.py), and overload shedding at
1x, 2x and 3x an upstream's capacity against no protection and nginx `limit_conn` (overload.py). Prints medians
over interleaved rounds; never asserted anywhere (timings do not gate CI).

    python3 bench/protect/run.py [--rounds 3] [--duration 5] [--only rate|jwt|overload]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "proxy"))
import run as pb  # noqa: E402  (bench/proxy/run.py)
import jwt  # noqa: E402
import overload  # noqa: E402
import rate  # noqa: E402

FICUS = HERE.parents[1] / "build" / "release" / "apps" / "ficus"

BACKEND = """
worker_processes 1; pid {d}/backend.pid; error_log {d}/backend.err warn;
events {{ worker_connections 8192; }}
http {{
  access_log off; server_tokens off; default_type text/plain; etag off;
  keepalive_requests 100000000;
  client_body_temp_path {d}/b1; proxy_temp_path {d}/b2; fastcgi_temp_path {d}/b3;
  uwsgi_temp_path {d}/b4; scgi_temp_path {d}/b5;
  server {{ listen 127.0.0.1:{port} backlog=4096; root {d}/docroot; location = /small {{ }} }}
}}
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    ap.add_argument("--only", choices=["rate", "jwt", "overload"])
    ap.add_argument("--limit-rate", type=int, default=2000)
    ap.add_argument("--limit-burst", type=int, default=100)
    ap.add_argument("--upstream-max", type=int, default=32)
    ap.add_argument("--service-ms", type=int, default=20)
    ap.add_argument("--limit", type=int, default=0, help="the proxies' in-flight limit "
                    "(default: the upstream's and a quarter more)")
    ap.add_argument("--overload-seconds", type=int, default=8)
    ap.add_argument("--ficus", default=str(FICUS))
    args = ap.parse_args()
    pb.require_tools(["nginx", "haproxy", "wrk", "taskset"])
    tmp = Path(tempfile.mkdtemp(prefix="ficus-protect-bench-"))
    tmp.chmod(0o755)  # nginx workers (nobody) read the docroot
    (tmp / "docroot").mkdir()
    (tmp / "docroot" / "small").write_bytes(b"x" * 100)
    backend = None
    try:
        if args.only in (None, "rate", "jwt"):
            port = pb.free_port()
            (tmp / "backend.conf").write_text(BACKEND.format(d=tmp, port=port))
            backend = rate.start("backend", [pb.tool("nginx"), "-p", f"{tmp}/", "-c",
                                             str(tmp / "backend.conf"), "-g", "daemon off;"],
                                 tmp, port)
            if args.only in (None, "rate"):
                rate.overhead(tmp, args.ficus, port, args.rounds, args.duration)
                rate.accuracy(tmp, args.ficus, port, args.rounds, args.duration,
                              args.limit_rate, args.limit_burst)
            if args.only in (None, "jwt"):
                jwt.jwt_bench(tmp, args.ficus, port, args.rounds, args.duration)
            backend.stop()
            backend = None
        if args.only in (None, "overload"):
            overload.overload(tmp, args.ficus, args)
        return 0
    finally:
        if backend is not None:
            backend.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except pb.BenchError as e:
        print(f"bench/protect/run.py: error: {e}", file=sys.stderr)
        sys.exit(1)
