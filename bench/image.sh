#!/usr/bin/env bash
# Image size and container start-up time for the data-processor image built by the daemonless
# builder (crate ocibuild), pushed to a local docker-registry and run with podman.
#
# Baseline, measured in the same run: the std-only fixture server
# (ocibuild/tests/fixtures/healthz-server), the smallest static image that answers /healthz.
# Printed: compressed size (layers + config, what a registry stores and a host downloads;
# target < 20 MB) and the time from `podman run` to the first /healthz 200 (median of RUNS),
# each with its ratio to the baseline.
#
# Usage: bench/image.sh            (RUNS=5 by default)
#   SERVICE_RUN_ARGS="--env-file service.env" bench/image.sh   extra `podman run` arguments
#   STATIC_TARGET_DIR=...          where the static release builds are cached
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

RUNS="${RUNS:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
STATIC_TARGET_DIR="${STATIC_TARGET_DIR:-$CARGO_TARGET_DIR/static}"
work=$(mktemp -d -t image-bench-XXXXXX)
registry_pid=""
containers=()

podman_() {
  CONTAINERS_CONF="$work/containers.conf" podman --root "$work/root" --runroot "$work/runroot" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend none "$@"
}

cleanup() {
  for c in "${containers[@]}"; do podman_ rm --force --time 0 "$c" >/dev/null 2>&1 || true; done
  podman_ system reset --force >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ms() { date +%s%3N; }

# 1. A local registry (no auth: this measures the image, not the login).
reg_port=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/storage
http:
  addr: 127.0.0.1:$reg_port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$reg_port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$reg_port/v2/" >/dev/null

cat >"$work/containers.conf" <<'CONF'
[engine]
runtime = "runc"

[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
CONF

# 2. Build (static, cached between runs), assemble and push both images.
cargo build --quiet -p ocibuild --example push_image
push_image="$CARGO_TARGET_DIR/debug/examples/push_image"

echo "building the baseline fixture image..." >&2
baseline=$("$push_image" --workspace ocibuild/tests/fixtures/healthz-server --package healthz-server \
  --target-dir "$STATIC_TARGET_DIR/fixture" \
  --reference "127.0.0.1:$reg_port/healthz-server:bench" --insecure-http 2>"$work/baseline-build.log")
echo "building the data-processor image (static release build; slow the first time)..." >&2
service=$("$push_image" --workspace . --package data-processor \
  --target-dir "$STATIC_TARGET_DIR/service" \
  --reference "127.0.0.1:$reg_port/data-processor:bench" --insecure-http 2>"$work/service-build.log") || {
  tail -30 "$work/service-build.log" >&2
  exit 1
}

field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# 3. Time `podman run` -> first /healthz 200, RUNS times per image (image already pulled, so this
#    is container creation + process start-up, what a new task costs once the image is on the host).
startup_ms() {
  local image=$1; shift
  local times=()
  for _ in $(seq 1 "$RUNS"); do
    local port start id deadline
    port=$(free_port)
    start=$(now_ms)
    id=$(podman_ run --detach --publish "127.0.0.1:$port:8080" "$@" "$image")
    containers+=("$id")
    deadline=$(( $(now_ms) + 60000 ))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null; do
      if [ "$(now_ms)" -gt "$deadline" ] || [ "$(podman_ inspect --format '{{.State.Running}}' "$id")" != true ]; then
        echo "$image did not answer /healthz; logs:" >&2
        podman_ logs "$id" >&2 || true
        exit 1
      fi
      sleep 0.02
    done
    times+=($(( $(now_ms) - start )))
    podman_ rm --force --time 0 "$id" >/dev/null
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

base_ref=$(field "$baseline" reference)
svc_ref=$(field "$service" reference)
podman_ pull --quiet --tls-verify=false "$base_ref" >/dev/null
podman_ pull --quiet --tls-verify=false "$svc_ref" >/dev/null
base_start=$(startup_ms "$base_ref")
# shellcheck disable=SC2086
svc_start=$(startup_ms "$svc_ref" ${SERVICE_RUN_ARGS:-})

python3 - "$baseline" "$service" "$base_start" "$svc_start" "$RUNS" <<'PY'
import json, sys
base, svc = json.loads(sys.argv[1]), json.loads(sys.argv[2])
base_start, svc_start, runs = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
mb = lambda n: f"{n / 1e6:.2f} MB"
print(f"{'':34}{'baseline (fixture)':>20}{'data-processor':>18}{'ratio':>9}")
rows = [
    ("static binary", mb(base["binary_bytes"]), mb(svc["binary_bytes"]), svc["binary_bytes"] / base["binary_bytes"]),
    ("image, compressed (layers+config)", mb(base["compressed_bytes"]), mb(svc["compressed_bytes"]), svc["compressed_bytes"] / base["compressed_bytes"]),
    (f"podman run -> /healthz 200 (median of {runs})", f"{base_start} ms", f"{svc_start} ms", svc_start / max(base_start, 1)),
]
for name, b, s, r in rows:
    print(f"{name:34}{b:>20}{s:>18}{r:>8.2f}x")
print(f"data-processor layers (compressed): {', '.join(mb(n) for n in svc['layer_bytes'])}; "
      f"config {svc['config_bytes']} B; compression ratio {svc['compressed_bytes'] / sum(svc['layer_tar_bytes']):.2f}")
target = 20e6
verdict = "within" if svc["compressed_bytes"] < target else "OVER"
print(f"size target < 20 MB: {verdict} ({svc['compressed_bytes'] / target:.2f}x of target)")
PY
