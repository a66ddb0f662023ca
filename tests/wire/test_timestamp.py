"""NTP timestamps and the Error Estimate (RFC 4656 §4.1.2, RFC 5905 §6)."""

import contextlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.timestamp import (
    NTP_UNIX_OFFSET,
    ErrorEstimate,
    decode_timestamp,
    duration_to_ntp,
    encode_timestamp,
    ns_to_ntp,
    ntp_add,
    ntp_diff,
    ntp_to_duration,
    ntp_to_ns,
)

SECTION = "RFC 4656 §4.1.2"
EPOCH = 2_208_988_800 << 32  # 1970-01-01 in NTP format
NS = 1_000_000_000
# Unix times whose NTP seconds fit era 0 (1900-01-01 .. 2036-02-07).
# The span ntp_to_ns reads back: 1968-01-20 (era 0, second 2**31) to 2104 (era 1, RFC 5905 §6).
ERA0_NS = st.integers((2**31 - NTP_UNIX_OFFSET) * NS, (2**32 + 2**31 - NTP_UNIX_OFFSET) * NS - 1)


def test_offset_is_seventy_years():
    # 70 years of 365 days plus 17 leap days (RFC 5905 §6, Figure 4).
    assert NTP_UNIX_OFFSET == (70 * 365 + 17) * 86400 == 2_208_988_800


@pytest.mark.parametrize(
    ("ns", "ntp"),
    [
        (0, EPOCH),
        (1, EPOCH | 4),  # 2**32 / 1e9 = 4.29...: the fraction is floored
        (500_000_000, EPOCH | 0x8000_0000),
        (250_000_000, EPOCH | 0x4000_0000),
        (NS, EPOCH + (1 << 32)),
        (-1, ((NTP_UNIX_OFFSET - 1) << 32) | 4_294_967_291),
        (-NTP_UNIX_OFFSET * NS, 0),
        # Server-Start Start-Time of the perfSONAR runs: 4004305131 s, fraction 590334664.
        ((4_004_305_131 - NTP_UNIX_OFFSET) * NS + 137_447_999, 0xEEACD8EB232FCAC4),
    ],
)
def test_ns_to_ntp_known_values(ns, ntp):
    assert ns_to_ntp(ns) == ntp


@pytest.mark.parametrize(
    ("ntp", "ns"),
    [
        (EPOCH, 0),
        (EPOCH | 1, 0),  # 0.23 ns rounds down
        (EPOCH | 2, 0),  # 0.47 ns rounds down
        (EPOCH | 3, 1),  # 0.70 ns rounds up
        (EPOCH | 0x8000_0000, 500_000_000),
        (EPOCH | 0xFFFF_FFFF, NS),  # 999999999.77 ns rounds up into the next second
        (0, (2**32 - NTP_UNIX_OFFSET) * NS),  # second 0 below the pivot is era 1: 2036-02-07
        (2**31 << 32, (2**31 - NTP_UNIX_OFFSET) * NS),  # the pivot itself is era 0: 1968-01-20
        (0xEEACD8EB232FCAC8, (4_004_305_131 - NTP_UNIX_OFFSET) * NS + 137_448_000),
    ],
)
def test_ntp_to_ns_known_values(ntp, ns):
    assert ntp_to_ns(ntp) == ns


@given(ERA0_NS)
def test_ns_round_trip_is_exact(ns):
    # The floored fraction is less than 0.233 ns below the true value, so rounding recovers it.
    back = ntp_to_ns(ns_to_ntp(ns))
    assert abs(back - ns) <= 1
    assert back == ns


@given(st.integers(0, 2**64 - 2**32 - 1))
def test_ntp_round_trip_within_one_nanosecond(ntp):
    again = ns_to_ntp(ntp_to_ns(ntp))
    assert abs(again - ntp) <= 5  # 1 ns is 4.29 fraction units
    assert abs(ntp_to_ns(again) - ntp_to_ns(ntp)) <= 1


def test_ns_to_ntp_wraps_into_era_1():
    # RFC 5905 §6: the 32-bit seconds field wraps; 2036-02-07T06:28:16Z is era 1, second 0.
    first_of_era_1 = (2**32 - NTP_UNIX_OFFSET) * NS
    assert ns_to_ntp(first_of_era_1) == 0
    assert encode_timestamp(ns_to_ntp(first_of_era_1 + NS)) == bytes.fromhex("0000000100000000")


