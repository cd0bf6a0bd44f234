#!/usr/bin/env bash
# A session read against the usual Node.js recipe, same machine, same Postgres, same run:
#   GET /api/v1/session on one release build of data-processor (session cache on, the default)
#   GET /session on Express + express-session + connect-pg-simple (bench/express-session,
#       one worker per core via node:cluster)
# interleaved rounds, printed as ratios (issue 13's target: >= x20).
#
# Usage: bench/session-vs-express.sh   (DURATION=10s CONNECTIONS=32 THREADS=2 ROUNDS=2 BINARY=)
# Needs: wrk, node + npm (installs the Express app's packages from the npm registry once), psql,
# PostgreSQL at TEST_DATABASE_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
for tool in wrk node npm; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
export THREADS CONNECTIONS DURATION
# shellcheck source=bench/lib/service.sh
source bench/lib/service.sh
start_service
sign_in

[ -d bench/express-session/node_modules ] || (cd bench/express-session && npm ci --no-audit --no-fund --silent)
express_db="bench_express_$(date +%s%N)_$$"
psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$express_db\"" >/dev/null
express_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
express="http://127.0.0.1:$express_port"
PORT=$express_port DATABASE_URL="${ADMIN_URL%/*}/$express_db" node bench/express-session/server.js \
  >"$work/express.log" 2>&1 &
express_pid=$!
stop_express() {
  kill "$express_pid" 2>/dev/null || true
  wait "$express_pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$express_db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap 'stop_express; cleanup' EXIT
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null -X POST "$express/login" 2>/dev/null && break
  sleep 0.1
done
express_cookie=$(curl -fsS -o /dev/null -D - -X POST "$express/login" | tr -d '\r' \
  | sed -n 's/^[Ss]et-[Cc]ookie: \(sid=[^;]*\).*/\1/p')
[ -n "$express_cookie" ] || { echo "bench: the Express app set no session cookie:" >&2; cat "$work/express.log" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $express_cookie" "$express/session")" = 200 ] \
  || { echo "bench: the Express session cookie does not authenticate" >&2; exit 1; }

ours_rps=0; ours_p99=0; node_rps=0; node_p99=0
for round in $(seq 1 "$ROUNDS"); do
  # Alternating which goes first, so drift on the machine does not favour either.
  for who in $( ((round % 2)) && echo "ours node" || echo "node ours"); do
    if [ "$who" = ours ]; then
      read -r r _ p e < <(wrk_measure /api/v1/session -H "Cookie: $cookie")
      echo "round $round  data-processor GET /api/v1/session  ${r} req/s  p99 ${p} ms  non-2xx ${e}"
      ours_rps=$(echo "$ours_rps + $r" | bc -l); ours_p99=$(echo "$ours_p99 + $p" | bc -l)
    else
      read -r r _ p e < <(base=$express wrk_measure /session -H "Cookie: $express_cookie")
      echo "round $round  Express GET /session                ${r} req/s  p99 ${p} ms  non-2xx ${e}"
      node_rps=$(echo "$node_rps + $r" | bc -l); node_p99=$(echo "$node_p99 + $p" | bc -l)
    fi
    [ "$e" = 0 ] || { echo "bench: $who answered errors" >&2; exit 1; }
  done
done

avg() { echo "scale=2; $1 / $ROUNDS" | bc -l; }
ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }
echo
echo "mean of $ROUNDS rounds, $DURATION each, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
printf '%-40s %12s %10s\n' 'session read' 'req/s' 'p99 ms'
printf '%-40s %12s %10s\n' 'data-processor (cache on)' "$(avg "$ours_rps")" "$(avg "$ours_p99")"
printf '%-40s %12s %10s\n' 'Express + express-session + pg store' "$(avg "$node_rps")" "$(avg "$node_p99")"
echo
echo "data-processor / Express: throughput x$(ratio "$ours_rps" "$node_rps")   p99 x$(ratio "$ours_p99" "$node_p99")   (target >= x20)"
