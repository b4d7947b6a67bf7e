#!/usr/bin/env bash
# Load bench of forward authentication: wrk against GET /auth/verify with a valid session cookie (a
# cached_db hit), against GET /bench/bare (the same JSON and headers from a bare axum route in the
# same binary: no middleware, no session) and GET /bench/baseline (the same answer through the
# pages' middleware: request span and log line, request id, metrics, CSRF, embedding headers,
# session layer), all in one release binary on a SQLite file. /auth/verify is served outside that
# middleware, so the comparison the issue asks for is verify / bare.
#
# Rounds alternate the routes, a few seconds each and in turn in both orders, so that a slower
# moment of the machine hits all of them alike; each route's median is reported, and the median of
# the per-round ratios (this machine is a shared VM whose speed drifts by tens of percent over a
# minute).
#
#   make bench-verify            (or: benches/verify.sh [seconds per run] [rounds] [connections])
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${1:-2}
ROUNDS=${2:-41}
CONNECTIONS=${3:-32}
PORT=${BENCH_PORT:-3190}
BINARY=${CARGO_TARGET_DIR:-target}/release/console-sessions

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet -p console-sessions-app --features ssr --bin console-sessions

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL="sqlite://$work/bench.db" LEPTOS_SITE_ADDR="127.0.0.1:$PORT" \
  LEPTOS_SITE_ROOT="$work" SESSION_BACKEND=cached_db BENCH_BASELINE_ROUTE=true \
  CLEAR_EXPIRED_EVERY=0 RUST_LOG="${RUST_LOG:-info}"
CONSOLE_SESSIONS_SUPERUSER_PASSWORD="bench password 123" \
  "$BINARY" createsuperuser --username admin --email admin@example.com >/dev/null
# On a machine with several cores, wrk gets core 0 and the server the others, so that neither
# steals the other's time slices unevenly between runs.
cores=$(nproc)
server_cpus=""; wrk_cpus=""
if [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpus="taskset -c 1-$((cores - 1))"; wrk_cpus="taskset -c 0"
fi
$server_cpus "$BINARY" serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

# Sign in as a browser would: the form token from the viewer, then the form.
jar="$work/cookies"
token=$(curl -fs -c "$jar" "http://127.0.0.1:$PORT/api/account/viewer" | sed -E 's/.*"csrf_token":"([^"]+)".*/\1/')
curl -fs -b "$jar" -c "$jar" -o /dev/null -H "Origin: http://127.0.0.1:$PORT" \
  --data-urlencode "csrf_token=$token" --data-urlencode "username=admin" \
  --data-urlencode "password=bench password 123" "http://127.0.0.1:$PORT/api/account/sign-in"
session=$(awk '$6 == "session" {print $7}' "$jar")
[ -n "$session" ] || { echo "sign-in failed" >&2; exit 1; }
cookie="Cookie: session=$session"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "http://127.0.0.1:$PORT/auth/verify")" = 200 ] \
  || { echo "/auth/verify does not accept the session" >&2; exit 1; }

run() { # route -> requests per second
  $wrk_cpus wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -H "$cookie" "http://127.0.0.1:$PORT$1" \
    | awk '/^Requests\/sec/ {print $2}'
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# Warm up (the session into the cache, connections, allocator).
run /auth/verify >/dev/null
declare -A results
for round in $(seq 1 "$ROUNDS"); do
  # Each round runs the routes in the other order than the last (ABBA), so a machine getting
  # faster or slower within a round does not favour whichever route always comes first.
  routes="/auth/verify /bench/bare /bench/baseline"
  [ $((round % 2)) = 0 ] && routes="/bench/baseline /bench/bare /auth/verify"
  for route in $routes; do
    rps=$(run "$route")
    results[$route]+="$rps "
    echo "round $round  $route  $rps req/s"
  done
done
list() { echo "${results[$1]}" | tr ' ' '\n' | grep .; }
verify=$(list /auth/verify | median)
baseline=$(list /bench/baseline | median)
bare=$(list /bench/bare | median)
paired=$(paste <(list /auth/verify) <(list /bench/bare) | awk '{print $1 / $2}' | median)
echo "median req/s: /auth/verify $verify, /bench/bare $bare, /bench/baseline $baseline"
awk -v v="$verify" -v b="$baseline" -v r="$bare" -v p="$paired" \
  'BEGIN {printf "verify/bare: median of round ratios %.3f, ratio of medians %.3f (target >= 0.90); verify/baseline %.2f\n", p, v / r, v / b}'
