# Shared by the bench scripts that measure one data-processor process on Postgres (sourced).
# Provides: the binary (BINARY= skips the release build), a fresh database, the service on a free
# port with its logs in $work/service.log, a signed-in session cookie, and cleanup on exit.
#
#   source bench/lib/service.sh
#   start_service [VAR=value ...]    -> sets $base (http://127.0.0.1:PORT), $pid and $db
#   stop_service                     -> stops it and drops its database (start again afterwards)
#   sign_in                          -> sets $cookie (dp_session=...)

ADMIN_URL="${TEST_DATABASE_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v psql >/dev/null || { echo "bench: psql is missing (apt-get install postgresql-client)" >&2; exit 1; }

binary="${BINARY:-}"
if [ -z "$binary" ]; then
  cargo build --release --quiet -p data-processor
  binary="${CARGO_TARGET_DIR:-target}/release/data-processor"
fi

work=$(mktemp -d)
db=""
pid=""
stop_service() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  pid=""
  [ -n "$db" ] && psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  db=""
}
cleanup() {
  stop_service
  rm -rf "$work"
}
trap cleanup EXIT

# Starts the service on a fresh database and a local storage folder; extra VAR=value arguments
# go to its environment.
start_service() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  base="http://127.0.0.1:$port"
  # A new name per start, so a script can start the service several times in one run.
  db="bench_$(date +%s%N)_$$"
  psql -q "$ADMIN_URL" -c "CREATE DATABASE \"$db\"" >/dev/null
  env LISTEN_ADDR="127.0.0.1:$port" DATABASE_URL="${ADMIN_URL%/*}/$db" STORAGE_URL="$work/files" \
    SESSION_COOKIE_SECURE=false RUST_LOG=warn LOG_FORMAT=json "$@" \
    "$binary" >"$work/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "$base/readyz" >/dev/null || { echo "bench: the service did not start:" >&2; cat "$work/service.log" >&2; exit 1; }
}

# Registers a user and logs in; checks that the cookie authenticates.
sign_in() {
  local credentials='{"username":"bench-user","password":"benchmark password 1"}'
  curl -fsS -o /dev/null -H 'content-type: application/json' -d "$credentials" "$base/api/v1/users"
  cookie=$(curl -fsS -o /dev/null -D - -H 'content-type: application/json' -d "$credentials" \
    "$base/api/v1/session" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(dp_session=[^;]*\).*/\1/p')
  [ -n "$cookie" ] || { echo "bench: login returned no session cookie" >&2; exit 1; }
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "cookie: $cookie" "$base/api/v1/session")" = 200 ] \
    || { echo "bench: the session cookie does not authenticate" >&2; exit 1; }
}

# Runs wrk on a URL path with the given extra arguments (-H ...); prints
# "requests_per_second p50_ms p99_ms non_2xx".
wrk_measure() {
  local path=$1; shift
  local out
  out=$(wrk -t"${THREADS:-2}" -c"${CONNECTIONS:-32}" -d"${DURATION:-10s}" --latency "$@" "$base$path")
  local ms='{v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v=v*1000}; print v}'
  echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" '"$ms" <<<"$out")" \
    "$(awk '$1 == "99%" '"$ms" <<<"$out")" \
    "$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out" | grep . || echo 0)"
}
