#!/usr/bin/env bash
# What a session costs: requests/s and p99 latency of
#   GET /healthz          (no database: the HTTP stack's baseline)
#   GET /api/v1/_ping-db  (one `SELECT 1` through the pool: the database round trip)
#   GET /api/v1/session   (a session lookup: what every authenticated request pays), on a replica
#                         with the session cache (the default) and on a second replica of the same
#                         database with SESSION_CACHE_CAPACITY=0 (one SELECT per read)
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
# The second replica: same database (the cookie is valid there too), no session cache.
uncached_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uncached="http://127.0.0.1:$uncached_port"
env LISTEN_ADDR="127.0.0.1:$uncached_port" DATABASE_URL="${ADMIN_URL%/*}/$db" STORAGE_URL="$work/files" \
  SESSION_COOKIE_SECURE=false RUST_LOG=info LOG_FORMAT=json SESSION_CACHE_CAPACITY=0 "$binary" >"$work/uncached.log" 2>&1 &
uncached_pid=$!
trap 'kill $uncached_pid 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$uncached/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $cookie" "$uncached/api/v1/session")" = 200 ] \
  || { echo "bench: the uncached replica does not accept the session" >&2; cat "$work/uncached.log" >&2; exit 1; }

# Prints "requests_per_second p99_ms non_2xx".
measure() {
  local r p50 p99 e
  read -r r p50 p99 e < <(wrk_measure "$@")
  echo "$r $p99 $e"
}

declare -A rps_sum p99_sum
for route in healthz select session uncached; do rps_sum[$route]=0; p99_sum[$route]=0; done
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
  read -r r p e < <(base=$uncached measure /api/v1/session -H "Cookie: $cookie")
  echo "round $round  GET /api/v1/session   ${r} req/s  p99 ${p} ms  non-2xx ${e}  (cache off)"
  rps_sum[uncached]=$(echo "${rps_sum[uncached]} + $r" | bc -l); p99_sum[uncached]=$(echo "${p99_sum[uncached]} + $p" | bc -l)
  [ "$e" = 0 ] || { echo "bench: GET /api/v1/session (cache off) returned errors" >&2; exit 1; }
done

avg() { echo "scale=2; $1 / $ROUNDS" | bc -l; }
ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }
h_rps=$(avg "${rps_sum[healthz]}"); s_rps=$(avg "${rps_sum[select]}"); q_rps=$(avg "${rps_sum[session]}")
h_p99=$(avg "${p99_sum[healthz]}"); s_p99=$(avg "${p99_sum[select]}"); q_p99=$(avg "${p99_sum[session]}")
u_rps=$(avg "${rps_sum[uncached]}"); u_p99=$(avg "${p99_sum[uncached]}")
echo
echo "mean of $ROUNDS rounds, $DURATION each, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
printf '%-24s %12s %10s\n' route 'req/s' 'p99 ms'
printf '%-24s %12s %10s\n' 'GET /healthz' "$h_rps" "$h_p99"
printf '%-24s %12s %10s\n' 'GET /api/v1/_ping-db' "$s_rps" "$s_p99"
printf '%-24s %12s %10s\n' 'GET /api/v1/session' "$q_rps" "$q_p99"
printf '%-24s %12s %10s\n' '  ... cache off' "$u_rps" "$u_p99"
echo
echo "session / healthz:   throughput x$(ratio "$q_rps" "$h_rps")   p99 x$(ratio "$q_p99" "$h_p99")"
echo "session / SELECT 1:  throughput x$(ratio "$q_rps" "$s_rps")   p99 x$(ratio "$q_p99" "$s_p99")   (target >= x3)"
echo "cache on / off:      throughput x$(ratio "$q_rps" "$u_rps")   p99 x$(ratio "$q_p99" "$u_p99")"
echo "SELECT 1 / healthz:  throughput x$(ratio "$s_rps" "$h_rps")   p99 x$(ratio "$s_p99" "$h_p99")"
