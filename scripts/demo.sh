#!/usr/bin/env bash
# `make demo`: the sample shop (examples/shop, with its planted problems) behind ficus with the
# embedded defaults and the shop's SLOs, a bounded `ficus assess`, the traffic mix of
# examples/shop/traffic.yaml, then the scaling report: its summary here and the path of the
# HTML page; then `ficus prove --all`: each finding's remedy applied through the admin API,
# the same load run before and after, the change kept only when the statistics say it helped,
# ending with the before/after table (and the report files regenerated with the proof section).
# Everything runs on 127.0.0.1 (ports picked free, data dir in a temp dir) and everything
# started here is stopped on exit, by PID. About 3.5 minutes.
#
# Knobs (environment): DEMO_SECONDS (the traffic mix, default 45), DEMO_PROVE_STEP (each step
# of a proof's step load, default 2s), DEMO_PROVE_RATE (the step load's top rate, default 120),
# DEMO_FLOOD_RATE (the noisy client's flood, default 1500 req/s), DEMO_PROVE=0 skips the proof.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${FICUS_BIN:-$ROOT/build/release/apps/ficus}"
SHOP="$ROOT/examples/shop"
SECONDS_OF_TRAFFIC="${DEMO_SECONDS:-45}"
PROVE_STEP="${DEMO_PROVE_STEP:-2s}"
PROVE_RATE="${DEMO_PROVE_RATE:-120}"
FLOOD_RATE="${DEMO_FLOOD_RATE:-1500}"

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

start_ficus() {
  "$BIN" run -c "$WORK/ficus.yaml" >>"$WORK/ficus.log" 2>&1 &
  FICUS_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
}

# A graceful stop makes the telemetry thread write the last interval.
stop_ficus() {
  kill -TERM "$FICUS_PID"
  wait "$FICUS_PID" 2>/dev/null || true
  FICUS_PID=""
}

echo "== starting ficus on 127.0.0.1:$LISTEN (admin 127.0.0.1:$ADMIN), shop on 127.0.0.1:$SHOP_PORT"
start_ficus

echo "== ficus assess: step load up to 120 req/s, 20 s at most"
"$BIN" assess -c "$WORK/ficus.yaml" --routes catalog,checkout --max-rate 120 --max-duration 12s --steps 4
"$BIN" assess -c "$WORK/ficus.yaml" --scenario "$WORK/traffic.yaml" --max-rate 120 --max-duration 8s --steps 4

echo "== the traffic mix (examples/shop/traffic.yaml) for ${SECONDS_OF_TRAFFIC}s"
TRAFFIC_START=$(date +%s)
# The shop's planted checkout errors are about 1 % of this mix; beyond 10 % something is broken
# (the shop, ficus or the machine) and the report that follows would describe that instead.
if ! "$BIN" load "$WORK/traffic.yaml" --rate 60 --duration "${SECONDS_OF_TRAFFIC}s" \
    --threshold 'errors<10%' >"$WORK/load.txt" 2>&1; then
  cat "$WORK/load.txt" >&2
  echo "demo: the traffic mix failed (see the summary above); stopping before the report" >&2
  exit 1
fi
sed -n '1,6p' "$WORK/load.txt"

stop_ficus

echo "== ficus report"
"$BIN" report -c "$WORK/ficus.yaml" --period 15m --instance-price 50/month --active-users 500

write_reports() {
  "$BIN" report -c "$WORK/ficus.yaml" --period 15m --instance-price 50/month --active-users 500 \
    --format html -o "$OUT/report.html"
  "$BIN" report -c "$WORK/ficus.yaml" --period 15m --format markdown -o "$OUT/report.md"
  "$BIN" report -c "$WORK/ficus.yaml" --period 15m --format json -o "$OUT/report.json"
}

if [[ "${DEMO_PROVE:-1}" == 0 ]]; then
  write_reports
  echo
  echo "HTML report: $OUT/report.html   (Markdown: $OUT/report.md, JSON: $OUT/report.json)"
  exit 0
fi

# The proof: the gateway again (same config and data), then each finding's remedy applied
# through the admin API and measured before and after with the same load (the traffic mix's own
# requests for each route; the noisy client flooding while the others browse). The demo's
# traffic has ended, so the live-traffic guard lets it run without --yes.
echo
echo "== ficus prove --all: apply each remedy, measure before and after, keep only what helped"
start_ficus
set +e
# The findings from the minutes of the traffic mix, from the start of its first minute (client
# keys are counted per minute; a longer period averages the noisy client's rate, and the limit
# suggested from it, over idle minutes). The other clients browse the catalog at their rate in
# the mix (27 % of 60 req/s) while the noisy one floods.
PROVE_PERIOD=$(( $(date +%s) - TRAFFIC_START / 60 * 60 + 5 ))
"$BIN" prove --all -c "$WORK/ficus.yaml" --period "${PROVE_PERIOD}s" \
  --scenario "$WORK/traffic.yaml" --max-rate "$PROVE_RATE" --steps 4 \
  --step-duration "$PROVE_STEP" --others-rate 16 --flood-rate "$FLOOD_RATE" --max-duration 4m |
  tee "$WORK/prove.txt"
PROVE_RC=${PIPESTATUS[0]}
set -e
stop_ficus
# 1: a finding could not be proven (said above); anything else is a failure of the run.
if [[ $PROVE_RC -gt 1 ]]; then
  echo "demo: ficus prove failed (exit $PROVE_RC)" >&2
  exit 1
fi
write_reports
echo
echo "HTML report: $OUT/report.html   (Markdown: $OUT/report.md, JSON: $OUT/report.json)"
echo
sed -n '/^Before and after/,/^$/p' "$WORK/prove.txt"
