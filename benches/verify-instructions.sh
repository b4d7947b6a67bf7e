#!/usr/bin/env bash
# Instructions per request of GET /auth/verify (a cached_db hit) and of GET /bench/bare (the same
# answer from a bare axum route), counted by valgrind's callgrind in the release binary's own
# code (not the kernel's). Unlike wrk's requests per second, the count does not depend on how
# busy the machine is: it shows what a change to the verified path costs, to the instruction.
#
# Under valgrind the CPU's SHA extensions are hidden, so the token's SHA-256 runs in software;
# its share is reported, and left out of "verify minus bare" (with the extensions it is a few
# hundred instructions).
#
#   make bench-verify-instructions   (or: benches/verify-instructions.sh [requests])
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${1:-3000}
PORT=${BENCH_PORT:-3194}

for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install valgrind python3 curl" >&2; exit 1; }
done
# shellcheck source=benches/bench-server.sh
. benches/bench-server.sh
start_server "$PORT" 120 valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.%p"

# Exactly $REQUESTS requests on 8 keep-alive connections, each answer read in full.
load() {
  python3 - "$PORT" "$1" "$REQUESTS" "$session" <<'PY'
import socket, sys, threading
port, path, total, session = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session={session}\r\n\r\n".encode()
def client(count):
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(count):
            sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                sys.exit(f"{path} answered {head.splitlines()[0]!r}")
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(body) < length:
                body += sock.recv(65536)
threads = [threading.Thread(target=client, args=(total // 8,)) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
PY
}

# Counts of one route: total and SHA-256 instructions per request, after a warm-up.
measure() {
  load "$1"
  rm -f "$work"/callgrind.*
  callgrind_control --zero "$server" >/dev/null 2>&1
  load "$1"
  callgrind_control --dump "$server" >/dev/null 2>&1
  local dump
  dump=$(ls -t "$work"/callgrind.* | head -1)
  local total sha
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  # awk reads to the end: leaving early would stop callgrind_annotate with SIGPIPE, failing the
  # pipeline (pipefail) and so the script.
  sha=$(callgrind_annotate --inclusive=yes "$dump" 2>/dev/null \
    | awk '/sha2::sha256::compress256/ && !found {gsub(",", "", $1); print $1; found = 1}')
  echo "$((total / REQUESTS)) $((${sha:-0} / REQUESTS))"
}

read -r verify verify_sha < <(measure /auth/verify)
read -r bare bare_sha < <(measure /bench/bare)
echo "instructions per request (user space, $REQUESTS requests each):"
echo "  /auth/verify  $verify   (of which SHA-256 in software: $verify_sha)"
echo "  /bench/bare   $bare"
echo "  verify minus bare, SHA-256 left out: $((verify - verify_sha - bare + bare_sha))"
