#!/usr/bin/env bash
# `make demo`: the sample shop (examples/shop, with its planted problems) behind ficus with the
# embedded defaults and the shop's SLOs, a bounded `ficus assess`, the traffic mix of
# examples/shop/traffic.yaml, then the scaling report: its summary here and the path of the
# HTML page. Everything runs on 127.0.0.1 (ports picked free, data dir in a temp dir) and
# everything started here is stopped on exit, by PID. About 1.5 minutes.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FICUS_BIN:-$ROOT/build/release/apps/ficus}"
SHOP="$ROOT/examples/shop"
SECONDS_OF_TRAFFIC="${DEMO_SECONDS:-45}"

if [[ ! -x "$BIN" ]]; then
  echo "demo: $BIN not found; run 'make build' first" >&2
  exit 1
fi

WORK="$(mktemp -d -t ficus-demo.XXXXXX)"
OUT="${DEMO_OUT:-$ROOT/build/demo}"
mkdir -p "$OUT"
SHOP_PID=""
FICUS_PID=""

cleanup() {
  local rc=$?
  for pid in "$FICUS_PID" "$SHOP_PID"; do
    [[ -n "$pid" ]] || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
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

echo "== starting the shop (examples/shop/shop.py)"
python3 "$SHOP/shop.py" --port 0 >"$WORK/shop.out" 2>&1 &
SHOP_PID=$!
for _ in $(seq 100); do grep -q '^READY ' "$WORK/shop.out" 2>/dev/null && break; sleep 0.05; done
SHOP_PORT=$(awk '/^READY /{print $2; exit}' "$WORK/shop.out")
[[ -n "$SHOP_PORT" ]] || { echo "demo: the shop did not start" >&2; cat "$WORK/shop.out" >&2; exit 1; }
LISTEN=$(free_port)
ADMIN=$(free_port)

# The shop's own config (routes, SLOs) on the ports picked here, data in the temp dir, and an
# admin token made up for this run: with it `ficus assess` registers its per-run key and its
# step load stays out of the SLOs.
TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
sed -e "s/127.0.0.1:3000/127.0.0.1:$SHOP_PORT/; s/127.0.0.1:8080/127.0.0.1:$LISTEN/; s/listen: 127.0.0.1:9901/listen: 127.0.0.1:$ADMIN, token: $TOKEN/" \
  "$SHOP/ficus.yaml" >"$WORK/ficus.yaml"
echo "data_dir: $WORK/data" >>"$WORK/ficus.yaml"
sed -e "s#127.0.0.1:8080#127.0.0.1:$LISTEN#" "$SHOP/traffic.yaml" >"$WORK/traffic.yaml"

echo "== starting ficus on 127.0.0.1:$LISTEN (admin 127.0.0.1:$ADMIN), shop on 127.0.0.1:$SHOP_PORT"
"$BIN" run -c "$WORK/ficus.yaml" >"$WORK/ficus.log" 2>&1 &
FICUS_PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== ficus assess: step load up to 120 req/s, 20 s at most"
"$BIN" assess -c "$WORK/ficus.yaml" --routes catalog,checkout --max-rate 120 --max-duration 12s --steps 4
"$BIN" assess -c "$WORK/ficus.yaml" --scenario "$WORK/traffic.yaml" --max-rate 120 --max-duration 8s --steps 4

echo "== the traffic mix (examples/shop/traffic.yaml) for ${SECONDS_OF_TRAFFIC}s"
# The shop's planted checkout errors are about 1 % of this mix; beyond 10 % something is broken
# (the shop, ficus or the machine) and the report that follows would describe that instead.
if ! "$BIN" load "$WORK/traffic.yaml" --rate 60 --duration "${SECONDS_OF_TRAFFIC}s" \
    --threshold 'errors<10%' >"$WORK/load.txt" 2>&1; then
  cat "$WORK/load.txt" >&2
  echo "demo: the traffic mix failed (see the summary above); stopping before the report" >&2
  exit 1
fi
sed -n '1,6p' "$WORK/load.txt"

# A graceful stop makes the telemetry thread write the last interval.
kill -TERM "$FICUS_PID"
wait "$FICUS_PID" 2>/dev/null || true
FICUS_PID=""

echo "== ficus report"
"$BIN" report -c "$WORK/ficus.yaml" --period 15m --instance-price 50/month --active-users 500
"$BIN" report -c "$WORK/ficus.yaml" --period 15m --instance-price 50/month --active-users 500 \
  --format html -o "$OUT/report.html"
"$BIN" report -c "$WORK/ficus.yaml" --period 15m --format markdown -o "$OUT/report.md"
"$BIN" report -c "$WORK/ficus.yaml" --period 15m --format json -o "$OUT/report.json"
echo
echo "HTML report: $OUT/report.html   (Markdown: $OUT/report.md, JSON: $OUT/report.json)"
