#!/usr/bin/env bash
# Installs every Debian package ficus needs to build, test, fuzz and benchmark.
# Idempotent: when everything is present it only checks and exits (about a second).
set -euo pipefail

packages=(
  # toolchain and build
  build-essential g++ cmake ninja-build ccache pkg-config make git
  # libraries (see shared/DESIGN.md "Dependencies")
  libboost1.81-dev libssl-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev
  libsqlite3-dev zlib1g-dev
  # response compression (src/compress): brotli and zstd encoders
  libbrotli-dev libzstd-dev
  # tests, fuzzing, benchmarks, style
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev clang-format
  python3 python3-cryptography curl procps psmisc iproute2
  # TLS: the system CA store the HTTP client trusts by default, and the openssl command the
  # client's tests make a throwaway CA with; systemd-analyze checks the packaged unit
  ca-certificates openssl systemd
  # peers the benchmarks and tests measure against (varnish: bench/cache's hit path)
  nginx-light haproxy wrk varnish
  # Redis: the job queue's side-by-side anchor (bench/offload: XADD with appendfsync always)
  redis-server
  # promtool (exposition and `ficus slo rules` checks) and a real Prometheus scraping ficus
  prometheus
  # the HTML report's browser test: Debian's chromium driven by playwright-core (npm)
  chromium nodejs
  # the PostgreSQL proxy's tests and benchmark: a real PostgreSQL 15 (initdb'd per test), its
  # clients (psql, pgbench), psycopg2, and PgBouncer as the side-by-side anchor
  postgresql postgresql-client pgbouncer python3-psycopg2
)
# Debian's nodejs needs its npm package; a nodejs that bundles npm conflicts with it.
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# The nginx, haproxy, prometheus, redis, varnish, postgresql and pgbouncer packages start system
# services (ports 80, 9090, 6379, 6081, 5432, ...) that ficus never needs: the tests, the demo
# and the benchmarks start their own.
for service in nginx haproxy prometheus redis-server varnish postgresql pgbouncer; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    $sudo systemctl stop "$service" || true
  fi
done
# Without systemd (containers), Debian's postgresql package starts its default cluster through
# pg_ctlcluster: stop it too; the pg tests initdb their own on ports they pick.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
    if [ "$status" = online ]; then $sudo pg_ctlcluster "$ver" "$name" stop || true; fi
  done
fi
