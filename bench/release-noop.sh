#!/usr/bin/env bash
# `deployer release` with nothing changed, against moto + a local docker-registry (target: < 3 s).
#
# Baseline, measured in the same run: `deployer config` (loads and validates the config, no AWS
# call), so the ratio shows what the release's AWS round trips cost on top of process start.
# Also measured: `deployer plan` (the same reads as a no-op release, no writes).
#
# Usage: bench/release-noop.sh            (uses target/debug/deployer, builds it if missing)
#        DEPLOYER=path/to/deployer bench/release-noop.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench: %s\n' "$*" >&2; }
command -v hyperfine >/dev/null 2>&1 || { log "installing hyperfine (Debian)"; apt-get install -y -qq hyperfine >/dev/null; }
command -v moto_server >/dev/null 2>&1 || { log "moto_server missing: run scripts/test once"; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
DEPLOYER="${DEPLOYER:-$target/debug/deployer}"
if [ ! -x "$DEPLOYER" ]; then cargo build -p deployer; fi

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# moto, reporting ECS services as running so rollouts complete.
moto_port=$(free_port)
MOTO_ECS_SERVICE_RUNNING=4 moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
# docker-registry with basic auth (the ECR stand-in).
reg_port=$(free_port)
reg_pass=$(python3 -c 'import uuid; print(uuid.uuid4().hex)')
htpasswd -Bbn deployer "$reg_pass" >"$work/htpasswd" 2>/dev/null
cat >"$work/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: "127.0.0.1:$reg_port"}
auth: {htpasswd: {realm: bench, path: $work/htpasswd}}
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
up() { curl -s -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" && curl -s -o /dev/null "http://127.0.0.1:$reg_port/v2/"; }
for _ in $(seq 1 300); do up && break; sleep 0.2; done
up || { log "moto or docker-registry did not start"; exit 1; }

export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
# moto routes unsigned-looking requests by the service named in the credential scope.
auth() { echo "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=x"; }
curl -s -X POST "$AWS_ENDPOINT_URL/" -H "$(auth ecs)" -H 'Content-Type: application/x-amz-json-1.1' \
  -H 'X-Amz-Target: AmazonEC2ContainerServiceV20141113.CreateCluster' -d '{"clusterName":"prod-data-processor"}' >/dev/null
vpc=$(curl -s -X POST "$AWS_ENDPOINT_URL/" -H "$(auth ec2)" -d 'Action=DescribeVpcs&Version=2016-11-15' | sed -n 's:.*<vpcId>\([^<]*\)</vpcId>.*:\1:p' | head -n1)
tg=$(curl -s -X POST "$AWS_ENDPOINT_URL/" -H "$(auth elasticloadbalancing)" \
  -d "Action=CreateTargetGroup&Version=2015-12-01&Name=data-processor&Protocol=HTTP&Port=8080&VpcId=$vpc" \
  | sed -n 's:.*<TargetGroupArn>\([^<]*\)</TargetGroupArn>.*:\1:p' | head -n1)
[ -n "$tg" ] || { log "could not create the target group in moto"; exit 1; }

export DEPLOYER_CONFIG=deploy/deployer.toml
# moto never ends a task: the first release's migration would run until its timeout.
export DEPLOYER__RELEASE__MIGRATE=false
export DEPLOYER__SERVICE__TARGET_GROUP_ARN="$tg"
export DEPLOYER__REGISTRY__URL="127.0.0.1:$reg_port" DEPLOYER__REGISTRY__INSECURE=true
export DEPLOYER__REGISTRY__USERNAME_ENV=BENCH_REGISTRY_USER DEPLOYER__REGISTRY__PASSWORD_ENV=BENCH_REGISTRY_PASSWORD
export BENCH_REGISTRY_USER=deployer BENCH_REGISTRY_PASSWORD="$reg_pass"

# With the image builder, the no-op release builds (cargo no-op), finds every blob in the
# registry and changes nothing. Without one, it deploys a fixed pinned image.
image_args=()
if ! "$DEPLOYER" build >/dev/null 2>&1; then
  image_args=(--image "127.0.0.1:$reg_port/data-processor@sha256:$(printf 'ab%.0s' $(seq 1 32))")
  log "no image builder in this deployer: releasing a pinned image (--image)"
fi
log "first release (creates everything; not timed)"
"$DEPLOYER" release "${image_args[@]}" >/dev/null

out="$work/hyperfine.json"
hyperfine -N --warmup 1 --runs 10 --export-json "$out" \
  -n baseline-config "$DEPLOYER config" \
  -n plan "$DEPLOYER plan ${image_args[*]}" \
  -n release-noop "$DEPLOYER release ${image_args[*]}"

python3 - "$out" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
base = r["baseline-config"]["mean"]
for name in ("baseline-config", "plan", "release-noop"):
    m = r[name]["mean"]
    print(f"{name:16s} mean {m*1000:8.1f} ms  (x{m/base:5.1f} baseline)")
noop = r["release-noop"]["mean"]
print(f"release-noop target < 3 s: {'OK' if noop < 3 else 'MISSED'} ({noop:.2f} s)")
PY
