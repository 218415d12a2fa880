#!/usr/bin/env bash
# `make demo`: two test upstreams, ficus in front of them, ~8 s of mixed traffic (some of it
# failing on purpose), then a summary read back from ficus's own /metrics. Everything runs on
# 127.0.0.1 and everything started here is stopped on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FICUS_BIN:-$ROOT/build/release/apps/ficus}"
UPSTREAM="$ROOT/tests/integration/upstream.py"
DURATION="${DEMO_SECONDS:-8}"

if [[ ! -x "$BIN" ]]; then
  echo "demo: $BIN not found; run 'make build' first" >&2
  exit 1
fi

WORK="$(mktemp -d -t ficus-demo.XXXXXX)"
PIDS=()
FICUS_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$FICUS_PID" ]] && kill -0 "$FICUS_PID" 2>/dev/null; then
    kill -TERM "$FICUS_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$FICUS_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$FICUS_PID" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $rc -ne 0 && -f "$WORK/ficus.log" ]]; then
    echo "---- ficus log (last 40 lines) ----" >&2
    tail -n 40 "$WORK/ficus.log" >&2 || true
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_upstream() {  # name: starts it in this shell (so cleanup knows its PID)
  python3 "$UPSTREAM" --port 0 --name "$1" >"$WORK/upstream-$1.out" 2>&1 &
  PIDS+=($!)
}

upstream_port() {  # name -> prints the port it announced
  local out="$WORK/upstream-$1.out"
  for _ in $(seq 100); do
    if grep -q '^READY ' "$out" 2>/dev/null; then
      awk '/^READY /{print $2; exit}' "$out"
      return 0
    fi
    sleep 0.05
  done
  echo "demo: upstream $1 did not start" >&2
  cat "$out" >&2
  return 1
}

echo "== starting two test upstreams"
start_upstream a
start_upstream b
UP_A=$(upstream_port a)
UP_B=$(upstream_port b)
LISTEN=$(free_port)
ADMIN=$(free_port)
DEAD=$(free_port)
echo "   a: 127.0.0.1:$UP_A   b: 127.0.0.1:$UP_B"

cat >"$WORK/ficus.yaml" <<EOF
# Written by scripts/demo.sh
workers: 2
data_dir: $WORK/data
admin: { listen: 127.0.0.1:$ADMIN }
listeners:
  - name: public
    listen: 127.0.0.1:$LISTEN
clusters:
  - name: app
    endpoints: [127.0.0.1:$UP_A, { address: 127.0.0.1:$UP_B, weight: 2 }]
    connect_timeout: 1s
  - name: legacy
    endpoints: [127.0.0.1:$DEAD]     # nothing listens here: every request is a 502
    connect_timeout: 500ms
routes:
  - name: api
    match: { path_prefix: /api, methods: [GET] }
    cluster: app
  - name: static
    match: { path_prefix: /static }
    cluster: app
  - name: upload
    match: { path_prefix: /upload, methods: [POST] }
    cluster: app
  - name: slow
    match: { path_prefix: /slow }
    cluster: app
    upstream_timeout: 300ms          # the upstream sometimes takes 500 ms: 504
  - name: legacy
    match: { path_prefix: /legacy }
    cluster: legacy
timeouts: { request_head: 5s, drain: 2s }
EOF

echo "== ficus check"
"$BIN" check -c "$WORK/ficus.yaml" | sed 's/^/   /'

