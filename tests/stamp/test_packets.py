"""STAMP base packets against RFC 8762 Figures 2, 4, 5, 6 and RFC 8972 §3 (SSID)."""

import contextlib
import hashlib
import hmac
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.stamp.packets import (
    AUTH_SIZE,
    BASE_SIZE,
    HMAC_OFFSET,
    ReflectorPacket,
    SenderPacket,
    StampHmac,
)

KEY = StampHmac(b"k" * 32)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
u16 = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)
error = st.integers(0, 0xFFFF).filter(lambda value: value & 0xFF)  # Multiplier != 0


def test_sender_unauthenticated_figure_2() -> None:
    """Seq 4, Timestamp 8, Error Estimate 2, SSID 2 (RFC 8972 Figure 1), MBZ 28: 44 octets."""
    wire = SenderPacket(0x01020304, 0x1112131415161718, 0x8101, 0xBEEF).encode()
    assert len(wire) == BASE_SIZE == 44
    assert wire[:4] == bytes.fromhex("01020304")
    assert wire[4:12] == bytes.fromhex("1112131415161718")
    assert wire[12:14] == bytes.fromhex("8101")
    assert wire[14:16] == bytes.fromhex("beef")
    assert wire[16:] == bytes(28)


def test_sender_authenticated_figure_4() -> None:
    """Seq, MBZ 12, Timestamp, Error Estimate, SSID, MBZ 68, HMAC over the first 96 octets."""
    wire = SenderPacket(7, 0x1112131415161718, 0x0101, 5).encode(KEY)
    assert len(wire) == AUTH_SIZE == 112
    assert wire[:4] == struct.pack("!I", 7)
    assert wire[4:16] == bytes(12)
    assert wire[16:24] == bytes.fromhex("1112131415161718")
    assert wire[24:26] == bytes.fromhex("0101")
    assert wire[26:28] == struct.pack("!H", 5)
    assert wire[28:96] == bytes(68)
    expected = hmac.new(b"k" * 32, wire[:HMAC_OFFSET], hashlib.sha256).digest()[:16]
    assert wire[96:112] == expected  # HMAC-SHA-256 truncated to 128 bits (RFC 8762 §4.4)


def test_reflector_unauthenticated_figure_5() -> None:
    packet = ReflectorPacket(1, 2, 0x0102, 3, 4, 5, 6, 0x0304, 64)
    wire = packet.encode()
    assert len(wire) == BASE_SIZE
    assert struct.unpack("!IQHHQIQHHB3x", wire) == (1, 2, 0x0102, 3, 4, 5, 6, 0x0304, 0, 64)


def test_reflector_authenticated_figure_6() -> None:
    wire = ReflectorPacket(1, 2, 0x0102, 3, 4, 5, 6, 0x0304, 64).encode(KEY)
    assert len(wire) == AUTH_SIZE
    fields = struct.unpack("!I12xQHH4xQ8xI12xQH6xB15x", wire[:96])
    assert fields == (1, 2, 0x0102, 3, 4, 5, 6, 0x0304, 64)
    assert wire[4:16] == bytes(12) and wire[28:32] == bytes(4) and wire[40:48] == bytes(8)
    assert wire[96:] == hmac.new(b"k" * 32, wire[:96], hashlib.sha256).digest()[:16]


def test_mbz_ignored_on_receipt() -> None:
    """MBZ fields MUST be ignored on receipt (RFC 8762 §4.2.1, R1)."""
    wire = bytearray(SenderPacket(1, 2, 0x0101, 9).encode())
    wire[16:44] = b"\xff" * 28
    assert SenderPacket.decode(wire) == SenderPacket(1, 2, 0x0101, 9)


def test_twamp_light_sender_packet_is_accepted() -> None:
    """RFC 8762 §4.6: a 14-octet RFC 5357 sender packet, SSID 0, no TLVs."""
    wire = struct.pack("!IQH", 3, 4, 0x0101)
    assert SenderPacket.decode(wire) == SenderPacket(3, 4, 0x0101)


def test_zero_multiplier_is_corrupt() -> None:
    with pytest.raises(ProtocolError, match="Multiplier"):
        SenderPacket.decode(SenderPacket(1, 2, 0x8100).encode())


def test_hmac_mismatch() -> None:
    wire = bytearray(SenderPacket(1, 2, 0x0101).encode(KEY))
    wire[20] ^= 1
    with pytest.raises(AuthenticationError):
        SenderPacket.decode(wire, KEY)
    with pytest.raises(AuthenticationError):
        SenderPacket.decode(SenderPacket(1, 2, 0x0101).encode(StampHmac(b"other")), KEY)


def test_key_not_in_repr() -> None:
    assert "kkkk" not in repr(KEY)


@given(u32, u64, error, u16, st.binary(max_size=64), st.booleans())
def test_sender_round_trip(seq: int, ts: int, err: int, ssid: int, tlvs: bytes, auth: bool) -> None:
    key = KEY if auth else None
    packet = SenderPacket(seq, ts, err, ssid, tlvs)
    assert SenderPacket.decode(packet.encode(key), key) == packet


@given(u32, u64, error, u16, u64, u32, u64, error, u8, st.binary(max_size=64), st.booleans())
def test_reflector_round_trip(
    seq: int,
    ts: int,
    err: int,
    ssid: int,
    t2: int,
    s_seq: int,
    s_ts: int,
    s_err: int,
    ttl: int,
    tlvs: bytes,
    auth: bool,
) -> None:
    key = KEY if auth else None
    packet = ReflectorPacket(seq, ts, err, ssid, t2, s_seq, s_ts, s_err, ttl, tlvs)
    assert ReflectorPacket.decode(packet.encode(key), key) == packet


@given(st.binary(max_size=200), st.booleans())
def test_garbage_raises_only_protocol_error(data: bytes, auth: bool) -> None:
    key = KEY if auth else None
    for decode in (SenderPacket.decode, ReflectorPacket.decode):
        with contextlib.suppress(ProtocolError):
            decode(data, key)
