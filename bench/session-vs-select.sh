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
ADMIN_URL="${TEST_DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
command -v psql >/dev/null || { echo "bench: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }

# BINARY=path/to/data-processor skips the build (a release build is what should be measured).
binary="${BINARY:-}"
if [ -z "$binary" ]; then
  cargo build --release --quiet -p data-processor
  binary="${CARGO_TARGET_DIR:-target}/release/data-processor"
fi

work=$(mktemp -d)
db="bench_$(date +%s)_$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
database_url="${ADMIN_URL%/*}/$db"

LISTEN_ADDR="127.0.0.1:$port" DATABASE_URL="$database_url" STORAGE_URL="$work/files" \
  SESSION_COOKIE_SECURE=false RUST_LOG=info LOG_FORMAT=json \
  "$binary" >"$work/service.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null || { echo "bench: the service did not start:" >&2; cat "$work/service.log" >&2; exit 1; }

credentials='{"username":"bench-user","password":"benchmark password 1"}'
curl -fsS -o /dev/null -H 'content-type: application/json' -d "$credentials" "$base/api/v1/users"
cookie=$(curl -fsS -o /dev/null -D - -H 'content-type: application/json' -d "$credentials" \
  "$base/api/v1/session" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(dp_session=[^;]*\).*/\1/p')
[ -n "$cookie" ] || { echo "bench: login returned no session cookie" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $cookie" "$base/api/v1/session")" = 200 ] \
  || { echo "bench: the session cookie does not authenticate" >&2; exit 1; }

# Runs wrk on a path; prints "requests_per_second p99_ms non_2xx".
measure() {
  local path=$1; shift
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$base$path")
  local rps p99 errors
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}' <<<"$out")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "$rps $p99 ${errors:-0}"
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
