"""RFC 8972 §4 TLVs: figures, round trips of every type, garbage never crashes."""

import contextlib
import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.stamp.tlv import (
    FLAG_I,
    FLAG_M,
    FLAG_U,
    TYPED,
    AccessReport,
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
    Typed,
    address_sub_tlv,
    decode_location_sub_tlv,
    decode_typed,
    split_tlvs,
    to_tlv,
)

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 2**32 - 1)
dscp = st.integers(0, 63)
two_bits = st.integers(0, 3)

TYPED_VALUES: st.SearchStrategy[Typed] = st.one_of(
    st.builds(ExtraPadding, st.binary(max_size=64)),
    st.builds(Location, u16, u16, st.binary(max_size=40)),
    st.builds(TimestampInformation, u8, u8, u8, u8, st.binary(max_size=16)),
    st.builds(ClassOfService, dscp, dscp, two_bits, two_bits),
    st.builds(DirectMeasurement, u32, u32, u32),
    st.builds(AccessReport, st.sampled_from([1, 2]), u8),
    st.builds(FollowUpTelemetry, u32, st.integers(0, 2**64 - 1), u8),
    st.builds(HmacTlv, st.binary(min_size=16, max_size=16)),
)


def test_flags_figure_6() -> None:
    """U, M, I are the three most significant bits (RFC 8972 Figure 6, Table 3)."""
    assert (FLAG_U, FLAG_M, FLAG_I) == (0x80, 0x40, 0x20)


def test_registry_table_2() -> None:
    assert [(t.name, t.value) for t in TlvType] == [
        ("EXTRA_PADDING", 1),
        ("LOCATION", 2),
        ("TIMESTAMP_INFORMATION", 3),
        ("CLASS_OF_SERVICE", 4),
        ("DIRECT_MEASUREMENT", 5),
        ("ACCESS_REPORT", 6),
        ("FOLLOW_UP_TELEMETRY", 7),
        ("HMAC", 8),
    ]


def test_cos_figure_12() -> None:
    """DSCP1 (6 bits), DSCP2 (6), ECN (2), RP (2), Reserved (16)."""
    wire = to_tlv(ClassOfService(46, 10, 1, 1), FLAG_U).encode()
    assert wire[:4] == bytes([0x80, 4, 0, 4])
    assert struct.unpack("!I", wire[4:])[0] == (46 << 26) | (10 << 20) | (1 << 18) | (1 << 16)


def test_fixed_figures() -> None:
    direct = to_tlv(DirectMeasurement(1, 2, 3)).encode()
    assert direct == bytes.fromhex("0005000c000000010000000200000003")
    assert to_tlv(AccessReport(2, 7)).encode() == bytes.fromhex("0006000420070000")
    follow = to_tlv(FollowUpTelemetry(9, 0x0102030405060708, 2)).encode()
    assert follow == bytes.fromhex("0007001000000009010203040506070802000000")
    assert to_tlv(TimestampInformation(1, 2, 5, 2)).encode() == bytes.fromhex("0003000401020502")
    assert to_tlv(Location(862, 5000)).encode() == bytes.fromhex("00020004035e1388")


@pytest.mark.parametrize(
    ("kind", "length"),
    [
        (TlvType.CLASS_OF_SERVICE, 3),
        (TlvType.DIRECT_MEASUREMENT, 11),
        (TlvType.ACCESS_REPORT, 5),
        (TlvType.FOLLOW_UP_TELEMETRY, 12),
        (TlvType.HMAC, 15),
        (TlvType.LOCATION, 3),
        (TlvType.TIMESTAMP_INFORMATION, 2),
    ],
)
def test_wrong_length_is_malformed(kind: TlvType, length: int) -> None:
    with pytest.raises(ProtocolError):
        decode_typed(Tlv(0, kind, bytes(length)))


def test_access_id_must_be_1_or_2() -> None:
    with pytest.raises(ProtocolError, match="Access ID"):
        decode_typed(Tlv(0, TlvType.ACCESS_REPORT, bytes([0x30, 0, 0, 0])))


def test_unknown_type_is_none() -> None:
    assert decode_typed(Tlv(0, 200, b"xyz")) is None


def test_location_sub_tlvs() -> None:
    """Sub-TLV lengths and the address answers (RFC 8972 §4.2.1, Figure 10)."""
    v4 = address_sub_tlv(True, ipaddress.IPv4Address("192.0.2.1"))
    assert v4.encode() == bytes.fromhex("00050010c0000201") + bytes(12)
    assert decode_location_sub_tlv(v4) == ipaddress.IPv4Address("192.0.2.1")
    v6 = address_sub_tlv(False, ipaddress.IPv6Address("2001:db8::1"))
    assert v6.type == SubTlvType.SOURCE_IPV6
    assert decode_location_sub_tlv(v6) == ipaddress.IPv6Address("2001:db8::1")
    assert decode_location_sub_tlv(Tlv(0, SubTlvType.SOURCE_MAC, bytes(8))) is None
    with pytest.raises(ProtocolError):
        decode_location_sub_tlv(Tlv(0, SubTlvType.DESTINATION_IP, bytes(8)))
    with pytest.raises(ProtocolError):
        decode_location_sub_tlv(Tlv(0, 77, bytes(8)))


@given(TYPED_VALUES, u8)
def test_typed_round_trip(typed: Typed, flags: int) -> None:
    wire = to_tlv(typed, flags).encode()
    split = split_tlvs(wire)
    assert split.malformed_at is None
    ((offset, tlv),) = split.tlvs
    assert offset == 0 and tlv.flags == flags
    assert decode_typed(tlv) == typed


@given(st.lists(st.builds(Tlv, u8, u8, st.binary(max_size=30)), max_size=6))
def test_split_round_trip(tlvs: list[Tlv]) -> None:
    wire = b"".join(tlv.encode() for tlv in tlvs)
    split = split_tlvs(wire)
    assert [tlv for _, tlv in split.tlvs] == tlvs and split.malformed_at is None


@given(st.binary(max_size=120))
def test_garbage_never_crashes(data: bytes) -> None:
    split = split_tlvs(data)
    if split.malformed_at is not None:
        assert split.malformed_at <= len(data)
    for _, tlv in split.tlvs:
        with contextlib.suppress(ProtocolError):
            decode_typed(tlv)
        with contextlib.suppress(ProtocolError):
            decode_location_sub_tlv(tlv)


@given(st.sampled_from(sorted(TYPED)), st.binary(max_size=40))
def test_every_type_on_garbage_values(kind: int, value: bytes) -> None:
    try:
        typed = decode_typed(Tlv(0, kind, value))
    except ProtocolError:
        return
    assert typed is not None and typed.encode_value() is not None
