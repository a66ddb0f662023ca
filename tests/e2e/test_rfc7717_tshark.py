"""Wireshark reads our RFC 7717 control set-up as we meant it (issue 6, "Verified by").

A real ``otwamp server`` offering open, authenticated, encrypted and mixed modes with an
embedded IKEv2 responder (certificates), and real ``otwamp ping -A authenticated`` and
``otwamp owping -A encrypted`` runs with ``--key-source ike``, captured with tcpdump on ``lo``
and dissected by tshark with ``-d tcp.port==P,twamp.control`` (Wireshark's OWAMP-Control is the
same dissector: the set-up messages have one format in both protocols). Then a raw client with
fabricated SPIs, whose Server-Start must carry Accept 6.

What tshark 4.0 shows, which the assertions follow:

- Server-Greeting: ``twamp.control.modes`` is the whole 32-bit Modes word (its text names only
  the bits it knows: 1, 2, 4).
- Set-Up-Response: ``twamp.control.mode``, and ``twamp.control.keyid`` over the first 40 octets
  of the KeyID only (the dissector's length, not RFC 4656's 80); it stops there. The full
  164-octet PDU (D1) is checked from ``tcp.payload``.
- Server-Start: MBZ, Accept and Server-IV are clear; Start-Time and the last MBZ are encrypted in
  secured modes (RFC 4656 §3.1), so tshark's reading of them is not checked.
- Everything after Server-Start is encrypted, which the dissector cannot know: it reads
  ciphertext as commands and flags some as malformed. Only the three set-up PDUs of each
  connection must be free of malformed-packet and expert entries.
"""

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otwamp.keys.source import Credentials
from otwamp.wire.registry import TwampMode
from tests.e2e.ike_support import (
    Logged,
    make_pki,
    raw_set_up,
    report,
    running_server,
    write_ike_pair,
)
from tests.e2e.processes import run_cli
from tests.e2e.tshark_support import TSHARK_MARKS, Layers

pytestmark = TSHARK_MARKS

SERVER, CLIENT = "127.0.0.2", "127.0.0.1"


@dataclass
class Capture:
    """What the module captured: the reports, the fabricated SPIs, and tshark's frames."""

    twamp_port: int
    owamp_port: int
    ping: dict[str, Any]
    owping: dict[str, Any]
    fabricated: bytes
    frames: list[Layers]

    def streams(self, port: int) -> list[list[Layers]]:
        """The TWAMP-Control PDUs of each TCP connection to ``port``, in order."""
        streams: dict[str, list[Layers]] = {}
        for layers in self.frames:
            if "twamp.control" in layers and port in _ports(layers):
                streams.setdefault(layers["tcp"]["tcp.stream"], []).append(layers)
        return list(streams.values())


def _ports(layers: Layers) -> tuple[int, int]:
    return int(layers["tcp"]["tcp.srcport"]), int(layers["tcp"]["tcp.dstport"])


@contextlib.contextmanager
def _tcpdump(path: Path, bpf: str) -> Iterator[None]:
    dump = Logged(
        ["tcpdump", "-i", "lo", "-n", "--immediate-mode", "-U", "-w", str(path), bpf],
        path.with_suffix(".log"),
    )
    try:
        dump.wait_for("listening on")
        yield
        time.sleep(0.5)  # the last packets through the capture ring
    finally:
        dump.stop(signal.SIGINT)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    directory = tmp_path_factory.mktemp("tshark")
    pki = make_pki(directory / "pki")
    resp, init, resp_port = write_ike_pair(directory, pki, SERVER, CLIENT)
    pcap = directory / "rfc7717.pcap"
    with running_server(SERVER, directory, "--ike-config", str(resp), ike_port=resp_port) as server:
        server.process.wait_for(f"listening on {SERVER}:{resp_port}")
        ike = ("--key-source", "ike", "--ike-config", str(init), "--json")
        bpf = f"tcp port {server.twamp_port} or tcp port {server.owamp_port}"
        with _tcpdump(pcap, bpf):
            ping = run_cli(
                "ping",
                server.twamp,
                "-c",
                "5",
                "-i",
                "0.01",
                "--wait",
                "0.3",
                "-A",
                "authenticated",
                *ike,
            )
            owping = run_cli(
                "owping",
                server.owamp,
                "-c",
                "5",
                "-i",
                "0.01",
                "--wait",
                "0.3",
                "-A",
                "encrypted",
                *ike,
            )
            fabricated = os.urandom(16)
            refused = raw_set_up(
                (SERVER, server.twamp_port),
                Credentials(fabricated + bytes(64), os.urandom(32), "ikev2", "fabricated"),
                TwampMode.AUTHENTICATED,
                int(TwampMode.IKEV2_DERIVED),
            )
        assert ping.returncode == 0, ping.stderr
        assert owping.returncode == 0, owping.stderr
        assert refused.start.accept == 6
    dissected = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            *("-d", f"tcp.port=={server.twamp_port},twamp.control"),
            *("-d", f"tcp.port=={server.owamp_port},twamp.control"),
            "-T",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    frames = [packet["_source"]["layers"] for packet in json.loads(dissected.stdout)]
    return Capture(
        server.twamp_port,
        server.owamp_port,
        report(ping.stdout),
        report(owping.stdout),
        fabricated,
        frames,
    )


