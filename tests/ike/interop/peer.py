"""Our IKE daemon as a subprocess peer for the strongSwan interop tests (runs inside a netns).

Prints one JSON object per line: {"event": "ready"}, then "established" / "deleted" with the
SA's SPIs and, for the test's comparison with charon's SK_d, the throwaway IPPM key.
stdin commands: "delete" and "rekey" (every SA we know), "quit".
"""

import argparse
import asyncio
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.sa import IkeSa
from otwamp.ike.trust import Credentials, TrustStore
from otwamp.ike.wire.identity import Identity


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _policy(args: argparse.Namespace) -> Policy:
    local_id, remote_id = Identity.fqdn(args.local_id), Identity.fqdn(args.remote_id)
    suites = tuple(Suite.parse(p) for p in args.proposals.split(","))
    if args.psk:
        return Policy(local_id, suites, {remote_id: args.psk.encode()})
    with open(args.cert, "rb") as cert, open(args.key, "rb") as key, open(args.ca, "rb") as ca:
        credentials = Credentials(
            x509.load_pem_x509_certificate(cert.read()), load_pem_private_key(key.read(), None)
        )
        trust = TrustStore((x509.load_pem_x509_certificate(ca.read()),))
    return Policy(local_id, suites, credentials=credentials, trust=trust)


def _say(event: str, sa: IkeSa | None = None) -> None:
    record = {"event": event}
    if sa is not None:
        record |= {
            "spi_i": sa.spi_i.hex(),
            "spi_r": sa.spi_r.hex(),
            "suite": str(sa.suite),
            "remote_id": str(sa.remote_id),
            "ippm_key": sa.ippm_key.hex(),
        }
    print(json.dumps(record), flush=True)


async def _watch(daemon: IkeDaemon) -> None:
    known: set[IkeSa] = set()
    while True:
        current = set(daemon.database.all())
        for sa in sorted(current - known, key=lambda s: s.established_at):
            _say("established", sa)
        for sa in known - current:
            _say("deleted", sa)
        known = current
        await asyncio.sleep(0.05)


async def _main(args: argparse.Namespace) -> None:
    daemon = IkeDaemon(_policy(args), _address(args.local))
    await daemon.start()
    watcher = asyncio.create_task(_watch(daemon))
    _say("ready")
    if args.initiate:
        await daemon.initiate(Identity.fqdn(args.remote_id), _address(args.initiate), timeout=10)
    loop = asyncio.get_running_loop()
    while (line := (await loop.run_in_executor(None, sys.stdin.readline)).strip()) != "quit":
        if line == "delete":
            for sa in daemon.database.all():
                await daemon.delete(sa)
        if line == "rekey":
            for sa in daemon.database.all():
                await daemon.rekey(sa)
        if not line:
            break
    await asyncio.sleep(0.2)  # let the watcher report the last change
    watcher.cancel()
    daemon.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", required=True)
    parser.add_argument("--initiate", help="peer host:port to initiate to")
    parser.add_argument("--local-id", required=True)
    parser.add_argument("--remote-id", required=True)
    parser.add_argument("--proposals", required=True)
    parser.add_argument("--psk")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    asyncio.run(_main(parser.parse_args()))
