#!/usr/bin/env bash
# Runs every libFuzzer binary of the fuzz build for SECONDS each, starting from its seed corpus
# in fuzz/corpus/NAME/ (copied to a scratch directory: new inputs do not touch the repository).
# A crashing input is saved under fuzz/artifacts/NAME/; add it to the corpus once fixed, so
# that it replays in every ctest run. Exits non-zero if any fuzzer crashed (or none was found).
#
#   scripts/fuzz.sh [SECONDS]          (default 60; `make fuzz` passes FUZZ_SECONDS)
#   FICUS_FUZZ_BUILD=/path/to/build scripts/fuzz.sh 30    (default: build/fuzz, the preset)
set -uo pipefail

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "usage: $0 [SECONDS]" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FICUS_FUZZ_BUILD:-$root/build/fuzz}"
artifacts="$root/fuzz/artifacts"

fuzzers=()
for bin in "$build"/fuzz/*_fuzz; do
  [ -f "$bin" ] && [ -x "$bin" ] && fuzzers+=("$bin")
done
if [ ${#fuzzers[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzzers in $build/fuzz; build them first:" >&2
  echo "  cmake --preset fuzz && cmake --build --preset fuzz" >&2
  exit 2
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/ficus-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

# stat NAME LOG: the value of libFuzzer's -print_final_stats line "stat::NAME: VALUE".
stat() { sed -n "s/^stat::$1: *\([0-9]*\).*/\1/p" "$2" | tail -n 1; }

echo "fuzz.sh: ${#fuzzers[@]} fuzzer(s), ${seconds}s each"
failed=0
summary=()
for bin in "${fuzzers[@]}"; do
  name="$(basename "$bin")"
  work="$scratch/$name"
  log="$scratch/$name.log"
  mkdir -p "$work" "$artifacts/$name"
  seeds=0
  if [ -d "$root/fuzz/corpus/$name" ]; then
    cp -R "$root/fuzz/corpus/$name/." "$work/"
    seeds="$(find "$root/fuzz/corpus/$name" -type f | wc -l)"
  fi
  printf '%-24s running (%s seeds) ...\n' "$name" "$seeds"
  start="$(date +%s.%N)"
  "$bin" "$work" -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$name/" >"$log" 2>&1
  rc=$?
  elapsed="$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
  execs="$(stat number_of_executed_units "$log")"
  per_sec="$(stat average_exec_per_sec "$log")"
  if [ -n "$execs" ] && { [ -z "$per_sec" ] || [ "$per_sec" = 0 ]; }; then
    per_sec="$(awk -v n="$execs" -v t="$elapsed" 'BEGIN { printf "%d", (t > 0 ? n / t : 0) }')"
  fi
  added="$(stat new_units_added "$log")"
  corpus="$(find "$work" -type f | wc -l)"
  if [ "$rc" -eq 0 ]; then
    result="ok"
  else
    result="CRASH (exit $rc)"
    failed=$((failed + 1))
    echo "---- $name: last lines of its log ----"
    tail -n 40 "$log"
    echo "---- artifacts in $artifacts/$name/:"
    find "$artifacts/$name" -type f | sed 's/^/  /'
  fi
  summary+=("$(printf '%-24s %-16s %7ss %12s execs %9s execs/s %6s new %7s corpus' \
    "$name" "$result" "$elapsed" "${execs:-?}" "${per_sec:-?}" "${added:-?}" "$corpus")")
  rmdir "$artifacts/$name" 2>/dev/null || true  # keep the directory only if it holds a crash
done
rmdir "$artifacts" 2>/dev/null || true

echo
echo "==== fuzz summary (${seconds}s each) ===="
printf '%s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
  echo "FAILED: $failed fuzzer(s) crashed; reproduce with: $build/fuzz/NAME ARTIFACT"
  exit 1
fi
echo "OK: no crashes"
