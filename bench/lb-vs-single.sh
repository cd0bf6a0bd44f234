#!/usr/bin/env bash
# Issue 4 benchmark: throughput of 3 data-processor replicas behind HAProxy (the ALB stand-in)
# against 1 replica alone, same machine, same run, measured with `loadtest --scenario read`
# (session reads, listings and downloads of a file each user uploaded at start), printed as a
# ratio. On a 2-core machine this shows the cost of the load-balanced path, not scaling.
#
# Needs: PostgreSQL on 127.0.0.1:5432 (trust; or set PGADMIN_URL), moto_server and haproxy on
# PATH. Starts moto and HAProxy itself on free ports and stops everything it started on exit.
#
# Usage: bench/lb-vs-single.sh [USERS] [DURATION]      (defaults: 20 users, 20s)
#   DATA_PROCESSOR_BIN=path  use this service binary instead of building it.
#   PROFILE=dev              debug builds, for a quick smoke run (figures not representative).
set -euo pipefail

USERS=${1:-20}
DURATION=${2:-20s}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PGADMIN_URL=${PGADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$(mktemp -d -t lb-vs-single-XXXXXX)
DB=bench_lb_$$
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  psql -q "$PGADMIN_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  echo "logs and reports kept in $WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_http() { # URL: wait up to 60 s for a 200
  for _ in $(seq 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "no answer from $1 within 60 s" >&2; return 1
}

PROFILE=${PROFILE:-release}
OUT_DIR=$([[ $PROFILE == dev ]] && echo debug || echo "$PROFILE")
echo "building $PROFILE binaries..."
if [[ -n ${DATA_PROCESSOR_BIN:-} ]]; then
  cargo build --profile "$PROFILE" --quiet -p loadtest
  SERVICE_BIN=$DATA_PROCESSOR_BIN
else
  cargo build --profile "$PROFILE" --quiet -p data-processor -p loadtest
  SERVICE_BIN=$CARGO_TARGET_DIR/$OUT_DIR/data-processor
fi
BIN=$CARGO_TARGET_DIR/$OUT_DIR

psql -q "$PGADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
DATABASE_URL=${PGADMIN_URL%/*}/$DB

MOTO_PORT=$(free_port)
moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/"
BUCKET=bench-$$
curl -fsS -X PUT "http://127.0.0.1:$MOTO_PORT/$BUCKET" >/dev/null

export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_ACCESS_KEY_ID=testing \
  AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

start_replica() { # NAME PORT
  LISTEN_ADDR=127.0.0.1:$2 DATABASE_URL=$DATABASE_URL STORAGE_URL=s3://$BUCKET \
    S3_FORCE_PATH_STYLE=true SESSION_COOKIE_SECURE=false LOG_FORMAT=json \
    "$SERVICE_BIN" >"$WORK/$1.log" 2>&1 &
  PIDS+=($!)
  wait_http "http://127.0.0.1:$2/readyz"
}

SINGLE_PORT=$(free_port)
start_replica single "$SINGLE_PORT"
LB_PORTS=()
for i in 0 1 2; do
  p=$(free_port); LB_PORTS+=("$p"); start_replica "r$i" "$p"
done

LB_PORT=$(free_port)
{
  echo "global"
  echo "  maxconn 4096"
  echo "defaults"
  echo "  mode http"
  echo "  timeout connect 2s"
  echo "  timeout client 70s"
  echo "  timeout server 65s"
  echo "  timeout http-keep-alive 60s"
  echo "frontend front"
  echo "  bind 127.0.0.1:$LB_PORT"
  echo "  default_backend replicas"
  echo "backend replicas"
  echo "  balance roundrobin"
  echo "  option httpchk GET /healthz"
  echo "  http-check expect status 200"
  echo "  default-server inter 1000ms fall 2 rise 2"
  for i in 0 1 2; do echo "  server r$i 127.0.0.1:${LB_PORTS[$i]} check"; done
} >"$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$LB_PORT/healthz"

run() { # NAME PORT -> prints requests/s
  "$BIN/loadtest" --url "http://127.0.0.1:$2" --scenario read --users "$USERS" \
    --duration "$DURATION" --progress-interval 0s --json "$WORK/$1.json" >"$WORK/$1.out" 2>&1 ||
    { echo "loadtest against $1 failed, see $WORK/$1.out" >&2; tail -20 "$WORK/$1.out" >&2; exit 1; }
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["requests_per_s"], r["failures"], max(e["p99_ms"] for e in r["endpoints"] if e["endpoint"].startswith("GET")))' "$WORK/$1.json"
}

echo "measuring: $USERS users, $DURATION, scenario read"
read -r SINGLE_RPS SINGLE_FAIL SINGLE_P99 < <(run single "$SINGLE_PORT")
read -r LB_RPS LB_FAIL LB_P99 < <(run lb "$LB_PORT")

printf '\n%-28s %10s %9s %12s\n' "target" "req/s" "failures" "GET p99 ms"
printf '%-28s %10s %9s %12s\n' "1 replica (baseline)" "$SINGLE_RPS" "$SINGLE_FAIL" "$SINGLE_P99"
printf '%-28s %10s %9s %12s\n' "3 replicas behind HAProxy" "$LB_RPS" "$LB_FAIL" "$LB_P99"
python3 -c 'import sys; s,l=map(float,sys.argv[1:]); print(f"\nratio 3 replicas behind HAProxy / 1 replica alone: {l/s:.2f}x")' "$SINGLE_RPS" "$LB_RPS"
