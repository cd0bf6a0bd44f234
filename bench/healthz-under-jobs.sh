#!/usr/bin/env bash
# Does CPU-heavy job work starve the requests the load balancer depends on? Requests/s and p99 of
# GET /healthz on one release build of the service, first with every job worker idle, then with
# every worker busy profiling a large CSV, in the same run, printed as ratios (busy / idle).
#
# Usage: bench/healthz-under-jobs.sh   (SIZE_MIB=256 WORKERS=<cores> JOBS=<16 x workers>
#                                       DURATION=10s CONNECTIONS=32 THREADS=1 BINARY=)
# Needs: wrk (apt-get install wrk), jq, psql, PostgreSQL at TEST_DATABASE_ADMIN_URL
# (default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB="${SIZE_MIB:-256}"
WORKERS="${WORKERS:-$(nproc)}"
JOBS="${JOBS:-$((WORKERS * 16))}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-1}"
for tool in wrk jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
export THREADS CONNECTIONS DURATION
# shellcheck source=bench/lib/service.sh
source bench/lib/service.sh

# A CSV with integer, float, string and date columns, repeated to SIZE_MIB.
python3 - "$work/data.csv" "$SIZE_MIB" <<'EOF'
import random, sys
path, mib = sys.argv[1], int(sys.argv[2])
random.seed(1)
rows = "".join(
    f"{i},{random.random() * 1000:.4f},name-{random.randrange(100000)},2026-{1 + i % 12:02d}-{1 + i % 28:02d}\n"
    for i in range(20000)
).encode()
with open(path, "wb") as f:
    f.write(b"id,amount,name,day\n")
    while f.tell() < mib * 1024 * 1024:
        f.write(rows)
EOF

start_service JOB_WORKERS="$WORKERS" JOB_POLL_INTERVAL=200ms
sign_in
file_id=$(curl -fsS -H "cookie: $cookie" -H 'content-type: text/csv' --data-binary "@$work/data.csv" \
  "$base/api/v1/files?name=data.csv" | jq -r .id)

measure() { wrk_measure /healthz; }

jobs_in() {
  curl -fsS -H "cookie: $cookie" "$base/api/v1/jobs?limit=100" | jq --arg s "$1" '[.jobs[] | select(.status == $s)] | length'
}
running_jobs() { jobs_in running; }

read -r idle_rps idle_p50 idle_p99 idle_err < <(measure)
echo "idle:  ${idle_rps} req/s  p50 ${idle_p50} ms  p99 ${idle_p99} ms  non-2xx ${idle_err}"

# Enough jobs to keep every worker busy for the whole measurement (a release build profiles about
# 150 MB/s per worker); the rest are left queued when the service stops.
for _ in $(seq 1 "$JOBS"); do
  curl -fsS -o /dev/null -H "cookie: $cookie" -H 'content-type: application/json' \
    -d '{"kind":"profile"}' "$base/api/v1/files/$file_id/jobs"
done
for _ in $(seq 1 100); do
  [ "$(running_jobs)" -ge "$WORKERS" ] && break
  sleep 0.1
done
[ "$(running_jobs)" -ge "$WORKERS" ] || { echo "bench: the workers did not all start a job" >&2; exit 1; }
read -r busy_rps busy_p50 busy_p99 busy_err < <(measure)
still=$(running_jobs)
done_jobs=$(jobs_in succeeded)
echo "busy:  ${busy_rps} req/s  p50 ${busy_p50} ms  p99 ${busy_p99} ms  non-2xx ${busy_err}  (at the end: $still running, $done_jobs succeeded)"
[ "$still" -ge "$WORKERS" ] || echo "bench: warning: the workers ran out of jobs during the measurement; raise JOBS" >&2
[ "$idle_err" = 0 ] && [ "$busy_err" = 0 ] || { echo "bench: /healthz returned errors" >&2; exit 1; }

ratio() { printf "%.2f" "$(echo "$1 / $2" | bc -l)"; }
echo
echo "$WORKERS workers on $(nproc) cores, ${SIZE_MIB} MiB CSV, wrk $THREADS thread(s) x $CONNECTIONS connections, $DURATION each"
echo "busy / idle:  throughput x$(ratio "$busy_rps" "$idle_rps")   p50 x$(ratio "$busy_p50" "$idle_p50")   p99 x$(ratio "$busy_p99" "$idle_p99")"
