"""What the strongSwan interop tests share: our peer (peer.py) as a subprocess, certificates
for both ends, and checks of charon's view of an SA."""

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..certs import Authority
from .charon import CHARON, PSK, Charon

INIT_ID, RESP_ID = "init.ippm.test", "resp.ippm.test"
CHARON_PORT, OUR_PORT = 15500, 15600  # neither is 500: both ends use the Non-ESP marker (D8)
# Every interop test module's pytestmark: it runs charon in a namespace of its own.
INTEROP = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not Path(CHARON).exists(),
        reason="needs root, ip netns and charon-systemd (scripts/install-debian-deps.sh)",
    ),
]
PEER_SCRIPT = Path(__file__).with_name("peer.py")


class Peer:
    """tests/ike/interop/peer.py running inside the namespace; a thread collects its output."""

    def __init__(self, netns: str, *args: str) -> None:
        self._process = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(PEER_SCRIPT), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._records: queue.Queue[dict[str, str] | None] = queue.Queue()
        threading.Thread(target=self._collect, daemon=True).start()
        self._seen: list[dict[str, str]] = []
        self.expect("ready")

    def _collect(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._records.put(json.loads(line))
        self._records.put(None)

    def expect(self, event: str, timeout: float = 15) -> dict[str, str]:
        """The first not yet expected record of ``event``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while True:
            for record in self._seen:
                if record["event"] == event:
                    self._seen.remove(record)
                    return record
            try:
                record = self._records.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {event!r} from our peer within {timeout} s") from None
            assert record is not None, f"peer exited before {event!r}"
            self._seen.append(record)

    def send(self, command: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()

    def stop(self) -> None:
        if self._process.poll() is None:
            self.send("quit")
            self._process.wait(timeout=10)


def credentials(directory: Path, cert: str | None) -> tuple[list[str], list[str]]:
    """Our peer's arguments as initiator and as responder; writes certificates of kind ``cert``."""
    if cert is None:
        return ["--psk", PSK], ["--psk", PSK]
    authority = Authority()
    args: dict[str, list[str]] = {}
    ca = directory / "ca.crt"
    ca.write_bytes(authority.certificate.public_bytes(Encoding.PEM))
    for name in (INIT_ID, RESP_ID):
        credentials = authority.issue(name, cert, name)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(credentials.certificate.public_bytes(Encoding.PEM))
        key_path.write_bytes(
            credentials.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        args[name] = ["--cert", str(cert_path), "--key", str(key_path), "--ca", str(ca)]
    return args[INIT_ID], args[RESP_ID]


def install_for_charon(charon: Charon, directory: Path, own_id: str, cert: str | None) -> None:
    if cert:
        swanctl = charon.dir / "swanctl"
        shutil.copy(directory / "ca.crt", swanctl / "x509ca" / "ca.crt")
        shutil.copy(directory / f"{own_id}.crt", swanctl / "x509" / f"{own_id}.crt")
        shutil.copy(directory / f"{own_id}.key", swanctl / "private" / f"{own_id}.key")


def assert_same_sa(charon: Charon, ours: dict[str, str], hash_name: str, proposal: str) -> None:
    listing = charon.swanctl("--list-sas")
    assert "ESTABLISHED" in listing and ours["spi_i"] in listing and ours["spi_r"] in listing
    assert ours["suite"] == proposal
    assert ours["ippm_key"] in charon.ippm_keys(hash_name)


def rekeyed(
    peer: Peer, charon: Charon, old: dict[str, str], hash_name: str, proposal: str
) -> dict[str, str]:
    """After a rekey: the new SA is up on both sides with a new key, the old one is gone."""
    new = peer.expect("established")
    assert peer.expect("deleted")["spi_i"] == old["spi_i"]
    assert new["spi_i"] != old["spi_i"] and new["ippm_key"] != old["ippm_key"]
    wait_until_gone(charon, old["spi_i"])
    assert_same_sa(charon, new, hash_name, proposal)
    return new


def wait_until_gone(charon: Charon, spi_i: str) -> None:
    deadline = time.monotonic() + 10
    while spi_i in charon.swanctl("--list-sas"):
        assert time.monotonic() < deadline, "charon kept the deleted SA"
        time.sleep(0.1)