ERA_END = 2**32 - NTP_UNIX_OFFSET  # Unix second of 2036-02-07 06:28:16 UTC, NTP era 1 second 0
U64 = st.integers(0, 2**64 - 1)
INTERVAL = st.integers(-(2**63), 2**63 - 1)


def test_ntp_diff_across_the_era_wrap():
    before = ns_to_ntp((ERA_END - 1) * NS)  # 2036-02-07 06:28:15, seconds 0xFFFFFFFF
    after = ns_to_ntp((ERA_END + 1) * NS)  # 06:28:17, era 1 seconds 1
    assert (before >> 32, after >> 32) == (0xFFFFFFFF, 1)
    assert ntp_diff(after, before) == 2 << 32
    assert ntp_diff(before, after) == -(2 << 32)
    assert after - before < 0  # what a plain subtraction would have said


def test_ntp_add_wraps_like_the_clock():
    before = ns_to_ntp((ERA_END - 1) * NS)
    assert ntp_add(before, 2 << 32) == ns_to_ntp((ERA_END + 1) * NS)
    assert ntp_add(0, -1) == 2**64 - 1
    assert ntp_add(5, 3) == 8


@given(U64, INTERVAL)
def test_ntp_diff_inverts_ntp_add(ntp, delta):
    later = ntp_add(ntp, delta)
    assert 0 <= later < 2**64
    assert ntp_diff(later, ntp) == delta


def test_encode_timestamp_layout():
    # Seconds in octets 0-3, fraction in 4-7, network order.
    assert encode_timestamp(0xEEACD948AADF2ECF) == bytes.fromhex("eeacd948aadf2ecf")
    assert encode_timestamp(EPOCH | 0x8000_0000) == bytes.fromhex("83aa7e8080000000")


def test_decode_timestamp():
    assert decode_timestamp(bytes.fromhex("eeacd948aadf2ecf")) == 0xEEACD948AADF2ECF


@pytest.mark.parametrize("size", [0, 7, 9, 16])
def test_decode_timestamp_rejects_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        decode_timestamp(bytes(size))
    assert info.value.field == "Timestamp"
    assert info.value.section == SECTION


@given(st.integers(0, 2**64 - 1))
def test_timestamp_round_trip(ntp):
    wire = encode_timestamp(ntp)
    assert len(wire) == 8
    assert decode_timestamp(wire) == ntp


def test_durations():
    assert duration_to_ntp(2.0) == 2 << 32
    assert duration_to_ntp(0.5) == 1 << 31
    assert duration_to_ntp(0) == 0
    # The perfSONAR Timeout 00000002000a06ea.
    assert ntp_to_duration(0x00000002000A06EA) == pytest.approx(2.000153, abs=1e-6)
    assert ntp_to_duration(3 << 32) == 3.0


@pytest.mark.parametrize("bad", [-0.001, math.inf, math.nan])
def test_duration_rejects_negative_and_non_finite(bad):
    with pytest.raises(ValueError):
        duration_to_ntp(bad)


# Error Estimate: S(1) Z(1) Scale(6) Multiplier(8) (RFC 4656 §4.1.2).


@pytest.mark.parametrize(
    ("estimate", "value"),
    [
        (ErrorEstimate(sync=False, scale=0, multiplier=1), 0x0001),
        (ErrorEstimate(sync=True, scale=0, multiplier=1), 0x8001),
        (ErrorEstimate(sync=False, scale=1, multiplier=1), 0x0101),
        (ErrorEstimate(sync=True, scale=63, multiplier=255), 0xBFFF),
        (ErrorEstimate(sync=True, scale=63, multiplier=255, z=True), 0xFFFF),
        (ErrorEstimate(sync=False, scale=0, multiplier=1, z=True), 0x4001),
        (ErrorEstimate(sync=True, scale=15, multiplier=132), 0x8F84),
    ],
)
def test_error_estimate_encoding(estimate, value):
    assert estimate.to_int() == value
    assert estimate.encode() == value.to_bytes(2, "big")
    assert ErrorEstimate.from_int(value) == estimate
    assert ErrorEstimate.decode(value.to_bytes(2, "big")) == estimate


