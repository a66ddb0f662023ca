"""TWAMP-Test packets (RFC 5357 §4.1.2 and §4.2.1, RFC 4656 §4.1.2, erratum 5045)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.twamp_test import (
    MAX_UDP_PAYLOAD,
    REFLECTOR_AUTH,
    REFLECTOR_AUTH_SIZE,
    REFLECTOR_OPEN,
    REFLECTOR_OPEN_SIZE,
    SENDER_AUTH_SIZE,
    SENDER_OPEN_SIZE,
    STAMP,
    CorruptPacket,
    ReflectorPacket,
    SenderPacket,
    reflector_layout,
    reflector_size,
    sender_size,
)
from tests.vectors import load_vector, ts
from tests.wire.conftest import ALL_TWAMP, RecordedPacket, all_test_packets, ee

T1 = 0xEEACD948AADF2ECF
T2 = 0xEEACD948AAE9AB29
T3 = 0xEEACD948AAEAFAB5
PAD = bytes(range(1, 28))


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def reflector() -> ReflectorPacket:
    return ReflectorPacket(
        seq=7,
        timestamp=T3,
        error=0x8001,
        receive_timestamp=T2,
        sender_seq=0x01020304,
        sender_timestamp=T1,
        sender_error=0x0A0B,
        sender_ttl=64,
    )


def test_sizes():
    assert SENDER_OPEN_SIZE == 14
    assert SENDER_AUTH_SIZE == 48
    assert REFLECTOR_OPEN_SIZE == 41
    assert REFLECTOR_AUTH_SIZE == 112  # the figure of RFC 5357 §4.2.1 (erratum 5045), DESIGN D14
    assert MAX_UDP_PAYLOAD == 65_507
    assert sender_size(False, 0) == 14
    assert sender_size(False, 27) == 41
    assert sender_size(True, 64) == 112
    assert reflector_size(False, 14) == 41
    assert reflector_size(False, 41) == 41
    assert reflector_size(False, 1000) == 1000
    assert reflector_size(True, 48) == 112
    assert reflector_size(True, 200) == 200


# Unauthenticated sender: Seq 0-3, Timestamp 4-11, Error Estimate 12-13, Packet Padding 14-.


def test_sender_open_layout():
    packet = SenderPacket(seq=0x01020304, timestamp=T1, error=0x8001, padding=PAD)
    wire = packet.encode()
    assert wire == be(0x01020304, 4) + be(T1, 8) + b"\x80\x01" + PAD
    assert len(wire) == 14 + 27
    assert SenderPacket.decode(wire) == packet


def test_sender_open_without_padding():
    packet = SenderPacket(0, T1, 1)
    assert packet.encode() == bytes(4) + be(T1, 8) + b"\x00\x01"
    assert SenderPacket.decode(packet.encode()) == packet


# Authenticated/encrypted sender: Seq 0-3, MBZ 4-15, Timestamp 16-23, Error 24-25, MBZ 26-31,
# HMAC 32-47, Packet Padding 48-.


def test_sender_auth_layout():
    packet = SenderPacket(seq=5, timestamp=T1, error=0x0101, padding=PAD)
    wire = packet.encode(authenticated=True)
    assert wire == be(5, 4) + bytes(12) + be(T1, 8) + b"\x01\x01" + bytes(6) + bytes(16) + PAD
    assert len(wire) == 48 + 27
    assert SenderPacket.decode(wire, authenticated=True) == packet


def test_sender_auth_ignores_mbz_and_hmac():
    wire = be(5, 4) + b"\xff" * 12 + be(T1, 8) + b"\x01\x01" + b"\xff" * 6 + b"\xee" * 16
    assert SenderPacket.decode(wire, authenticated=True) == SenderPacket(5, T1, 0x0101)


# Unauthenticated reflector: Seq 0-3, Timestamp 4-11, Error 12-13, MBZ 14-15, Receive Timestamp
# 16-23, Sender Seq 24-27, Sender Timestamp 28-35, Sender Error 36-37, MBZ 38-39, Sender TTL 40.


def test_reflector_open_layout():
    wire = reflector().encode()
    expected = (
        be(7, 4)
        + be(T3, 8)
        + b"\x80\x01"
        + bytes(2)
        + be(T2, 8)
        + be(0x01020304, 4)
        + be(T1, 8)
        + b"\x0a\x0b"
        + bytes(2)
        + b"\x40"
    )
    assert wire == expected
    assert len(wire) == 41
    assert wire[40] == 64
    assert ReflectorPacket.decode(wire) == reflector()


def test_reflector_open_ignores_mbz():
    wire = bytearray(reflector().encode())
    wire[14:16] = b"\xff\xff"
    wire[38:40] = b"\xff\xff"
    assert ReflectorPacket.decode(bytes(wire)) == reflector()


# Authenticated/encrypted reflector (RFC 5357 §4.2.1): Seq 0-3, MBZ 4-15, Timestamp 16-23,
# Error 24-25, MBZ 26-31, Receive Timestamp 32-39, MBZ 40-47, Sender Seq 48-51, MBZ 52-63,
# Sender Timestamp 64-71, Sender Error 72-73, MBZ 74-79, Sender TTL 80, MBZ 81-95, HMAC 96-111.


def test_reflector_auth_layout():
    wire = reflector().encode(authenticated=True)
    expected = bytearray(112)
    expected[0:4] = be(7, 4)
    expected[16:24] = be(T3, 8)
    expected[24:26] = b"\x80\x01"
    expected[32:40] = be(T2, 8)
    expected[48:52] = be(0x01020304, 4)
    expected[64:72] = be(T1, 8)
    expected[72:74] = b"\x0a\x0b"
    expected[80] = 64
    assert wire == bytes(expected)
    assert ReflectorPacket.decode(wire, authenticated=True) == reflector()


def test_reflector_auth_ignores_mbz_and_hmac():
    wire = bytearray(reflector().encode(authenticated=True))
    for start, end in ((4, 16), (26, 32), (40, 48), (52, 64), (74, 80), (81, 112)):
        wire[start:end] = b"\xff" * (end - start)
    assert ReflectorPacket.decode(bytes(wire), authenticated=True) == reflector()


def test_reflector_padding_follows_the_fields():
    packet = ReflectorPacket(1, T3, 1, T2, 1, T1, 1, 255, padding=b"\x00" * 5)
    assert packet.encode()[41:] == bytes(5)
    assert packet.encode(authenticated=True)[112:] == bytes(5)
    assert ReflectorPacket.decode(packet.encode() + b"xyz").padding == bytes(5) + b"xyz"


# Multiplier 0 marks a corrupt packet (RFC 4656 §4.1.2) and short packets are refused.


@pytest.mark.parametrize("authenticated", [False, True])
def test_sender_multiplier_zero(authenticated):
    wire = SenderPacket(1, T1, 0x8000).encode(authenticated)
    with pytest.raises(CorruptPacket) as info:
        SenderPacket.decode(wire, authenticated)
    assert isinstance(info.value, ProtocolError)
    assert info.value.field == "Error Estimate"
    assert info.value.section == "RFC 5357 §4.1.2"


@pytest.mark.parametrize("authenticated", [False, True])
@pytest.mark.parametrize(
    ("error", "sender_error", "field"),
    [(0x8000, 1, "Error Estimate"), (1, 0x0100, "Sender Error Estimate")],
)
def test_reflector_multiplier_zero(authenticated, error, sender_error, field):
    packet = ReflectorPacket(1, T3, error, T2, 1, T1, sender_error, 255)
    with pytest.raises(CorruptPacket) as info:
        ReflectorPacket.decode(packet.encode(authenticated), authenticated)
    assert info.value.field == field
    assert info.value.section == "RFC 5357 §4.2.1"


@pytest.mark.parametrize(
    ("authenticated", "size"), [(False, 13), (False, 0), (True, 47), (True, 14)]
)
def test_sender_too_short(authenticated, size):
    with pytest.raises(ProtocolError) as info:
        SenderPacket.decode(b"\x01" * size, authenticated)
    assert info.value.field == "Session-Sender packet"
    assert info.value.section == "RFC 5357 §4.1.2"


@pytest.mark.parametrize(
    ("authenticated", "size"), [(False, 40), (False, 14), (True, 111), (True, 48)]
)
def test_reflector_too_short(authenticated, size):
    with pytest.raises(ProtocolError) as info:
        ReflectorPacket.decode(b"\x01" * size, authenticated)
    assert info.value.field == "Session-Reflector packet"
    assert info.value.section == "RFC 5357 §4.2.1"


# The layouts are the codec the session engines use on every packet.


@pytest.mark.parametrize("authenticated", [False, True])
def test_layout_unpack_gives_the_fields_of_decode(authenticated):
    wire = reflector().encode(authenticated) + b"pad"
    layout = reflector_layout(authenticated)
    assert layout is (REFLECTOR_AUTH if authenticated else REFLECTOR_OPEN)
    assert layout.unpack(wire) == (7, T3, 0x8001, T2, 0x01020304, T1, 0x0A0B, 64)


@pytest.mark.parametrize(("authenticated", "offset"), [(False, 4), (True, 16)])
def test_layout_pack_and_stamp_into(authenticated, offset):
    layout = reflector_layout(authenticated)
    buffer = bytearray(layout.size)
    layout.fields.pack_into(buffer, 0, 7, 0, 1, T2, 0x01020304, T1, 0x0A0B, 64)
    STAMP.pack_into(buffer, layout.stamp_offset, T3, 0x8001)
    assert buffer[offset : offset + 10] == be(T3, 8) + b"\x80\x01"
    assert bytes(buffer) == reflector().encode(authenticated)


# The perfSONAR transcripts: every test packet decoded, compared and re-encoded.

PACKETS = all_test_packets(ALL_TWAMP)


def test_packet_sizes_match_the_transcripts():
    for name in ALL_TWAMP:
        lengths = load_vector(name)["padding"]["udp_payload_lengths"]
        pad = load_vector(name)["padding"]["padding_length_in_request"][0]
        auth = "-A" in name or "-E" in name
        assert lengths["sender->reflector"] == [sender_size(auth, pad)]
        assert lengths["reflector->sender"] == [reflector_size(auth, sender_size(auth, pad))]
    assert len(PACKETS) == 10 * len(ALL_TWAMP)


@pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.id)
def test_perfsonar_test_packets(packet: RecordedPacket):
    f = packet.fields
    auth = packet.authenticated
    padding = bytes.fromhex(f["padding_hex"])
    if packet.from_sender:
        decoded = SenderPacket.decode(packet.plaintext, auth)
        again = SenderPacket(f["seq"], ts(f["timestamp"]), ee(f["error_estimate"]), padding)
        fields_end = 32 if auth else 14
    else:
        decoded = ReflectorPacket.decode(packet.plaintext, auth)
        assert decoded.receive_timestamp == ts(f["receive_timestamp"])
        assert decoded.sender_seq == f["sender_seq"]
        assert decoded.sender_timestamp == ts(f["sender_timestamp"])
        assert decoded.sender_error == ee(f["sender_error_estimate"])
        assert decoded.sender_ttl == f["sender_ttl"]
        again = ReflectorPacket(
            f["seq"],
            ts(f["timestamp"]),
            ee(f["error_estimate"]),
            ts(f["receive_timestamp"]),
            f["sender_seq"],
            ts(f["sender_timestamp"]),
            ee(f["sender_error_estimate"]),
            f["sender_ttl"],
            padding,
        )
        fields_end = 96 if auth else 41
    assert decoded.seq == f["seq"]
    assert decoded.timestamp == ts(f["timestamp"])
    assert decoded.error == ee(f["error_estimate"])
    assert decoded.padding == padding
    assert decoded == again
    wire = again.encode(auth)
    assert len(wire) == len(packet.plaintext)
    if auth:
        # The codec leaves the HMAC zero; security.testpacket fills it in.
        assert wire[:fields_end] == packet.plaintext[:fields_end]
        assert wire[fields_end : fields_end + 16] == bytes(16)
        assert packet.plaintext[fields_end : fields_end + 16].hex() == f["hmac"]
        assert wire[fields_end + 16 :] == packet.plaintext[fields_end + 16 :]
    else:
        assert wire == packet.payload


# Hypothesis: round trips, and random octets never raise anything but ProtocolError.

u8, u32, u64 = (st.integers(0, 2**n - 1) for n in (8, 32, 64))
error = st.integers(0, 0xFFFF).filter(lambda v: v & 0xFF)
padding = st.binary(max_size=64)


@given(u32, u64, error, padding, st.booleans())
def test_sender_round_trip(seq, timestamp, err, pad, authenticated):
    packet = SenderPacket(seq, timestamp, err, pad)
    wire = packet.encode(authenticated)
    assert len(wire) == sender_size(authenticated, len(pad))
    assert SenderPacket.decode(wire, authenticated) == packet


@given(u32, u64, error, u64, u32, u64, error, u8, padding, st.booleans())
def test_reflector_round_trip(seq, t3, err, t2, s_seq, t1, s_err, ttl, pad, authenticated):
    packet = ReflectorPacket(seq, t3, err, t2, s_seq, t1, s_err, ttl, pad)
    wire = packet.encode(authenticated)
    assert len(wire) == (112 if authenticated else 41) + len(pad)
    assert ReflectorPacket.decode(wire, authenticated) == packet


@pytest.mark.parametrize("authenticated", [False, True])
@pytest.mark.parametrize("kind", [SenderPacket, ReflectorPacket], ids=["sender", "reflector"])
@given(data=st.data())
def test_decoders_raise_only_protocol_error(kind, authenticated, data):
    size = {
        (SenderPacket, False): 14,
        (SenderPacket, True): 48,
        (ReflectorPacket, False): 41,
        (ReflectorPacket, True): 112,
    }[kind, authenticated]
    for strategy in (st.binary(max_size=200), st.binary(min_size=size, max_size=size)):
        raw = data.draw(strategy)
        try:
            decoded = kind.decode(raw, authenticated)
        except ProtocolError:
            continue
        assert len(raw) >= size
        assert decoded.padding == raw[size:]
