#!/usr/bin/env bash
# Profiling throughput of csv-profile (one thread, release build) against `xsv stats` on the
# same generated CSV in the same run, plus csv-profile's peak RSS.
#
#   bench/profile-vs-xsv.sh                 # 1 GiB file
#   SIZE_MIB=256 bench/profile-vs-xsv.sh    # smaller file when time is short
#
# Env: SIZE_MIB (1024), RUNS (1; best of N per tool), DATA_DIR (/dev/shm if present, else
#      ${TMPDIR:-/tmp}), KEEP_DATA (0: delete a file this run generated),
#      CARGO_TARGET_DIR (target), RSS_LIMIT_MIB (100).
#
# The file lives in tmpfs (/dev/shm) by default (see bench/lib/csv-data.sh), and is read once
# before each run. So both tools read from memory and the
# figures measure CPU work. On a shared machine wall time includes waiting for a core, so
# throughput is also given per CPU second (user + sys), which is the fairer comparison.
# Note that `xsv stats` (default options) computes less than csv-profile: no distinct
# counts, no null tokens, no date/time parsing.
set -euo pipefail

RUNS=${RUNS:-1}
# shellcheck source=bench/lib/csv-data.sh
source "$(dirname "$0")/lib/csv-data.sh"

# run NAME CMD... -> appends "NAME wall user sys maxrss_kb" (best wall of RUNS) to results
run() {
    local name=$1
    shift
    local best=""
    for ((i = 0; i < RUNS; i++)); do
        cat "$DATA" >/dev/null
        /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" >"$WORK/$name.out"
        local line
        line=$(tail -n 1 "$WORK/time")
        if [[ -z $best ]] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
            best=$line
        fi
    done
    echo "$name $best" >>"$WORK/results"
}

# Alternate the tools so that a burst of load elsewhere hits both alike.
run csv-profile "$PROFILE" "$DATA"
run xsv-stats xsv stats "$DATA"

grep -q '"rows"' "$WORK/csv-profile.out" || {
    echo "bench: csv-profile printed no profile:" >&2
    cat "$WORK/csv-profile.out" >&2
    exit 1
}
ROWS=$(grep -m1 '"rows"' "$WORK/csv-profile.out" | tr -dc 0-9)

awk -v bytes="$BYTES" -v rows="$ROWS" -v limit="$RSS_LIMIT_MIB" '
    { name[NR] = $1; wall[NR] = $2; cpu[NR] = $3 + $4; rss[NR] = $5 / 1024 }
    END {
        mb = bytes / 1e6
        printf "file: %.1f MiB, %d rows\n", bytes / 1048576, rows
        printf "%-12s %8s %8s %12s %12s %14s\n", "tool", "wall s", "cpu s", "MB/s wall", "MB/s cpu", "peak RSS MiB"
        for (i = 1; i <= NR; i++)
            printf "%-12s %8.2f %8.2f %12.1f %12.1f %14.1f\n", name[i], wall[i], cpu[i], mb / wall[i], mb / cpu[i], rss[i]
        printf "ratio csv-profile / xsv stats (throughput, >1 = faster): wall %.2fx, cpu %.2fx\n", wall[2] / wall[1], cpu[2] / cpu[1]
        printf "csv-profile peak RSS: %.1f MiB (target < %d MiB): %s\n", rss[1], limit, rss[1] < limit ? "ok" : "OVER"
    }' "$WORK/results"
