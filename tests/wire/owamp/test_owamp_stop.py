"""OWAMP Stop-Sessions with session descriptions and Skip Ranges (RFC 4656 §3.8)."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.owamp_stop import (
    SessionDescription,
    SkipRange,
    StopSessions,
    decode_skip_ranges,
    ranges_in_order,
)
from tests.wire.owamp.vectors import HMAC, Message, all_named

SECTION = "RFC 4656 §3.8"
SID_A = bytes.fromhex("7f000001eeacd96efcd74927507a5984")
SID_B = bytes(range(16))


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def frame(body_and_more: bytes) -> int:
    """Frame a body the way the channel does: whole blocks, asking until the answer is stable."""
    have = 0
    while True:
        need = StopSessions.body_size(body_and_more[:have])
        assert need % 16 == 0
        if need == have:
            return have
        assert need > have
        have = need


# --- the perfSONAR transcripts ---------------------------------------------------------------


@pytest.mark.parametrize("m", all_named("Stop-Sessions"), ids=lambda m: m.id)
def test_stop_sessions_from_vectors(m: Message):
    f = m.fields
    assert frame(m.plaintext) == len(m.plaintext) - HMAC
    assert StopSessions.number_of_sessions(m.body[:16]) == f["number_of_sessions"]
    stop = StopSessions.decode(m.body)
    assert f["command"] == 3
    assert stop.accept == f["accept"]
    assert len(stop.sessions) == f["number_of_sessions"]
    for session, recorded in zip(stop.sessions, f["session_descriptions"], strict=True):
        assert session.sid.hex() == recorded["sid"]
        assert session.next_seqno == recorded["next_seqno"]
        assert len(session.skip_ranges) == recorded["number_of_skip_ranges"]
        assert [(r.first, r.last) for r in session.skip_ranges] == [
            (r["first"], r["last"]) for r in recorded["skip_ranges"]
        ]
    assert stop.encode() == m.body
    rebuilt = StopSessions(
        f["accept"],
        tuple(
            SessionDescription(bytes.fromhex(d["sid"]), d["next_seqno"])
            for d in f["session_descriptions"]
        ),
    )
    assert rebuilt.encode() == m.body


# --- layouts built by hand from the RFC 4656 §3.8 figures ------------------------------------


def stop_by_hand() -> bytes:
    wire = bytearray()
    wire += bytes([3, 2]) + bytes(2)  # Stop-Sessions, Accept 2, MBZ
    wire += be(2, 4)  # Number of Sessions
    wire += bytes(8)  # MBZ
    # session 1: no skip ranges -> 24 octets padded to 32
    wire += SID_A + be(5, 4) + be(0, 4) + bytes(8)
    # session 2: three skip ranges -> 24 + 24 = 48 octets, a whole number of blocks
    wire += SID_B + be(100, 4) + be(3, 4)
    wire += be(0, 4) + be(9, 4) + be(20, 4) + be(20, 4) + be(50, 4) + be(60, 4)
    return bytes(wire)


def stop_value() -> StopSessions:
    return StopSessions(
        2,
        (
            SessionDescription(SID_A, 5),
            SessionDescription(SID_B, 100, (SkipRange(0, 9), SkipRange(20, 20), SkipRange(50, 60))),
        ),
    )


def test_stop_sessions_layout():
    wire = stop_by_hand()
    assert len(wire) == 16 + 32 + 48
    assert stop_value().encode() == wire
    assert StopSessions.decode(wire) == stop_value()
    assert frame(wire + b"\xff" * 16) == len(wire)


@pytest.mark.parametrize(("count", "size"), [(0, 32), (1, 32), (2, 48), (3, 48), (4, 64)])
def test_session_description_padding(count: int, size: int):
    ranges = tuple(SkipRange(10 * i, 10 * i + 1) for i in range(count))
    description = SessionDescription(SID_A, 1000, ranges)
    assert description.size == size == SessionDescription.size_for(count)
    wire = description.encode()
    assert len(wire) == size
    assert wire[24 + 8 * count :] == bytes(size - 24 - 8 * count)
    assert SessionDescription.decode(wire) == description


def test_stop_sessions_without_sessions():
    assert StopSessions(0).encode() == bytes([3]) + bytes(15)
    assert StopSessions.decode(bytes([3]) + bytes(15)) == StopSessions(0)
    assert StopSessions.body_size(bytes([3]) + bytes(15)) == 16


def test_stop_sessions_ignores_mbz_and_padding():
    noisy = bytearray(stop_by_hand())
    noisy[2:4] = b"\xff\xff"
    noisy[8:16] = b"\xaa" * 8
    noisy[40:48] = b"\x55" * 8  # padding of the first description
    assert StopSessions.decode(bytes(noisy)) == stop_value()


@pytest.mark.parametrize("command", [0, 1, 2, 4, 255])
def test_stop_sessions_wrong_command(command: int):
    wire = bytes([command]) + stop_by_hand()[1:]
    with pytest.raises(ProtocolError) as info:
        StopSessions.decode(wire)
    assert info.value.field == "Stop-Sessions"
    assert SECTION in str(info.value)
    with pytest.raises(ProtocolError):
        StopSessions.body_size(wire)


@pytest.mark.parametrize("cut", [0, 15, 16, 47, 48, 95, 97, 112])
def test_stop_sessions_wrong_length(cut: int):
    wire = (stop_by_hand() + bytes(16))[:cut]
    with pytest.raises(ProtocolError) as info:
        StopSessions.decode(wire)
    assert SECTION in str(info.value)


def test_stop_sessions_count_must_match_the_descriptions():
    wire = bytearray(stop_by_hand())
    wire[4:8] = be(3, 4)  # one more session than there is
    with pytest.raises(ProtocolError):
        StopSessions.decode(bytes(wire))
    wire[4:8] = be(1, 4)  # one fewer
    with pytest.raises(ProtocolError):
        StopSessions.decode(bytes(wire))


def test_stop_sessions_skip_count_must_match():
    wire = bytearray(stop_by_hand())
    wire[48 + 20 : 48 + 24] = be(4, 4)  # four ranges announced, three sent
    with pytest.raises(ProtocolError):
        StopSessions.decode(bytes(wire))
    wire[48 + 20 : 48 + 24] = be(0xFFFFFFFF, 4)
    assert StopSessions.body_size(bytes(wire)) == 48 + SessionDescription.size_for(0xFFFFFFFF)
    with pytest.raises(ProtocolError):
        StopSessions.decode(bytes(wire))


def test_stop_sessions_huge_session_count_needs_only_what_is_there():
    header = bytes([3, 0, 0, 0]) + be(0xFFFFFFFF, 4) + bytes(8)
    assert StopSessions.number_of_sessions(header) == 0xFFFFFFFF
    assert StopSessions.body_size(header) == 48
    with pytest.raises(ProtocolError):
        StopSessions.decode(header + bytes(64))


@pytest.mark.parametrize(
    "ranges",
    [
        [(9, 0)],  # reversed
        [(5, 9), (0, 2)],  # out of order
        [(0, 9), (9, 12)],  # overlapping
        [(0, 9), (0, 9)],  # duplicated
    ],
)
def test_skip_ranges_out_of_order_refused(ranges: list[tuple[int, int]]):
    raw = b"".join(be(a, 4) + be(b, 4) for a, b in ranges)
    with pytest.raises(ProtocolError) as info:
        decode_skip_ranges(raw, len(ranges), SECTION)
    assert info.value.field == "Skip Ranges"
    assert SECTION in str(info.value)
    description = SID_A + be(100, 4) + be(len(ranges), 4) + raw
    description += bytes(-len(description) % 16)
    with pytest.raises(ProtocolError):
        SessionDescription.decode(description)


def test_skip_range_encoders_refuse_bad_values():
    with pytest.raises(ValueError):
        SkipRange(2, 1)
    with pytest.raises(ValueError):
        SkipRange(0, 1 << 32)
    with pytest.raises(ValueError):
        SessionDescription(SID_A, 5, (SkipRange(3, 4), SkipRange(0, 1)))
    with pytest.raises(ValueError):
        SessionDescription(b"short", 5)
    assert ranges_in_order([SkipRange(0, 0), SkipRange(1, 1)])
    assert not ranges_in_order([SkipRange(0, 1), SkipRange(1, 2)])


# --- properties ------------------------------------------------------------------------------

u32 = st.integers(0, (1 << 32) - 1)


@st.composite
def skip_ranges(draw: st.DrawFn) -> tuple[SkipRange, ...]:
    points = sorted(set(draw(st.lists(st.integers(0, 10_000), max_size=10))))
    ranges = []
    for first, last in zip(points[::2], points[1::2], strict=False):
        ranges.append(SkipRange(first, last))
    return tuple(ranges)


descriptions = st.builds(
    SessionDescription, st.binary(min_size=16, max_size=16), u32, skip_ranges()
)
stops = st.builds(StopSessions, st.integers(0, 255), st.lists(descriptions, max_size=4).map(tuple))


@given(stops)
def test_stop_sessions_round_trip(stop: StopSessions):
    wire = stop.encode()
    assert len(wire) % 16 == 0
    assert frame(wire + bytes(16)) == len(wire)
    assert StopSessions.decode(wire) == stop


@given(st.binary(max_size=300))
def test_stop_sessions_random_bytes_raise_only_protocol_error(data: bytes):
    with contextlib.suppress(ProtocolError):
        StopSessions.body_size(data)
    with contextlib.suppress(ProtocolError):
        StopSessions.decode(data)
    with contextlib.suppress(ProtocolError):
        SessionDescription.decode(data)
    with contextlib.suppress(ProtocolError):
        decode_skip_ranges(data, len(data) // 8, SECTION)


@given(st.integers(0, 4), st.lists(st.binary(min_size=32, max_size=32), max_size=4))
def test_stop_sessions_random_descriptions(count: int, blocks: list[bytes]):
    wire = bytes([3, 0, 0, 0]) + be(count, 4) + bytes(8) + b"".join(blocks)
    try:
        stop = StopSessions.decode(wire)
    except ProtocolError:
        return
    assert StopSessions.decode(stop.encode()) == stop
