#!/usr/bin/env bash
# User-space instructions per proxied request, counted by callgrind (repeatable whatever else
# the machine does, unlike req/s): one ficus worker in front of nginx serving /small (100 B),
# `wrk -t1 -c20` for SECONDS, instrumentation on only while wrk runs.
#
#   bench/proxy/callgrind.sh [FICUS_BIN] [SECONDS] [CONFIG_TEMPLATE]
#
# CONFIG_TEMPLATE defaults to bench/proxy/ficus.yaml (ficus-obs.yaml: metrics, access log and
# 1 % tracing). Prints the worker thread's instructions per request. Everything it starts is
# stopped by PID.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ficus="${1:-$root/build/release/apps/ficus}"
seconds="${2:-8}"
template="${3:-$here/ficus.yaml}"
tmp="$(mktemp -d /tmp/ficus-callgrind-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
backend_port=$(port)
ficus_port=$(port)
admin_port=$(port)
mkdir -p "$tmp/docroot" "$tmp/backend/tmp"
head -c 100 /dev/zero | tr '\0' 'x' > "$tmp/docroot/small"
sed -e "s#{{BACKEND_PORT}}#$backend_port#g" -e "s#{{DOCROOT}}#$tmp/docroot#g" \
  "$here/backend.nginx.conf" > "$tmp/backend.conf"
sed -e "s#{{TMP}}#$tmp#g" -e "s#{{PORT}}#$ficus_port#g" -e "s#{{ADMIN_PORT}}#$admin_port#g" \
  -e "s#{{BACKEND_PORT}}#$backend_port#g" "$template" > "$tmp/ficus.yaml"

nginx -p "$tmp/" -c "$tmp/backend.conf" -g "daemon off; master_process off;" &
pids+=($!)
valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes \
  --callgrind-out-file="$tmp/callgrind.out" \
  "$ficus" run -c "$tmp/ficus.yaml" > "$tmp/ficus.log" 2>&1 &
ficus_pid=$!
pids+=($ficus_pid)
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$admin_port/ready" > /dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ficus_port/small" > /dev/null  # warm: pool, caches
callgrind_control -i on "$ficus_pid" > /dev/null
out="$(wrk -t1 -c20 -d"${seconds}s" "http://127.0.0.1:$ficus_port/small")"
callgrind_control -i off "$ficus_pid" > /dev/null
requests=$(echo "$out" | awk '/requests in/ {print $1}')
kill -TERM "$ficus_pid"
wait "$ficus_pid" 2>/dev/null || true
# The worker thread's count (the busiest thread) is the headline; the others (the access log's
# writer, the tracer's exporter, telemetry, monitor, admin) are listed too, as together they
# are what observability costs on top of the worker.
python3 - "$requests" "$(basename "$ficus")" "$tmp"/callgrind.out* <<'PY'
import sys
n, name, files = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
counts = []
for f in files:
    with open(f) as fh:
        for line in fh:
            if line.startswith("totals:"):
                counts.append(int(line.split()[1]))
                break
counts.sort(reverse=True)
print(f"{name}: {n} requests, {counts[0]} Ir, {counts[0] / n:.0f} Ir/request")
print("  threads (Ir/request): " + ", ".join(f"{c / n:.0f}" for c in counts if c / n >= 1) +
      f"; all threads {sum(counts) / n:.0f}")
PY
