"""OWAMP-Test packets (RFC 4656 §4.1.2), on TWAMP's sender layouts."""

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.owamp_test import (
    AUTH_SIZE,
    OPEN_SIZE,
    SenderPacket,
    authenticated_layout,
    decode_packet,
    encode_packet,
    packet_size,
)
from otwamp.wire.registry import OwampMode
from otwamp.wire.twamp_test import CorruptPacket
from tests.vectors import ts
from tests.wire.owamp.vectors import OWAMP, load

SECTION = "RFC 4656 §4.1.2"
OPEN = OwampMode.UNAUTHENTICATED
AUTH = OwampMode.AUTHENTICATED
ENCRYPTED = OwampMode.ENCRYPTED


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def recorded_packets() -> list[tuple[str, int, dict[str, Any]]]:
    return [(v, i, p) for v in OWAMP for i, p in enumerate(load(v)["test_packets"])]


@pytest.mark.parametrize(
    ("vector", "index", "packet"),
    recorded_packets(),
    ids=[f"{v}-{i}-{p['direction']}" for v, i, p in recorded_packets()],
)
def test_packets_from_vectors(vector: str, index: int, packet: dict[str, Any]):
    mode = load(vector)["mode_value"]
    plain = bytes.fromhex(packet.get("plaintext_hex") or packet["payload_hex"])
    f = packet["fields"]
    decoded = decode_packet(plain, mode)
    assert decoded.seq == f["seq"]
    assert decoded.timestamp == ts(f["timestamp"])
    assert decoded.error == int(f["error_estimate"]["hex"], 16)
    assert decoded.padding.hex() == f["padding_hex"]
    assert len(plain) == packet["payload_len"] == packet_size(mode, len(decoded.padding))
    if authenticated_layout(mode):
        # The HMAC is the security layer's; the codec leaves the field zero.
        hmac = plain[32:48]
        assert hmac.hex() == f["hmac"]
        assert encode_packet(decoded, mode) == plain[:32] + bytes(16) + plain[48:]
    else:
        assert encode_packet(decoded, mode) == plain
    rebuilt = SenderPacket(f["seq"], ts(f["timestamp"]), int(f["error_estimate"]["hex"], 16))
    assert encode_packet(rebuilt, mode)[:32] == plain[:32]


def test_open_layout():
    wire = be(7, 4) + be(0xEEACD96FF47FFDE7, 8) + be(0x8101, 2) + b"pad"
    packet = SenderPacket(7, 0xEEACD96FF47FFDE7, 0x8101, b"pad")
    assert OPEN_SIZE == 14
    assert encode_packet(packet, OPEN) == wire
    assert decode_packet(wire, OPEN) == packet


@pytest.mark.parametrize("mode", [AUTH, ENCRYPTED, AUTH | OwampMode.IKEV2_DERIVED])
def test_authenticated_layout(mode: int):
    wire = (
        be(7, 4)  # Sequence Number
        + bytes(12)  # MBZ
        + be(0xEEACD96FF47FFDE7, 8)  # Timestamp
        + be(0x8101, 2)  # Error Estimate
        + bytes(6)  # MBZ
        + bytes(16)  # HMAC, filled in by the security layer
        + b"padding"
    )
    packet = SenderPacket(7, 0xEEACD96FF47FFDE7, 0x8101, b"padding")
    assert AUTH_SIZE == 48
    assert encode_packet(packet, mode) == wire
    assert decode_packet(wire, mode) == packet
    noisy = wire[:4] + b"\xff" * 12 + wire[16:26] + b"\xee" * 6 + b"\xab" * 16 + wire[48:]
    assert decode_packet(noisy, mode) == packet  # MBZ ignored; HMAC is not the codec's


def test_mode_selects_the_layout():
    assert not authenticated_layout(OPEN)
    assert authenticated_layout(AUTH)
    assert authenticated_layout(ENCRYPTED)
    assert authenticated_layout(ENCRYPTED | OwampMode.IKEV2_DERIVED)
    assert packet_size(OPEN, 0) == 14
    assert packet_size(AUTH, 100) == 148
    for bad in (0, OPEN | AUTH, AUTH | ENCRYPTED, OwampMode.IKEV2_DERIVED):
        with pytest.raises(ValueError):
            authenticated_layout(bad)
    with pytest.raises(ValueError):
        packet_size(OPEN, -1)


@pytest.mark.parametrize(("mode", "size"), [(OPEN, 13), (AUTH, 47), (ENCRYPTED, 14)])
def test_short_packets_refused(mode: int, size: int):
    with pytest.raises(ProtocolError) as info:
        decode_packet(b"\x01" * size, mode)
    assert info.value.field == "OWAMP-Test packet"
    assert SECTION in str(info.value)


@pytest.mark.parametrize("mode", [OPEN, AUTH])
def test_zero_multiplier_refused(mode: int):
    wire = encode_packet(SenderPacket(1, 2, 0x8001), mode)
    offset = 12 if mode == OPEN else 24
    bad = wire[: offset + 1] + b"\x00" + wire[offset + 2 :]
    with pytest.raises(CorruptPacket) as info:
        decode_packet(bad, mode)
    assert info.value.field == "Error Estimate"
    assert SECTION in str(info.value)


packets = st.builds(
    SenderPacket,
    st.integers(0, (1 << 32) - 1),
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 0xFFFF).filter(lambda e: e & 0xFF),
    st.binary(max_size=64),
)


@given(packets, st.sampled_from([OPEN, AUTH, ENCRYPTED]))
def test_round_trip(packet: SenderPacket, mode: int):
    wire = encode_packet(packet, mode)
    assert len(wire) == packet_size(mode, len(packet.padding))
    assert decode_packet(wire, mode) == packet


@given(st.binary(max_size=120), st.sampled_from([OPEN, AUTH, ENCRYPTED]))
def test_random_bytes_raise_only_protocol_error(data: bytes, mode: int):
    with contextlib.suppress(ProtocolError):
        decode_packet(data, mode)
