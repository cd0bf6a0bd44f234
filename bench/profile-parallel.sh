#!/usr/bin/env bash
# What quantiles cost and what a second thread buys csv-profile, against `xsv stats` (and
# DuckDB's SUMMARIZE when the Python package is installed), all on the same generated CSV
# in the same run, rounds interleaved so that load elsewhere hits every variant alike.
#
#   bench/profile-parallel.sh                 # 1 GiB file, 3 rounds
#   SIZE_MIB=256 ROUNDS=2 bench/profile-parallel.sh
#
# Prints, from the best wall time and the best CPU time of each variant over the rounds:
#   quantiles on / off, threads=1           (throughput ratio; target >= 0.87, i.e. <= 15 % cost)
#   threads=2 / threads=1, quantiles on     (speed-up; target >= 1.8 on 2 cores)
#   the machine's own ceiling for that: two independent threads=1 runs at once, i.e. work that
#                                           shares nothing; 2 x its throughput / one run's
#                                           (a VM's cores are often not two whole cores)
#   ours / xsv stats, ours / DuckDB         (throughput ratios, > 1 = ours faster)
#   peak RSS of threads=2                   (target < RSS_LIMIT_MIB)
# Ratios are given for wall time and for CPU time (user + sys). On a shared machine wall
# time includes waiting for a core: the load average is printed before and after, and
# with a load of 1 or more the speed-up figure mostly measures the other work.
#
# With valgrind installed it also counts the instructions each csv-profile variant executes
# on a small file (INSTR_MIB, 32; 0 skips it): a figure that load elsewhere cannot move,
# for when the load average makes the timings unreliable. An instruction ratio is not a
# time ratio (a logarithm costs more cycles than the average instruction).
#
# Env: SIZE_MIB (1024), ROUNDS (3), INSTR_MIB (32), DATA_DIR (/dev/shm if writable, else ${TMPDIR:-/tmp}),
#      KEEP_DATA (0: delete a file this run generated), CARGO_TARGET_DIR (target),
#      RSS_LIMIT_MIB (100), DUCKDB (auto: run it if `python3 -c 'import duckdb'` works; 0: skip).
# See bench/lib/csv-data.sh for why the file lives in tmpfs.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DUCKDB=${DUCKDB:-auto}
INSTR_MIB=${INSTR_MIB:-32}
if [[ $DUCKDB == auto ]]; then
    if python3 -c 'import duckdb' 2>/dev/null; then DUCKDB=1; else DUCKDB=0; fi
fi
# shellcheck source=bench/lib/csv-data.sh
source "$(dirname "$0")/lib/csv-data.sh"

cat >"$WORK/summarize.py" <<'EOF'
import sys
import duckdb

path, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
rows = con.execute("SUMMARIZE SELECT * FROM read_csv(?)", [path]).fetchall()
print(len(rows), "columns summarised")
EOF

# run NAME CMD... -> appends "NAME wall user sys maxrss_kb" to results (one line per run)
run() {
    local name=$1
    shift
    cat "$DATA" >/dev/null
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" >"$WORK/$name.out"
    echo "$name $(tail -n 1 "$WORK/time")" >>"$WORK/results"
}

echo "bench: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    echo "bench: round $round/$ROUNDS" >&2
    run ours-t1-noq "$PROFILE" --no-quantiles "$DATA"
    run ours-t1 "$PROFILE" "$DATA"
    run ours-t2 "$PROFILE" --threads 2 "$DATA"
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's
    run ours-t1x2 bash -c '"$0" "$1" >/dev/null & "$0" "$1"; wait' "$PROFILE" "$DATA"
    run xsv-stats xsv stats "$DATA"
    if [[ $DUCKDB == 1 ]]; then
        run duckdb-t1 python3 "$WORK/summarize.py" "$DATA" 1
        run duckdb-t2 python3 "$WORK/summarize.py" "$DATA" 2
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

for name in ours-t1 ours-t2; do
    grep -q '"rows"' "$WORK/$name.out" || {
        echo "bench: $name printed no profile:" >&2
        cat "$WORK/$name.out" >&2
        exit 1
    }
