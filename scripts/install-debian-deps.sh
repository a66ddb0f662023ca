#!/usr/bin/env bash
# Install the Debian packages otwamp's tests and demo need, only when missing.
set -euo pipefail
need=()
command -v tshark  >/dev/null 2>&1 || need+=(tshark)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v ip      >/dev/null 2>&1 || need+=(iproute2)
# strongSwan is the real IKEv2 peer of the interop tests (DESIGN.md, Real peers).
command -v swanctl >/dev/null 2>&1 || need+=(strongswan-swanctl strongswan-charon charon-systemd strongswan-pki libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins)
# PostgreSQL is the real server of the archive tests (initdb/pg_ctl in a temporary directory).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Prometheus scrapes the agent's /metrics in the tests; headless Chromium loads the dashboard.
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium chromium-driver)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root to install them)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
