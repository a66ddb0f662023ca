#!/usr/bin/env bash
# make ipsec-demo: the two deployments of RFC 7717 §1 and §5.4 between two strongSwan gateways.
#
# Network namespaces A and B, joined by a veth (the underlay 192.0.2.0/24), each run charon with
# the configurations of deploy/strongswan/: an ESP tunnel between the inner addresses
# 198.51.100.1 (A) and 203.0.113.1 (B) through kernel-libipsec's TUN device ipsec0, and the HA
# plugin that hands otwamp the IKE SA. Then, from A to B:
#   (a) TWAMP in the tunnel, unauthenticated (§5.4): ESP protects it; it measures the tunnel;
#   (b) TWAMP bypassing the tunnel, authenticated and keyed by the same IKE SA through the HA key
#       source (§1): it measures the underlay.
# The two reports are printed side by side; everything is stopped and removed at the end.
# Needs root, iproute2 and charon-systemd with libcharon-extra-plugins (make sysdeps).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
OTWAMP=$repo/.venv/bin/otwamp
CHARON=/usr/sbin/charon-systemd
COUNT=${COUNT:-100}
INTERVAL=${INTERVAL:-0.01}
UNDERLAY_A=192.0.2.1 UNDERLAY_B=192.0.2.2 INNER_A=198.51.100.1 INNER_B=203.0.113.1
HA_CHARON=127.0.0.1 HA_OTWAMP=127.0.0.2  # deploy/strongswan/ha-keys.conf
PLUGINS="random nonce openssl pem pkcs1 pkcs8 x509 pubkey sha1 sha2 hmac aes gmp curve25519 kdf"
PLUGINS="$PLUGINS kernel-libipsec kernel-netlink socket-default vici ha"  # libipsec first

if [ "$(id -u)" != 0 ] || [ ! -x "$CHARON" ] || ! command -v swanctl >/dev/null; then
  echo "ipsec-demo: needs root, charon-systemd and swanctl (make sysdeps)" >&2
  exit 1
fi
work=$(mktemp -d)
chmod 755 "$work"
A=ips-demo-a$$ B=ips-demo-b$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

wait_for() {  # FILE TEXT: wait up to 10 s for TEXT in FILE
  for _ in $(seq 100); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "ipsec-demo: no '$2' in $1:" >&2
  cat "$1" >&2
  exit 1
}

echo "== namespaces $A ($UNDERLAY_A, inner $INNER_A) and $B ($UNDERLAY_B, inner $INNER_B)"
ip netns add "$A"
ip netns add "$B"
ip link add ips-a0 netns "$A" type veth peer ips-b0 netns "$B"
for side in "$A $UNDERLAY_A $INNER_A ips-a0" "$B $UNDERLAY_B $INNER_B ips-b0"; do
  read -r ns underlay inner link <<<"$side"
  ip -n "$ns" addr add "$underlay/24" dev "$link"
  ip -n "$ns" addr add "$inner/32" dev lo
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$link" up
done

start_charon() {  # NETNS NAME: charon with deploy/strongswan/{tunnel,ha-keys}.conf
  local dir=$work/charon-$2
  mkdir -p "$dir/swanctl"
  cp "deploy/strongswan/tunnel-$2.swanctl.conf" "$dir/swanctl/swanctl.conf"
  cat >"$dir/strongswan.conf" <<CONF
charon {
    load_modular = no
    load = $PLUGINS
    plugins {
        vici {
            socket = unix://$dir/charon.vici
        }
    }
    filelog {
        main {
            path = $dir/charon.log
            default = 1
            ike_name = yes
        }
    }
    syslog {
        daemon {
            default = -1
        }
    }
}
charon-systemd {
    journal {
        default = -1
    }
}
include $repo/deploy/strongswan/tunnel.conf
include $repo/deploy/strongswan/ha-keys.conf
CONF
  STRONGSWAN_CONF=$dir/strongswan.conf ip netns exec "$1" "$CHARON" >"$dir/charon.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$dir/charon.vici" ] && break; sleep 0.1; done
  swan "$2" --load-all >"$dir/load-all.log" 2>&1
}

swan() {  # a|b SWANCTL-COMMAND ARGS...
  local ns=$A dir=$work/charon-$1
  [ "$1" = b ] && ns=$B
  shift
  STRONGSWAN_CONF=$dir/strongswan.conf SWANCTL_DIR=$dir/swanctl \
    ip netns exec "$ns" swanctl "$1" --uri "unix://$dir/charon.vici" "${@:2}"
}

echo "== otwamp servers in $B: $INNER_B (open, in the tunnel), $UNDERLAY_B (keyed by strongSwan)"
ip netns exec "$B" "$OTWAMP" server --listen "$INNER_B" --owamp-listen off --modes open \
  --test-ports 20000-20009 >"$work/server-tunnel.log" 2>&1 &
pids+=($!)
ip netns exec "$B" "$OTWAMP" server --listen "$UNDERLAY_B" --owamp-listen off \
  --modes authenticated,encrypted --strongswan-ha "$HA_OTWAMP" --strongswan-ha-charon "$HA_CHARON" \
  --test-ports 20010-20019 >"$work/server-underlay.log" 2>&1 &
pids+=($!)
wait_for "$work/server-tunnel.log" "listening for TWAMP-Control on $INNER_B"
wait_for "$work/server-underlay.log" "listening for strongSwan HA messages on $HA_OTWAMP:4510"

echo "== charon in both, then the tunnel from A"
start_charon "$B" b
start_charon "$A" a
swan a --initiate --child ippm-tunnel >/dev/null
swan a --list-sas
ip -n "$A" route show table 220

echo "== (a) TWAMP to $INNER_B through ipsec0, open mode; (b) TWAMP to $UNDERLAY_B, authenticated"
ip netns exec "$A" "$OTWAMP" ping "$INNER_B" -c "$COUNT" -i "$INTERVAL" -A open \
  >"$work/tunnel.txt"
ip netns exec "$A" "$OTWAMP" ping "$UNDERLAY_B" -c "$COUNT" -i "$INTERVAL" -A authenticated \
  --key-source strongswan --strongswan-ha "$HA_OTWAMP" --strongswan-ha-charon "$HA_CHARON" \
  --strongswan-resync >"$work/underlay.txt"

"$repo/.venv/bin/python" - "$work/tunnel.txt" "$work/underlay.txt" <<'PY'
import sys
from itertools import zip_longest

titles = ("(a) in the tunnel: open mode, ESP (RFC 7717 §5.4)",
          "(b) bypassing it: authenticated, IKE-keyed (§1)")
columns = [open(path).read().splitlines() for path in sys.argv[1:]]
width = max(len(line) for line in columns[0] + [titles[0]]) + 3
print()
print(titles[0].ljust(width) + titles[1])
print("-" * (width - 3) + "   " + "-" * len(titles[1]))
for left, right in zip_longest(*columns, fillvalue=""):
    print(left.ljust(width) + right)
PY
