#!/usr/bin/env bash
# Revoke by search at scale: on the seed data (1 M sessions by default, on a SQLite file, cached_db),
# staff sign out every live session a search matches (POST /api/v1/admin/sessions/revoke-matching)
# while wrk keeps asking GET /auth/verify with a signed-in cookie. Reports how many matched, how
# long the job took to end them, and /auth/verify's latency over 10 s before the job and over the
# whole job, each one wrk run (the target: p99 under 10 ms during it).
#
#   make bench-revoke-matching   (or: benches/revoke-matching.sh [sessions] [connections])
#   SEARCH='{"country":"SE"}' benches/revoke-matching.sh     (the changelist's parameters)
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${1:-1000000}
CONNECTIONS=${2:-32}
SEARCH=${SEARCH:-'{"device":"smartphone"}'}
PORT=${BENCH_PORT:-3191}

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
# shellcheck source=benches/bench-server.sh
. benches/bench-server.sh

cores=$(nproc)
server_cpus=""; wrk_cpus=""
if [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
  server_cpus="taskset -c 1-$((cores - 1))"; wrk_cpus="taskset -c 0"
fi

# The seed data first (the server then starts on it, and its staff member signs in fresh, so the
# sign-out needs no further proof).
DATABASE_URL="sqlite://$work/bench.db" "$BINARY" seed --sessions "$SESSIONS" --users $((SESSIONS / 10)) \
  2>/dev/null | tail -1
# shellcheck disable=SC2086 # the launcher is words, or nothing
start_server "$PORT" 30 $server_cpus
base="http://127.0.0.1:$PORT"
jar="$work/cookies"
cookie="Cookie: session=$session"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "$cookie" "$base/auth/verify")" = 200 ] \
  || { echo "/auth/verify does not accept the session" >&2; exit 1; }
csrf=$(curl -fs -b "$jar" -c "$jar" "$base/api/v1/auth/csrf" | sed -E 's/.*"csrf_token":"([^"]+)".*/\1/')
api() { # path body -> response body
  curl -fs -b "$jar" -c "$jar" -H "X-CSRF-Token: $csrf" -H "Content-Type: application/json" \
    --data "$2" "$base$1"
}
field() { sed -E "s/.*\"$1\":\"?([^,\"}]*)\"?.*/\1/"; }

slice() { # one 2-second wrk run against /auth/verify -> p99 in ms
  $wrk_cpus wrk -t1 -c"$CONNECTIONS" -d2s --latency -H "$cookie" "$base/auth/verify" \
    | awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}'
}

matching=$(api /api/v1/admin/sessions/revoke-matching "{\"search\":$SEARCH,\"dry_run\":true}" | field matching)
echo "live sessions matching $SEARCH: $matching"

# One wrk run for a span: started in the background, stopped with SIGINT (on which wrk prints its
# figures for the whole run), so the p99 covers every request of the span, not slices of it.
run_wrk() { # output file; starts wrk and sets $wrk_pid
  # shellcheck disable=SC2086 # the launcher is words, or nothing
  $wrk_cpus wrk -t1 -c"$CONNECTIONS" -d3600s --latency -H "$cookie" "$base/auth/verify" >"$1" &
  wrk_pid=$!
}
stop_wrk() { kill -INT "$wrk_pid"; wait "$wrk_pid" || true; }
percentile() { # percentile file -> ms
  awk -v p="$1%" '$1 == p {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) {sub(/ms$/, "", v)} else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$2"
}
requests() { awk '/requests in/ {print $1}' "$1"; }

slice >/dev/null # warm up
run_wrk "$work/before.txt"
sleep 10
stop_wrk

job=$(api /api/v1/admin/sessions/revoke-matching "{\"search\":$SEARCH}" | field job_id)
run_wrk "$work/during.txt"
state=running
while [ "$state" = running ]; do
  sleep 2
  progress=$(curl -fs -b "$jar" "$base/api/v1/admin/jobs/$job")
  state=$(echo "$progress" | field state)
  echo "  $(echo "$progress" | field done) ended so far"
done
stop_wrk
final=$(curl -fs -b "$jar" "$base/api/v1/admin/jobs/$job")
echo "$state: $(echo "$final" | field done) sessions ended in $(echo "$final" | field elapsed_ms) ms (the job's own clock)"
for span in before during; do
  echo "/auth/verify $span the job ($(requests "$work/$span.txt") requests): p50 $(percentile 50 "$work/$span.txt") ms, p90 $(percentile 90 "$work/$span.txt") ms, p99 $(percentile 99 "$work/$span.txt") ms"
done
# What the server said of the job (a failure's reason), kept after the run.
cp "$work/server.log" /tmp/revoke-matching-server.log
grep -E "matching" "$work/server.log" | tail -5 || true
