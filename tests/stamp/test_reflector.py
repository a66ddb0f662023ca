"""The sans-I/O Session-Reflector (RFC 8762 §4.3, §4.6; RFC 8972 §3, §4)."""

import ipaddress
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.stamp.packets import BASE_SIZE, ReflectorPacket, SenderPacket, StampHmac
from otwamp.stamp.reflector import Received, ReflectorMode, StampReflector
from otwamp.stamp.tlv import (
    FLAG_I,
    FLAG_M,
    FLAG_U,
    ClassOfService,
    DirectMeasurement,
    ExtraPadding,
    FollowUpTelemetry,
    HmacTlv,
    Location,
    SubTlvType,
    TimestampInformation,
    Tlv,
    TlvType,
    decode_location_sub_tlv,
    split_tlvs,
    to_tlv,
)
from otwamp.wire.timestamp import ns_to_ntp

NOW = 1_800_000_000 * 10**9
PEER = ("192.0.2.7", 40000)
LOCAL = ("192.0.2.1", 862)
KEY = StampHmac(b"s" * 32)


def received(
    data: bytes, *, at: int = NOW, source: tuple[str, int] = PEER, tos: int = 0
) -> Received:
    return Received(data, source, LOCAL, at, ttl=61, tos=tos)


def reflect(engine: StampReflector, data: bytes, **kwargs: object) -> bytes:
    reflection = engine.reflect(received(data, **kwargs))  # type: ignore[arg-type]
    assert reflection is not None
    ntp = ns_to_ntp(NOW + 1000)
    wire = bytes(engine.stamp(reflection, ntp, 0x0102))
    engine.sent(reflection, ntp, None)
    return wire


def tlvs(*typed: object) -> bytes:
    return b"".join(to_tlv(t, FLAG_U).encode() for t in typed)  # type: ignore[arg-type]


def test_stateless_copies_sequence_number() -> None:
    engine = StampReflector(ReflectorMode.STATELESS)
    for seq in (5, 9, 9):
        reply = ReflectorPacket.decode(reflect(engine, SenderPacket(seq, 7, 0x0101, 3).encode()))
        assert reply.seq == reply.sender_seq == seq
    assert engine.session_count == 0


def test_stateful_numbers_each_session() -> None:
    """Per 4-tuple + SSID (RFC 8972 §3), from 0, one per reflected packet (RFC 8762 §4)."""
    engine = StampReflector(ReflectorMode.STATEFUL)
    seqs = []
    for ssid, port in ((1, 40000), (1, 40000), (2, 40000), (1, 40001), (1, 40000)):
        data = SenderPacket(100, 7, 0x0101, ssid).encode()
        reply = ReflectorPacket.decode(reflect(engine, data, source=("192.0.2.7", port)))
        assert reply.ssid == ssid and reply.sender_seq == 100
        seqs.append(reply.seq)
    assert seqs == [0, 1, 0, 0, 2]
    assert engine.session_count == 3


def test_reply_fields() -> None:
    engine = StampReflector()
    data = SenderPacket(4, 0x1234, 0x8105, 77).encode()
    reply = ReflectorPacket.decode(reflect(engine, data))
    assert reply.receive_timestamp == ns_to_ntp(NOW)
    assert reply.timestamp == ns_to_ntp(NOW + 1000)
    assert reply.error == 0x0102
    assert (reply.sender_timestamp, reply.sender_error, reply.sender_ttl) == (0x1234, 0x8105, 61)


def test_twamp_light_sender() -> None:
    """RFC 8762 §4.6: a 14-octet packet gets the 44-octet base packet; a larger one, its size."""
    engine = StampReflector()
    light = struct.pack("!IQH", 12, 0xAABB, 0x0101)
    wire = reflect(engine, light)
    assert len(wire) == BASE_SIZE
    # What an RFC 5357 §4.2.1 Session-Sender reads: its seq, timestamp, error, TTL.
    fields = struct.unpack_from("!IQH2xQIQH2xB", wire)
    assert fields[4:] == (12, 0xAABB, 0x0101, 61)
    padded = light + bytes(range(86))  # 100 octets with padding
    wire = reflect(engine, padded)
    assert len(wire) == len(padded)