def _octets(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def _has_warnings(value: object) -> bool:
    """Whether a frame's dissection holds a malformed-packet or expert entry anywhere."""
    if isinstance(value, dict):
        return any(
            key.startswith(("_ws.malformed", "_ws.expert")) or _has_warnings(v)
            for key, v in value.items()
        )
    if isinstance(value, list):
        return any(_has_warnings(v) for v in value)
    return False


def _set_up(capture: Capture, port: int) -> list[tuple[Layers, Layers, Layers]]:
    """Greeting, Set-Up-Response and Server-Start of every connection to ``port``."""
    connections = []
    for pdus in capture.streams(port):
        assert len(pdus) >= 3
        greeting, response, start = pdus[:3]
        assert int(_ports(greeting)[0]) == port  # the server speaks first
        assert int(_ports(response)[1]) == port
        for layers in (greeting, response, start):
            assert not _has_warnings(layers), json.dumps(layers)[:2000]
        connections.append((greeting, response, start))
    return connections


@pytest.mark.parametrize(
    ("protocol", "modes", "mode"),
    [("twamp", 0x8F, 0x82), ("owamp", 0x17, 0x14)],
    ids=["twamp-authenticated", "owamp-encrypted"],
)
def test_tshark_decodes_our_set_up(capture, protocol, modes, mode):
    port = capture.twamp_port if protocol == "twamp" else capture.owamp_port
    document = capture.ping if protocol == "twamp" else capture.owping
    spis = bytes.fromhex(document["ike_sa"]["spi_i"] + document["ike_sa"]["spi_r"])
    connections = _set_up(capture, port)
    keyed = [
        c for c in connections if _octets(c[1]["twamp.control"]["twamp.control.keyid"])[:16] == spis
    ]
    assert len(keyed) == 1, "no Set-Up-Response carries the report's SPIs"
    greeting, response, start = keyed[0]
    # Modes: open | authenticated | encrypted (| mixed, TWAMP) | IKEv2-derived (D3).
    assert int(greeting["twamp.control"]["twamp.control.modes"]) == modes
    assert greeting["twamp.control"]["twamp.control.count"] == "2048"
    fields = response["twamp.control"]
    assert int(fields["twamp.control.mode"]) == mode
    shown = _octets(fields["twamp.control.keyid"])
    assert shown == spis + bytes(len(shown) - 16)
    payload = _octets(response["tcp"]["tcp.payload"])
    assert len(payload) == 164  # D1: RFC 4656's layout, Token 64 and Client-IV 16 octets
    assert int.from_bytes(payload[:4], "big") == mode
    assert payload[4:84] == spis + bytes(64)  # KeyID: SPIi | SPIr | 64 zero octets (D4)
    assert start["twamp.control"]["twamp.control.accept"] == "0"


def test_tshark_decodes_accept_6(capture):
    [refused] = [
        c
        for c in _set_up(capture, capture.twamp_port)
        if _octets(c[1]["tcp"]["tcp.payload"])[4:20] == capture.fabricated
    ]
    greeting, response, start = refused
    assert int(greeting["twamp.control"]["twamp.control.modes"]) == 0x8F
    assert int(response["twamp.control"]["twamp.control.mode"]) == 0x82
    assert start["twamp.control"]["twamp.control.accept"] == "6"
