"""Authenticated STAMP keyed by IKEv2 SAs: RFC 7717 §5.1's key as STAMP's HMAC key (ours).

Two ``otwamp ike`` daemons as separate processes, certificates from a
throwaway CA: the responder on the reflector's address serves ``otwamp server
--stamp-key-source ike --ike-socket``, the initiator on the sender's address
serves ``otwamp stamp -A authenticated --key-source ike --ike-socket``, whose
default policy has it set the SA up. The reflector then finds the newest SA
with each packet's source address. IPv4: sender 127.0.0.1, reflector
127.0.0.2; IPv6: both ::1, the daemons on different ports.
"""

import contextlib
import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.ike_support import (
    Logged,
    Pki,
    free_port,
    ike_command,
    make_pki,
    otwamp_command,
    write_ike_pair,
)
from tests.e2e.processes import endpoint, run_cli

pytestmark = pytest.mark.timeout(120)

FAMILIES = {"ipv4": ("127.0.0.2", "127.0.0.1"), "ipv6": ("::1", "::1")}
COUNT = 10
SPIS = re.compile(r"SPIi=([0-9a-f]{16}) SPIr=([0-9a-f]{16})")


@dataclass
class Pair:
    """The reflector (with its IKE responder) and the sender's IKE initiator."""

    reflector: str  # HOST:PORT of the STAMP reflector
    client_broker: Path
    client_host: str
    server: Logged
    client_ike: Logged


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@contextlib.contextmanager
def ike_pair(pki: Pki, directory: Path, family: str) -> Iterator[Pair]:
    server_host, client_host = FAMILIES[family]
    resp, init, _resp_port = write_ike_pair(directory, pki, server_host, client_host)
    stamp_port = free_port(server_host, socket.SOCK_DGRAM)
    with contextlib.ExitStack() as stack:
        daemons = []
        for config in (resp, init):
            daemon = Logged([*ike_command(), "--config", str(config)], config.with_suffix(".log"))
            stack.callback(daemon.stop)
            daemons.append(daemon)
        daemons[0].wait_for("listening on")
        daemons[1].wait_for("listening on")
        server = Logged(
            [
                *otwamp_command(),
                "server",
                *("--listen", "off", "--owamp-listen", "off"),
                *("--stamp-listen", endpoint(server_host, stamp_port)),
                *("--stamp-key-source", "ike", "--ike-socket", str(resp.with_suffix(".sock"))),
            ],
            directory / "server.log",
        )
        stack.callback(server.stop)
        server.wait_for("STAMP reflector")
        yield Pair(
            endpoint(server_host, stamp_port),
            init.with_suffix(".sock"),
            client_host,
            server,
            daemons[1],
        )


@pytest.fixture(scope="module", params=list(FAMILIES))
def pair(request, pki, tmp_path_factory) -> Iterator[Pair]:
    with ike_pair(pki, tmp_path_factory.mktemp(request.param), request.param) as running:
        yield running


def stamp(pair: Pair, *args: str):
    family = "-6" if ":" in pair.client_host else "-4"
    return run_cli(
        "stamp",
        pair.reflector,
        *("-c", str(COUNT), "-i", "0.02", "--wait", "1", family, "--json", "-v"),
        *args,
    )


def test_sender_and_reflector_take_the_same_key_from_their_sa(pair):
    broker = str(pair.client_broker)
    result = stamp(pair, "-A", "authenticated", "--key-source", "ike", "--ike-socket", broker)
    assert result.returncode == 0, result.stderr + pair.server.log()
    out = json.loads(result.stdout)
    assert out["mode"] == "authenticated" and out["key_source"] == "ikev2"
    assert out["packets"]["received"] == COUNT, pair.server.log()
    # The SA the sender's daemon set up is the one the reflector picked for this address.
    sender_spis = SPIS.search(result.stderr)
    log = pair.server.log()
    reflector_line = re.search(r"HMAC key of (\S+) from IKE SA (SPIi=\S+ SPIr=\S+)", log)
    assert sender_spis and reflector_line, result.stderr + pair.server.log()
    assert reflector_line.group(1) == pair.client_host
    assert reflector_line.group(2) == sender_spis.group(0)
    assert "established" in pair.client_ike.log()


def test_another_key_gets_no_reply(pair, tmp_path):
    """A peer with an SA must use its key: a key-file key fails the reflector's HMAC check."""
    keyfile = tmp_path / "stamp.pfs"
    keyfile.write_text(f"1\t{'ab' * 32}\n")
    keyfile.chmod(0o600)
    result = stamp(pair, "-A", "authenticated", "-u", "1", "-k", str(keyfile))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["packets"]["received"] == 0
    assert "Traceback" not in pair.server.log()


def test_unauthenticated_packets_of_a_keyed_peer_are_refused(pair):
    result = stamp(pair)
    assert json.loads(result.stdout)["packets"]["received"] == 0
    assert "an unauthenticated packet for a session with a key" in pair.server.log()


def test_the_server_needs_an_ike_key_source(tmp_path):
    result = run_cli(
        "server",
        *("--listen", "off", "--owamp-listen", "off", "--stamp-listen", "127.0.0.1:0"),
        *("--stamp-key-source", "ike"),
        timeout=20,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "otwamp: --stamp-key-source ike needs an IKEv2 key source: --ike-config, --ike-socket "
        "or --strongswan-ha"
    )
