# Sourced by the forward-auth benches (verify.sh, verify-instructions.sh): builds the release
# binary and runs it on a fresh SQLite file, `cached_db`, with the bench routes and a signed-in
# superuser. Stops the server and removes its files on exit.

BINARY=${CARGO_TARGET_DIR:-target}/release/console-sessions
cargo build --release --quiet -p console-sessions-app --features ssr --bin console-sessions

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# start_server PORT WAIT_SECONDS [LAUNCHER...]: serves on PORT, started through LAUNCHER when given
# (taskset, valgrind), waits up to WAIT_SECONDS for it to answer, and signs in as a browser would
# (the form token from the viewer, then the form). Sets $server (its pid) and $session (the cookie's
# value).
start_server() {
  local port=$1 wait=$2
  shift 2
  export DATABASE_URL="sqlite://$work/bench.db" LEPTOS_SITE_ADDR="127.0.0.1:$port" \
    LEPTOS_SITE_ROOT="$work" SESSION_BACKEND=cached_db BENCH_BASELINE_ROUTE=true \
    CLEAR_EXPIRED_EVERY=0 RUST_LOG="${RUST_LOG:-warn}"
  CONSOLE_SESSIONS_SUPERUSER_PASSWORD="bench password 123" \
    "$BINARY" createsuperuser --username admin --email admin@example.com >/dev/null
  "$@" "$BINARY" serve >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 $((wait * 10))); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
    sleep 0.1
  done

  local jar="$work/cookies" token
  token=$(curl -fs -c "$jar" "http://127.0.0.1:$port/api/account/viewer" \
    | sed -E 's/.*"csrf_token":"([^"]+)".*/\1/')
  curl -fs -b "$jar" -c "$jar" -o /dev/null -H "Origin: http://127.0.0.1:$port" \
    --data-urlencode "csrf_token=$token" --data-urlencode "username=admin" \
    --data-urlencode "password=bench password 123" "http://127.0.0.1:$port/api/account/sign-in"
  session=$(awk '$6 == "session" {print $7}' "$jar")
  [ -n "$session" ] || { echo "sign-in failed" >&2; exit 1; }
}
