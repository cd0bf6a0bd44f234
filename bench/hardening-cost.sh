#!/usr/bin/env bash
# What the edge bounds of issue 9 cost (rate limiter, hashing/upload slots, request timeout, body
# idle timeout, client-address extraction): the same requests against a release build from
# before them and one from after, in the same run, interleaved, printed as ratios (after/before).
#   GET /api/v1/session     requests/s and p99 (wrk): every authenticated request
#   POST /api/v1/files      MiB/s of a 64 MiB upload to local storage (curl), the streaming path
#
# Usage: bench/hardening-cost.sh   (BEFORE=a240715 AFTER=HEAD DURATION=10s CONNECTIONS=32 THREADS=2
#                                   ROUNDS=3 UPLOAD_MIB=64 BINARY_BEFORE= BINARY_AFTER=)
# Builds each revision in a temporary git worktree (release profile) unless BINARY_* is given.
# Needs: wrk, curl, jq, psql, bc, PostgreSQL at TEST_DATABASE_ADMIN_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

BEFORE="${BEFORE:-a240715}"
AFTER="${AFTER:-HEAD}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-3}"
UPLOAD_MIB="${UPLOAD_MIB:-64}"
for tool in wrk curl jq bc; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done
export THREADS CONNECTIONS DURATION

build_rev() {
  local rev=$1 dir
  dir=$(mktemp -d)
  git worktree add --quiet --detach "$dir" "$rev"
  (cd "$dir" && cargo build --release --quiet -p data-processor) >&2
  local out="$CARGO_TARGET_DIR/bench-bin"
  mkdir -p "$out"
  cp "$CARGO_TARGET_DIR/release/data-processor" "$out/data-processor-$rev"
  git worktree remove --force "$dir"
  echo "$out/data-processor-$rev"
}
before_bin="${BINARY_BEFORE:-}"
after_bin="${BINARY_AFTER:-}"
# Both builds share one target folder, so the second one only recompiles the service.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
[ -n "$before_bin" ] || before_bin=$(build_rev "$(git rev-parse --short "$BEFORE")")
[ -n "$after_bin" ] || after_bin=$(build_rev "$(git rev-parse --short "$AFTER")")

# The service library starts one binary at a time; BINARY selects it.
BINARY="$before_bin"
# shellcheck source=bench/lib/service.sh
source bench/lib/service.sh
head -c "$((UPLOAD_MIB * 1024 * 1024))" /dev/zero | tr '\0' 'x' >"$work/upload.csv"

# Measures one binary; sets m_rps, m_p99 (ms) and m_up (MiB/s). Runs in this shell, not a
# subshell, so stop_service really drops the database it started.
measure_binary() {
  local p50 e start end
  binary=$1
  start_service RUST_LOG=warn
  sign_in
  read -r m_rps p50 m_p99 e <<<"$(wrk_measure /api/v1/session -H "Cookie: $cookie")"
  [ "$e" = 0 ] || { echo "bench: GET /api/v1/session returned errors" >&2; exit 1; }
  start=$(date +%s.%N)
  for i in 1 2 3; do
    curl -fsS -o /dev/null -H "cookie: $cookie" -H 'content-type: text/csv' \
      --data-binary "@$work/upload.csv" "$base/api/v1/files?name=up-$i.csv"
  done
  end=$(date +%s.%N)
  m_up=$(echo "3 * $UPLOAD_MIB / ($end - $start)" | bc -l)
  stop_service
  rm -rf "$work/files"
}

declare -A sum
for k in b_rps b_p99 b_up a_rps a_p99 a_up; do sum[$k]=0; done
add() { sum[$1_rps]=$(echo "${sum[$1_rps]} + $m_rps" | bc -l); sum[$1_p99]=$(echo "${sum[$1_p99]} + $m_p99" | bc -l); sum[$1_up]=$(echo "${sum[$1_up]} + $m_up" | bc -l); }
measure_before() {
  measure_binary "$before_bin"
  printf 'round %s  before  session %8.0f req/s  p99 %6.2f ms  upload %7.1f MiB/s\n' "$round" "$m_rps" "$m_p99" "$m_up"
  add b
}
measure_after() {
  measure_binary "$after_bin"
  printf 'round %s  after   session %8.0f req/s  p99 %6.2f ms  upload %7.1f MiB/s\n' "$round" "$m_rps" "$m_p99" "$m_up"
  add a
}
for round in $(seq 1 "$ROUNDS"); do
  # Interleaved, and in alternating order, so drift on the machine (and whatever running second
  # in a round does) hits both builds alike.
  if [ $((round % 2)) = 1 ]; then measure_before; measure_after; else measure_after; measure_before; fi
done
ratio() { printf "%.3f" "$(echo "$1 / $2" | bc -l)"; }
echo
echo "mean of $ROUNDS rounds ($DURATION wrk, $CONNECTIONS connections; 3 x $UPLOAD_MIB MiB uploads), $(nproc) cores"
echo "before = $BEFORE, after = $AFTER"
echo "session throughput  after/before x$(ratio "${sum[a_rps]}" "${sum[b_rps]}")"
echo "session p99         after/before x$(ratio "${sum[a_p99]}" "${sum[b_p99]}")"
echo "upload throughput   after/before x$(ratio "${sum[a_up]}" "${sum[b_up]}")"
