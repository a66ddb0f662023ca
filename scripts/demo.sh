#!/usr/bin/env bash
# make demo: a TWAMP server and two measurements on loopback, then everything stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
OTWAMP=.venv/bin/otwamp
work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "demo-secret" | "$OTWAMP" keys add -f "$work/keys.pfs" demo 2>/dev/null
echo "== otwamp server on 127.0.0.1:$port (open, authenticated, encrypted, mixed)"
"$OTWAMP" server --listen "127.0.0.1:$port" --test-ports 21000-21099 \
  --modes open,authenticated,encrypted,mixed --keyfile "$work/keys.pfs" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 50); do grep -q "listening for TWAMP-Control" "$work/server.log" && break; sleep 0.1; done

echo "== otwamp ping 127.0.0.1:$port -c 200 -i 0.005 (open mode)"
"$OTWAMP" ping "127.0.0.1:$port" -c 200 -i 0.005
echo
echo "== otwamp ping 127.0.0.1:$port -c 200 -i 0.005 -A encrypted -u demo -k keys.pfs -a"
"$OTWAMP" ping "127.0.0.1:$port" -c 200 -i 0.005 -A encrypted -u demo -k "$work/keys.pfs" -a
echo
echo "== server log"
cat "$work/server.log"
