# Sourced by the csv-profile benches: settings, the release build of csv-profile's examples, and
# the generated CSV they all read. Sets ROOT, CARGO_TARGET_DIR, PROFILE, DATA, BYTES and WORK (a
# temporary folder removed on exit, with DATA when this run generated it and KEEP_DATA != 1).
#
# The file lives in tmpfs (/dev/shm) by default: on these VMs the page cache drops a file on disk
# between runs, and reading it back at ~20 MB/s turned the wall figure into a disk benchmark.
#
# Env: SIZE_MIB (1024), DATA_DIR (/dev/shm if writable, else ${TMPDIR:-/tmp}), KEEP_DATA (0),
#      CARGO_TARGET_DIR (target), RSS_LIMIT_MIB (100).

SIZE_MIB=${SIZE_MIB:-1024}
if [[ -z ${DATA_DIR:-} ]]; then
    if [[ -d /dev/shm && -w /dev/shm ]]; then DATA_DIR=/dev/shm; else DATA_DIR=${TMPDIR:-/tmp}; fi
fi
KEEP_DATA=${KEEP_DATA:-0}
RSS_LIMIT_MIB=${RSS_LIMIT_MIB:-100}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
DATA=$DATA_DIR/csv-profile-bench-${SIZE_MIB}MiB-seed42.csv
WORK=$(mktemp -d)
GENERATED=0
cleanup() {
    rm -rf "$WORK"
    if [[ $GENERATED == 1 && $KEEP_DATA != 1 ]]; then rm -f "$DATA"; fi
}
trap cleanup EXIT

if [[ ! -x /usr/bin/time ]]; then
    echo "bench: /usr/bin/time is missing; install it (apt-get install time)" >&2
    exit 1
fi
if ! command -v xsv >/dev/null; then
    echo "bench: installing xsv (a few minutes)..." >&2
    cargo install xsv --locked
fi

echo "bench: building csv-profile examples (release)..." >&2
(cd "$ROOT" && cargo build --quiet --release -p csv-profile --example profile --example gen-csv)
PROFILE=$CARGO_TARGET_DIR/release/examples/profile

if [[ ! -f $DATA || $(stat -c %s "$DATA") -lt $((SIZE_MIB * 1024 * 1024)) ]]; then
    echo "bench: generating $DATA..." >&2
    GENERATED=1
    "$CARGO_TARGET_DIR/release/examples/gen-csv" "$SIZE_MIB" "$DATA" 42
fi
BYTES=$(stat -c %s "$DATA")
