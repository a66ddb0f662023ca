"""Our IKE messages as Wireshark's isakmp dissector sees them: no malformed packets."""

import shutil
import struct
import subprocess

import pytest

from otwamp.ike.session import IkeSession

from .pairing import NOW, established, make_pair

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(not shutil.which("tshark"), reason="needs tshark"),
]

_LINKTYPE_RAW = 101  # IPv4 packets without a link-layer header


def _ipv4_udp(payload: bytes, source: int, destination: int) -> bytes:
    """IPv4 (checksummed) and UDP (checksum 0, allowed over IPv4) around ``payload``."""
    udp = struct.pack("!HHHH", 500, 500, 8 + len(payload), 0) + payload
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([10, 98, 0, source]), bytes([10, 98, 0, destination]),
    )  # fmt: skip
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return header[:10] + struct.pack("!H", ~total & 0xFFFF) + header[12:] + udp


def _pcap(packets: list[tuple[bytes, int, int]]) -> bytes:
    out = struct.pack("!IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_RAW)
    for index, (payload, source, destination) in enumerate(packets):
        frame = _ipv4_udp(payload, source, destination)
        out += struct.pack("!IIII", int(NOW) + index, 0, len(frame), len(frame)) + frame
    return out


def test_exchange_decodes_cleanly(tmp_path):
    pair = established(make_pair())
    session: IkeSession = pair.initiator.session
    delete = session.delete(NOW)
    reply = pair.responder.session.receive(delete, NOW).datagrams[0]
    packets = []
    for request, response in zip(pair.to_responder, pair.to_initiator, strict=True):
        packets += [(request, 2, 1), (response, 1, 2)]
    packets += [(delete, 2, 1), (reply, 1, 2)]
    path = tmp_path / "ike.pcap"
    path.write_bytes(_pcap(packets))
    fields = subprocess.run(
        [
            "tshark",
            "-r",
            str(path),
            "-T",
            "fields",
            "-e",
            "isakmp.exchangetype",
            "-e",
            "_ws.malformed",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert [line.split("\t") for line in fields if line] == [
        [exchange, ""] for exchange in ("34", "34", "35", "35", "37", "37")
    ]
    details = subprocess.run(
        ["tshark", "-r", str(path), "-V"], check=True, capture_output=True, text=True
    ).stdout
    assert "Malformed" not in details and "Expert Info (Error" not in details
    assert "Notify Message Type: CHILDLESS_IKEV2_SUPPORTED (16418)" in details