def test_error_estimate_seconds():
    assert ErrorEstimate(False, 0, 1).seconds == 2.0**-32
    assert ErrorEstimate(False, 32, 1).seconds == 1.0
    assert ErrorEstimate(True, 25, 128).seconds == 1.0
    assert ErrorEstimate(True, 15, 132).seconds == 132 * 2.0**-17


@pytest.mark.parametrize("value", [0x0000, 0x8000, 0xFF00, 0x4100])
def test_error_estimate_multiplier_zero_is_rejected(value):
    with pytest.raises(ProtocolError) as info:
        ErrorEstimate.from_int(value)
    assert info.value.field == "Error Estimate"
    assert info.value.section == SECTION


@pytest.mark.parametrize("size", [0, 1, 3])
def test_error_estimate_decode_rejects_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        ErrorEstimate.decode(b"\x01" * size)
    assert info.value.field == "Error Estimate"


@pytest.mark.parametrize(("scale", "multiplier"), [(64, 1), (-1, 1), (0, 0), (0, 256)])
def test_error_estimate_constructor_checks_ranges(scale, multiplier):
    with pytest.raises(ValueError):
        ErrorEstimate(True, scale, multiplier)


@pytest.mark.parametrize(
    ("error", "scale", "multiplier"),
    [
        (1e-3, 15, 132),  # 1e-3 * 2**17 = 131.07; scale 14 would need 263
        (1.0, 25, 128),
        (2.0**-32, 0, 1),
        (255 * 2.0**-32, 0, 255),
        (256 * 2.0**-32, 1, 128),
        (257 * 2.0**-32, 1, 129),  # 128.5 rounds up: 128 would be below the error
        (1e-12, 0, 1),  # below the resolution: the smallest estimate
    ],
)
def test_error_estimate_from_seconds(error, scale, multiplier):
    estimate = ErrorEstimate.from_seconds(error, sync=True)
    assert estimate == ErrorEstimate(True, scale, multiplier)
    assert estimate.seconds >= error


@pytest.mark.parametrize("error", [0.0, -1.0])
def test_error_estimate_from_seconds_without_error(error):
    assert ErrorEstimate.from_seconds(error, sync=False) == ErrorEstimate(False, 0, 1)


def test_error_estimate_from_seconds_unknown_is_the_largest():
    assert ErrorEstimate.from_seconds(math.nan, sync=False) == ErrorEstimate(False, 63, 255)


def test_error_estimate_from_seconds_caps_at_the_largest():
    assert ErrorEstimate.from_seconds(1e30, sync=True) == ErrorEstimate(True, 63, 255)


def _smallest_estimate_not_below(error: float) -> float:
    best = math.inf
    for scale in range(64):
        multiplier = max(1, math.ceil(error * 2.0 ** (32 - scale)))
        if multiplier <= 255:
            best = min(best, multiplier * 2.0 ** (scale - 32))
    return best


@given(st.floats(min_value=2.0**-40, max_value=255 * 2.0**31), st.booleans())
def test_error_estimate_from_seconds_is_smallest_not_below(error, sync):
    estimate = ErrorEstimate.from_seconds(error, sync)
    assert estimate.sync is sync
    assert estimate.seconds >= error
    assert estimate.seconds == _smallest_estimate_not_below(error)


@given(st.integers(0, 0xFFFF).filter(lambda v: v & 0xFF))
def test_error_estimate_round_trip(value):
    assert ErrorEstimate.from_int(value).to_int() == value


@given(st.binary())
def test_error_estimate_decode_raises_only_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        ErrorEstimate.decode(data)


@given(st.binary(min_size=2, max_size=2))
def test_error_estimate_decode_exact_length(data):
    if data[1] == 0:
        with pytest.raises(ProtocolError):
            ErrorEstimate.decode(data)
    else:
        assert ErrorEstimate.decode(data).encode() == data


@given(st.binary())
def test_decode_timestamp_raises_only_protocol_error(data):
    try:
        assert decode_timestamp(data) == int.from_bytes(data, "big")
    except ProtocolError:
        assert len(data) != 8


def test_error_estimate_from_seconds_infinite_is_the_largest():
    assert ErrorEstimate.from_seconds(math.inf, sync=False) == ErrorEstimate(False, 63, 255)
