#!/usr/bin/env bash
# make demo: O/TWAMP keyed by an IKEv2 SA (RFC 7717) on loopback, then everything stopped.
#
# A throwaway CA certifies two hosts. The server (127.0.0.2) runs otwamp server with an
# embedded IKEv2 responder; the client (127.0.0.1) runs otwamp ping and owping with
# --key-source ike, whose embedded IKEv2 initiator sets up a childless, certificate-
# authenticated IKE SA. Both ends derive prf(SK_d, "IPPM") and key the measurement with it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OTWAMP=.venv/bin/otwamp
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

free_port() {  # a free TCP and UDP port on $1
  $PY -c 'import socket,sys
for _ in range(100):
    t=socket.socket(); u=socket.socket(type=socket.SOCK_DGRAM)
    try:
        t.bind((sys.argv[1],0)); p=t.getsockname()[1]; u.bind((sys.argv[1],p)); print(p); break
    except OSError: pass
    finally: t.close(); u.close()' "$1"
}
twamp=$(free_port 127.0.0.2); owamp=$(free_port 127.0.0.2)
ike_server=$(free_port 127.0.0.2); ike_client=$(free_port 127.0.0.1)

echo "== a throwaway CA and certificates for server.ippm.test and client.ippm.test"
$PY scripts/demo_certs.py "$work" server.ippm.test client.ippm.test
cat > "$work/server-ike.toml" <<TOML
[local]
address = "127.0.0.2"
port = $ike_server
id = "fqdn:server.ippm.test"
certificate = "server.ippm.test.pem"
key = "server.ippm.test.key"
ca = ["ca.pem"]
broker = "$work/server-ike.sock"

[[peers]]
id = "fqdn:client.ippm.test"
address = "127.0.0.1"
port = $ike_client
TOML
cat > "$work/client-ike.toml" <<TOML
[local]
address = "127.0.0.1"
port = $ike_client
id = "fqdn:client.ippm.test"
certificate = "client.ippm.test.pem"
key = "client.ippm.test.key"
ca = ["ca.pem"]
broker = "$work/client-ike.sock"

[[peers]]
id = "fqdn:server.ippm.test"
address = "127.0.0.2"
port = $ike_server
TOML

echo "== otwamp server on 127.0.0.2 (TWAMP $twamp, OWAMP $owamp, IKEv2 responder on $ike_server)"
"$OTWAMP" server --listen "127.0.0.2:$twamp" --owamp-listen "127.0.0.2:$owamp" \
  --modes authenticated,encrypted,mixed --ike-config "$work/server-ike.toml" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening for OWAMP-Control" "$work/server.log" && break; sleep 0.1; done

echo
echo "== otwamp ping 127.0.0.2:$twamp -A authenticated --key-source ike (from 127.0.0.1)"
"$OTWAMP" ping "127.0.0.2:$twamp" -c 200 -i 0.005 -A authenticated \
  --key-source ike --ike-config "$work/client-ike.toml"
echo
echo "== otwamp owping 127.0.0.2:$owamp -A encrypted --key-source ike"
"$OTWAMP" owping "127.0.0.2:$owamp" -c 200 -i 0.005 --wait 0.5 -A encrypted \
  --key-source ike --ike-config "$work/client-ike.toml"
echo
echo "== the server's log"
cat "$work/server.log"
