#!/usr/bin/env bash
# What a session costs: requests/s and p99 latency of
#   GET /healthz          (no database: the HTTP stack's baseline)
#   GET /api/v1/_ping-db  (one `SELECT 1` through the pool: the database round trip)
#   GET /api/v1/session   (one session lookup in Postgres: what every authenticated request pays)
# against one release build of the service on Postgres, in the same run, printed as ratios.
#
# Usage: bench/session-vs-select.sh   (DURATION=10s CONNECTIONS=32 THREADS=2 ROUNDS=2 BINARY=)
# Needs: wrk (apt-get install wrk), psql, PostgreSQL at TEST_DATABASE_ADMIN_URL
# (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
export THREADS CONNECTIONS DURATION
# shellcheck source=bench/lib/service.sh
source bench/lib/service.sh
start_service RUST_LOG=info
sign_in

# Prints "requests_per_second p99_ms non_2xx".
measure() {
  local r p50 p99 e
  read -r r p50 p99 e < <(wrk_measure "$@")
  echo "$r $p99 $e"
}

declare -A rps_sum p99_sum
for route in healthz select session; do rps_sum[$route]=0; p99_sum[$route]=0; done
for round in $(seq 1 "$ROUNDS"); do
  # Interleaved, so a noisy neighbour on the machine hits every route alike.
  read -r r p e < <(measure /healthz)
  echo "round $round  GET /healthz          ${r} req/s  p99 ${p} ms  non-2xx ${e}"
  rps_sum[healthz]=$(echo "${rps_sum[healthz]} + $r" | bc -l); p99_sum[healthz]=$(echo "${p99_sum[healthz]} + $p" | bc -l)
  read -r r p e < <(measure /api/v1/_ping-db)
  echo "round $round  GET /api/v1/_ping-db  ${r} req/s  p99 ${p} ms  non-2xx ${e}"
  rps_sum[select]=$(echo "${rps_sum[select]} + $r" | bc -l); p99_sum[select]=$(echo "${p99_sum[select]} + $p" | bc -l)
  read -r r p e < <(measure /api/v1/session -H "Cookie: $cookie")
  echo "round $round  GET /api/v1/session   ${r} req/s  p99 ${p} ms  non-2xx ${e}"
  rps_sum[session]=$(echo "${rps_sum[session]} + $r" | bc -l); p99_sum[session]=$(echo "${p99_sum[session]} + $p" | bc -l)
  [ "$e" = 0 ] || { echo "bench: GET /api/v1/session returned errors" >&2; exit 1; }
done

avg() { echo "scale=2; $1 / $ROUNDS" | bc -l; }
ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }
h_rps=$(avg "${rps_sum[healthz]}"); s_rps=$(avg "${rps_sum[select]}"); q_rps=$(avg "${rps_sum[session]}")
h_p99=$(avg "${p99_sum[healthz]}"); s_p99=$(avg "${p99_sum[select]}"); q_p99=$(avg "${p99_sum[session]}")
echo
echo "mean of $ROUNDS rounds, $DURATION each, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
printf '%-24s %12s %10s\n' route 'req/s' 'p99 ms'
printf '%-24s %12s %10s\n' 'GET /healthz' "$h_rps" "$h_p99"
printf '%-24s %12s %10s\n' 'GET /api/v1/_ping-db' "$s_rps" "$s_p99"
printf '%-24s %12s %10s\n' 'GET /api/v1/session' "$q_rps" "$q_p99"
echo
echo "session / healthz:   throughput x$(ratio "$q_rps" "$h_rps")   p99 x$(ratio "$q_p99" "$h_p99")"
echo "session / SELECT 1:  throughput x$(ratio "$q_rps" "$s_rps")   p99 x$(ratio "$q_p99" "$s_p99")"
echo "SELECT 1 / healthz:  throughput x$(ratio "$s_rps" "$h_rps")   p99 x$(ratio "$s_p99" "$h_p99")"