done
ROWS=$(grep -m1 '"rows"' "$WORK/ours-t1.out" | tr -dc 0-9)
# The two thread counts must agree on everything exact (rows, types, counts, min/max).
for key in rows type count nulls min max; do
    if ! diff <(grep "\"$key\"" "$WORK/ours-t1.out") <(grep "\"$key\"" "$WORK/ours-t2.out") >/dev/null; then
        echo "bench: threads=1 and threads=2 disagree on \"$key\"" >&2
        exit 1
    fi
done

awk -v bytes="$BYTES" -v rows="$ROWS" -v limit="$RSS_LIMIT_MIB" -v load_after="$LOAD_AFTER" '
    {
        n = $1; w = $2; c = $3 + $4; r = $5 / 1024
        if (!(n in wall)) { order[++names] = n }
        # Best of each on its own: the run with the best wall need not have the best CPU time.
        if (!(n in cpu) || c < cpu[n]) { cpu[n] = c }
        if (!(n in wall) || w < wall[n]) { wall[n] = w }
        if (!(n in rss) || r > rss[n]) { rss[n] = r }
        runs[n]++
    }
    function ratio(label, fast, slow, target) {
        if (!(fast in wall) || !(slow in wall)) return
        printf "%-44s wall %.2fx  cpu %.2fx%s\n", label, wall[slow] / wall[fast], cpu[slow] / cpu[fast], target
    }
    END {
        mb = bytes / 1e6
        printf "file: %.1f MiB, %d rows; load after: %s\n", bytes / 1048576, rows, load_after
        printf "%-12s %5s %8s %8s %10s %10s %14s\n", "variant", "runs", "wall s", "cpu s", "MB/s wall", "MB/s cpu", "peak RSS MiB"
        for (i = 1; i <= names; i++) {
            n = order[i]
            printf "%-12s %5d %8.2f %8.2f %10.1f %10.1f %14.1f\n", n, runs[n], wall[n], cpu[n], mb / wall[n], mb / cpu[n], rss[n]
        }
        ratio("quantiles on / off (threads=1, throughput)", "ours-t1", "ours-t1-noq", "  (target >= 0.87)")
        ratio("threads=2 / threads=1 (quantiles on)", "ours-t2", "ours-t1", "  (target >= 1.8 wall; cpu < 1 is the overhead)")
        if (("ours-t1x2" in wall) && ("ours-t2" in wall)) {
            ceiling = 2 * wall["ours-t1"] / wall["ours-t1x2"]
            printf "%-44s wall %.2fx  (threads=2 reaches %.0f %% of it)\n", "machine ceiling: 2 x threads=1 at once", ceiling, 100 * (wall["ours-t1"] / wall["ours-t2"]) / ceiling
        }
        ratio("ours t1 / xsv stats (throughput)", "ours-t1", "xsv-stats", "")
        ratio("ours t2 / xsv stats (throughput)", "ours-t2", "xsv-stats", "")
        ratio("ours t1 / duckdb t1 (throughput)", "ours-t1", "duckdb-t1", "")
        ratio("ours t2 / duckdb t2 (throughput)", "ours-t2", "duckdb-t2", "")
        printf "peak RSS, threads=2: %.1f MiB (target < %d MiB): %s\n", rss["ours-t2"], limit, rss["ours-t2"] < limit ? "ok" : "OVER"
    }' "$WORK/results"

if [[ $INSTR_MIB -gt 0 ]] && command -v valgrind >/dev/null; then
    SMALL=$WORK/small.csv
    "$CARGO_TARGET_DIR/release/examples/gen-csv" "$INSTR_MIB" "$SMALL" 42 2>/dev/null
    instructions() {
        valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
            awk '/I +refs/ { gsub(",", "", $NF); print $NF }'
    }
    NOQ=$(instructions "$PROFILE" --no-quantiles "$SMALL")
    Q=$(instructions "$PROFILE" "$SMALL")
    T2=$(instructions "$PROFILE" --threads 2 "$SMALL")
    awk -v mib="$INSTR_MIB" -v noq="$NOQ" -v q="$Q" -v t2="$T2" 'BEGIN {
        printf "instructions on %d MiB (valgrind): quantiles off %.3g, on %.3g (x%.3f), threads=2 %.3g (x%.3f of threads=1)\n", mib, noq, q, q / noq, t2, t2 / q
    }'
fi
