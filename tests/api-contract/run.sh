#!/usr/bin/env bash
# The JSON API fuzzed from its own contract: schemathesis reads /api/v1/openapi.json from a real
# server (the debug binary `make site` builds, on a fresh SQLite file, mail to files) and runs every
# operation in all its phases (examples, coverage, fuzzing, stateful), signed in as a staff user
# through hooks.py, with every check: no 5xx, statuses, content types, headers and bodies as the
# document says, schema-violating requests refused, schema-valid ones accepted, deleted things gone.
# `make api-contract` (part of `make test`) runs this; CONTRACT_EXAMPLES sets how many cases each
# operation gets (50), CONTRACT_SEED replays a run (its seed is printed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${CONTRACT_BINARY:-target/debug/console-sessions}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
server=
trap '[ -n "$server" ] && { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }; rm -rf "$work"' EXIT
bin=$(realpath "$bin")

export DATABASE_URL="sqlite://$work/api.db" MAIL_URL="file://$work/mail"
export LEPTOS_SITE_ADDR="127.0.0.1:$port" LEPTOS_SITE_ROOT="$PWD/target/site" RUST_LOG=warn
# hooks.py signs in as from another address, through this "proxy".
export TRUSTED_PROXIES=127.0.0.1/32
export CONTRACT_BASE_URL="$base" CONTRACT_USERNAME=contract
CONTRACT_PASSWORD="contract $(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')"
export CONTRACT_PASSWORD
(cd "$work" && CONSOLE_SESSIONS_SUPERUSER_PASSWORD="$CONTRACT_PASSWORD" \
  "$bin" createsuperuser --username contract --email contract@example.com >/dev/null)
# From the scratch folder: a developer's .env in the checkout must not change the server.
(cd "$work" && exec "$bin" serve) >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "api-contract: the server stopped" >&2; exit 1; }
  curl -fs "$base/healthz" -o /dev/null && break
  sleep 0.1
done
curl -fs "$base/healthz" -o /dev/null || { cat "$work/server.log" >&2; exit 1; }

seed=()
[ -n "${CONTRACT_SEED:-}" ] && seed=(--seed "$CONTRACT_SEED")
status=0
# Run from target/api-contract: schemathesis keeps its example database in the working directory.
mkdir -p target/api-contract
(
  cd target/api-contract
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$PWD/../schemathesis:$PWD/../../tests/api-contract" \
    python3 ../schemathesis/bin/st run "$base/api/v1/openapi.json" \
      --checks all --max-examples "${CONTRACT_EXAMPLES:-50}" --workers 1 "${seed[@]}" \
      --phases examples,coverage,fuzzing,stateful --request-timeout 30 --no-color
) >"$work/report" 2>&1 || status=$?
# The summary, and every failure in full when there is one.
if [ "$status" -ne 0 ]; then
  cat "$work/report"
  echo "--- server log (warnings and errors) ---"
  tail -n 50 "$work/server.log"
  echo "api-contract: schemathesis failed (exit $status)" >&2
  exit 1
fi
sed -n '/SUMMARY/,$p' "$work/report"
if grep -q ' ERROR ' "$work/server.log"; then
  grep ' ERROR ' "$work/server.log" | head -20
  echo "api-contract: the server logged errors" >&2
  exit 1
fi
echo "api-contract: passed"