echo "== starting ficus on 127.0.0.1:$LISTEN (admin 127.0.0.1:$ADMIN)"
"$BIN" run -c "$WORK/ficus.yaml" >"$WORK/ficus.log" 2>&1 &
FICUS_PID=$!
for i in $(seq 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN/ready" 2>/dev/null; then break; fi
  if ! kill -0 "$FICUS_PID" 2>/dev/null || [[ $i -eq 100 ]]; then
    echo "demo: ficus did not become ready" >&2
    exit 1
  fi
  sleep 0.05
done

echo "== sending mixed traffic for ${DURATION}s (4 keep-alive clients, bounded)"
python3 - "$LISTEN" "$DURATION" <<'EOF'
import http.client, random, sys, threading, time
port, duration = int(sys.argv[1]), float(sys.argv[2])
MAX_REQUESTS = 20000
# (weight, method, path, body)
MIX = [(60, "GET", "/api/echo", None),
       (15, "GET", "/static/bytes?n=20000", None),
       (8, "POST", "/upload", b"x" * 50000),
       (5, "GET", "/api/status/500", None),
       (4, "GET", "/nowhere", None),
       (4, "GET", "/slow/delay?ms=%d", None),
       (2, "GET", "/legacy/echo", None),
       (2, "POST", "/api/echo", b"not allowed")]
weights = [m[0] for m in MIX]
lock = threading.Lock()
counts = {}
sent = [0]
stop_at = time.monotonic() + duration

def client(seed):
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    while time.monotonic() < stop_at:
        with lock:
            if sent[0] >= MAX_REQUESTS:
                return
            sent[0] += 1
        _, method, path, body = rnd.choices(MIX, weights)[0]
        if "%d" in path:
            path = path % rnd.choice([50, 100, 500])
        try:
            conn.request(method, path, body=body)
            r = conn.getresponse()
            r.read()
            status = r.status
            if r.getheader("connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        with lock:
            counts[status] = counts.get(status, 0) + 1
        time.sleep(rnd.uniform(0, 0.004))

threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print("   client saw: " + ", ".join("%s x%d" % (k, v) for k, v in sorted(counts.items(), key=str)))
EOF

echo "== summary from GET /metrics"
curl -fsS "http://127.0.0.1:$ADMIN/metrics" >"$WORK/metrics.txt"
python3 - "$WORK/metrics.txt" <<'EOF'
import re, sys
samples = {}
for line in open(sys.argv[1]):
    m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)', line)
    if not m or line.startswith("#"):
        continue
    labels = tuple(sorted(re.findall(r'([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"', m.group(2) or "")))
    samples[(m.group(1), labels)] = float(m.group(3))

def get(name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)

def series(name, key):
    return sorted({dict(ls)[key] for (n, ls) in samples if n == name and key in dict(ls)})

def quantile(route, q):
    buckets = sorted((float(dict(ls)["le"]), v) for (n, ls), v in samples.items()
                     if n == "ficus_route_request_duration_seconds_bucket"
                     and dict(ls).get("route") == route)
    if not buckets or buckets[-1][1] == 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 0.0
            return prev_le + (le - prev_le) * frac   # linear within the bucket
        prev_le, prev_c = le, c
    return prev_le

def ms(v):
    return "-" if v is None else ("%.1f ms" % (v * 1000) if v < 10 else "%.0f s" % v)

classes = ["2xx", "3xx", "4xx", "5xx"]
print("   %-10s %8s  %s  %10s %10s" % ("route", "requests",
      "  ".join("%6s" % c for c in classes), "p50", "p99"))
for route in series("ficus_route_requests_total", "route"):
    print("   %-10s %8d  %s  %10s %10s" % (
        route, get("ficus_route_requests_total", route=route),
        "  ".join("%6d" % get("ficus_route_responses_total", route=route, **{"class": c})
                  for c in classes),
        ms(quantile(route, 0.5)), ms(quantile(route, 0.99))))
print("   (p50/p99 are interpolated inside the histogram buckets /metrics exports)")
print()
total = get("ficus_downstream_requests_total")
print("   downstream: %d requests; %s; %d without a route; %d parse errors" % (
    total, ", ".join("%s %d" % (c, get("ficus_downstream_responses_total", **{"class": c}))
                     for c in classes),
    get("ficus_downstream_no_route_total"), get("ficus_downstream_parse_errors_total")))
for cluster in series("ficus_cluster_upstream_requests_total", "cluster"):
    print("   cluster %-8s %d upstream requests, %d connect failures" % (
        cluster, get("ficus_cluster_upstream_requests_total", cluster=cluster),
        get("ficus_cluster_upstream_connect_failures_total", cluster=cluster)))
if total == 0:
    sys.exit("demo: ficus counted no requests")
EOF

echo "== stopping (SIGTERM, graceful drain)"
kill -TERM "$FICUS_PID"
for _ in $(seq 50); do kill -0 "$FICUS_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$FICUS_PID" 2>/dev/null; then
  echo "demo: ficus did not exit within 5 s" >&2
  exit 1
fi
wait "$FICUS_PID" && echo "   ficus exited cleanly" || { echo "demo: ficus exited with $?" >&2; exit 1; }
FICUS_PID=""
