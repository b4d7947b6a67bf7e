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

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
# shellcheck source=benches/bench-server.sh
. benches/bench-server.sh

# On a machine with several cores, wrk gets core 0 and the server the others, so that neither
# steals the other's time slices unevenly between runs.
cores=$(nproc)
server_cpus=""; wrk_cpus=""
if [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpus="taskset -c 1-$((cores - 1))"; wrk_cpus="taskset -c 0"
fi
export RUST_LOG="${RUST_LOG:-info}"
# shellcheck disable=SC2086 # the launcher is words, or nothing
start_server "$PORT" 10 $server_cpus
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