def test_symmetric_size_with_tlvs() -> None:
    engine = StampReflector()
    data = SenderPacket(1, 2, 0x0101, 5, tlvs(ExtraPadding(b"\x55" * 33))).encode()
    wire = reflect(engine, data)
    assert len(wire) == len(data)
    ((_, tlv),) = split_tlvs(wire[BASE_SIZE:]).tlvs
    assert tlv == Tlv(0, TlvType.EXTRA_PADDING, b"\x55" * 33)  # U cleared: understood


def test_unknown_and_malformed_flags() -> None:
    """§4: unknown copied with U; the first malformed flagged M, the rest copied unchanged."""
    engine = StampReflector()
    body = (
        Tlv(FLAG_U, 250, b"abcd").encode()
        + Tlv(FLAG_U, TlvType.CLASS_OF_SERVICE, bytes(3)).encode()  # Length 3: malformed
        + Tlv(FLAG_U, TlvType.DIRECT_MEASUREMENT, bytes(12)).encode()
    )
    wire = reflect(engine, SenderPacket(1, 2, 0x0101, 5, body).encode())
    out = split_tlvs(wire[BASE_SIZE:]).tlvs
    assert out[0][1] == Tlv(FLAG_U, 250, b"abcd")
    assert out[1][1].flags & FLAG_M
    assert out[2][1] == Tlv(FLAG_U, TlvType.DIRECT_MEASUREMENT, bytes(12))  # not processed
    assert engine.counters.tlvs.unrecognized == 1 and engine.counters.tlvs.malformed == 1


def test_truncated_tlv_is_malformed() -> None:
    engine = StampReflector()
    body = Tlv(FLAG_U, TlvType.EXTRA_PADDING, bytes(8)).encode()[:-3]
    wire = reflect(engine, SenderPacket(1, 2, 0x0101, 5, body).encode())
    assert wire[BASE_SIZE] == FLAG_U | FLAG_M and wire[BASE_SIZE + 1 :] == body[1:]


def test_tlv_answers() -> None:
    engine = StampReflector(ReflectorMode.STATEFUL, synchronized=True)
    subs = b"".join(
        Tlv(0, kind, bytes(size)).encode()
        for kind, size in (
            (SubTlvType.SOURCE_MAC, 8),
            (SubTlvType.DESTINATION_IP, 16),
            (SubTlvType.SOURCE_IP, 16),
        )
    )
    body = tlvs(
        Location(0, 0, subs),
        TimestampInformation(),
        ClassOfService(46),
        DirectMeasurement(1),
        FollowUpTelemetry(),
    )
    data = SenderPacket(0, 2, 0x0101, 5, body).encode()
    first = engine.reflect(received(data, tos=(10 << 2) | 1))
    assert first is not None and first.dscp == 46
    engine.sent(first, ns_to_ntp(NOW + 50), send_id=0)
    engine.transmitted(0, NOW + 80)  # the kernel's transmit time beats the packet's own T3
    second = reflect(engine, SenderPacket(1, 2, 0x0101, 5, body).encode())
    out = {tlv.type: tlv for _, tlv in split_tlvs(second[BASE_SIZE:]).tlvs}
    assert all(tlv.flags == 0 for tlv in out.values())
    location = Location.decode_value(out[TlvType.LOCATION].value)
    assert (location.destination_port, location.source_port) == (862, 40000)
    answers = [decode_location_sub_tlv(sub) for _, sub in split_tlvs(location.sub_tlvs).tlvs]
    assert answers == [bytes(8), ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address(PEER[0])]
    assert TimestampInformation.decode_value(out[TlvType.TIMESTAMP_INFORMATION].value) == (
        TimestampInformation(1, 2, 1, 2)
    )
    assert ClassOfService.decode_value(out[TlvType.CLASS_OF_SERVICE].value) == ClassOfService(
        46, 0, 0, 0
    )
    assert DirectMeasurement.decode_value(out[TlvType.DIRECT_MEASUREMENT].value) == (
        DirectMeasurement(1, 2, 2)
    )
    follow = FollowUpTelemetry.decode_value(out[TlvType.FOLLOW_UP_TELEMETRY].value)
    assert follow == FollowUpTelemetry(0, ns_to_ntp(NOW + 80), 2)


def test_cos_reports_received_dscp_and_ecn() -> None:
    engine = StampReflector()
    wire = reflect(
        engine, SenderPacket(0, 2, 0x0101, 5, tlvs(ClassOfService(8))).encode(), tos=(34 << 2) | 2
    )
    ((_, tlv),) = split_tlvs(wire[BASE_SIZE:]).tlvs
    assert ClassOfService.decode_value(tlv.value) == ClassOfService(8, 34, 2, 0)


