#!/usr/bin/env bash
# Builds and runs examples/counter.rs on a fresh SQLite file and drives it as a client would:
# the visit count grows in the session, sign-in lists the session with its address and user
# agent, sign-out ends it. `make example` (part of `make test`) runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --example counter
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
EXAMPLE_ADDR="127.0.0.1:$port" EXAMPLE_DATABASE_URL="sqlite://$work/counter.db" \
  target/debug/examples/counter >"$work/log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do curl -fs "$base/" -o /dev/null && break; sleep 0.1; done
jar="$work/jar"
passed=0
fail() { echo "example: $*" >&2; cat "$work/log" >&2; exit 1; }
ok() { passed=$((passed + 1)); }
curl() { command curl -A 'counter-check/1.0' "$@"; }
[ "$(curl -fs -c "$jar" -b "$jar" "$base/")" = "visit 1" ] || fail "first visit"; ok
[ "$(curl -fs -c "$jar" -b "$jar" "$base/")" = "visit 2" ] || fail "the session did not keep the count"; ok
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$base/sessions")" = 401 ] || fail "listed before sign-in"; ok
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
  -d 'username=demo&password=wrong password here' "$base/sign-in")" = 401 ] || fail "a wrong password signed in"; ok
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
  -d 'username=demo&password=correct horse battery' "$base/sign-in")" = 204 ] || fail "sign-in"; ok
listed=$(curl -fs -c "$jar" -b "$jar" "$base/sessions")
echo "$listed" | grep -q '127.0.0.1 counter-check/1.0' || fail "the session list: $listed"; ok
[ "$(curl -fs -c "$jar" -b "$jar" "$base/")" = "visit 3" ] || fail "sign-in lost the session's data"; ok
[ "$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" -X POST "$base/sign-out")" = 204 ] || fail "sign-out"; ok
[ "$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" "$base/sessions")" = 401 ] || fail "listed after sign-out"; ok
echo "example: $passed passed, 0 failed"