def test_stateless_follow_up_is_zero() -> None:
    engine = StampReflector(ReflectorMode.STATELESS)
    data = SenderPacket(0, 2, 0x0101, 5, tlvs(FollowUpTelemetry())).encode()
    reflect(engine, data)
    wire = reflect(engine, data)
    ((_, tlv),) = split_tlvs(wire[BASE_SIZE:]).tlvs
    assert FollowUpTelemetry.decode_value(tlv.value) == FollowUpTelemetry()


def _keys(peer: ipaddress.IPv4Address | ipaddress.IPv6Address, ssid: int) -> StampHmac | None:
    return KEY if ssid == 5 else None


def _hmac_tlv(seq: int, body: bytes) -> bytes:
    return to_tlv(HmacTlv(KEY.digest(struct.pack("!I", seq), body)), FLAG_U).encode()


def test_authenticated_session() -> None:
    engine = StampReflector(keys=_keys)
    body = tlvs(DirectMeasurement(1))
    data = SenderPacket(0, 2, 0x0101, 5, body + _hmac_tlv(0, body)).encode(KEY)
    wire = reflect(engine, data)
    reply = ReflectorPacket.decode(wire, KEY)  # its HMAC checks
    (_, direct), (offset, mac) = split_tlvs(reply.tlvs).tlvs
    assert direct.flags == 0 and mac.flags == 0
    assert mac.value == KEY.digest(wire[:4], reply.tlvs[:offset])  # §4.8, over the reply


def test_authenticated_tlv_hmac_failure_sets_i() -> None:
    engine = StampReflector(keys=_keys)
    body = tlvs(DirectMeasurement(1))
    data = SenderPacket(0, 2, 0x0101, 5, body + _hmac_tlv(99, body)).encode(KEY)
    reply = ReflectorPacket.decode(reflect(engine, data), KEY)
    assert all(tlv.flags & FLAG_I for _, tlv in split_tlvs(reply.tlvs).tlvs)
    missing = SenderPacket(0, 2, 0x0101, 5, body).encode(KEY)  # no HMAC TLV at all
    reply = ReflectorPacket.decode(reflect(engine, missing), KEY)
    assert all(tlv.flags & FLAG_I for _, tlv in split_tlvs(reply.tlvs).tlvs)
    assert engine.counters.tlvs.integrity == 3  # TLVs flagged: 2, then 1


def test_authenticated_packet_with_bad_hmac_is_dropped() -> None:
    engine = StampReflector(keys=_keys)
    data = bytearray(SenderPacket(0, 2, 0x0101, 5).encode(KEY))
    data[100] ^= 1
    assert engine.reflect(received(bytes(data))) is None
    assert engine.counters.auth_failures == 1
    assert engine.reflect(received(SenderPacket(0, 2, 0x0101, 5).encode(StampHmac(b"x")))) is None


def test_session_table_is_bounded_and_expires() -> None:
    engine = StampReflector(max_sessions=3, idle_ns=10**9)
    for port in range(5):
        reflect(engine, SenderPacket(0, 2, 0x0101, 1).encode(), source=("192.0.2.9", port))
    assert engine.session_count == 3 and engine.counters.evicted == 2
    reflect(engine, SenderPacket(0, 2, 0x0101, 1).encode(), at=NOW + 2 * 10**9)
    assert engine.session_count == 1  # the idle ones forgotten


@settings(max_examples=300)
@given(st.binary(max_size=300), st.sampled_from(list(ReflectorMode)), st.booleans())
def test_garbage_never_raises(data: bytes, mode: ReflectorMode, keyed: bool) -> None:
    engine = StampReflector(mode, _keys if keyed else None)
    reflection = engine.reflect(received(data))
    if reflection is not None:
        wire = engine.stamp(reflection, 1, 0x0101)
        assert len(wire) == max(BASE_SIZE if reflection.key is None else 112, len(data))
    assert engine.counters.received == 1


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_garbage_tlvs_never_raise(body: bytes) -> None:
    engine = StampReflector(ReflectorMode.STATEFUL, _keys)
    for data in (
        SenderPacket(0, 2, 0x0101, 5, body).encode(KEY),
        SenderPacket(0, 2, 0x0101, 4, body).encode(),
    ):
        wire = reflect(engine, data)
        assert len(wire) == len(data)
