"""Fetch-Session, Fetch-Ack and the fetched session data (RFC 4656 §3.9)."""

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.owamp_fetch import (
    FetchAck,
    FetchedSession,
    FetchSession,
    PacketRecord,
    PacketRecords,
    decode_record_part,
    decode_skip_range_part,
    encode_record_part,
    encode_skip_range_part,
    records_size,
    skip_ranges_size,
)
from otwamp.wire.owamp_stop import SkipRange
from otwamp.wire.timestamp import ErrorEstimate
from tests.vectors import ts
from tests.wire.owamp.vectors import (
    HMAC,
    OWAMP,
    RECORD_PART,
    REPRODUCTION,
    SKIP_PART,
    Message,
    all_named,
    load,
    messages,
)

SECTION = "RFC 4656 §3.9"
SID = bytes.fromhex("7f000001eeacd96efcd74927507a5984")


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def fetch_data(vector: str) -> tuple[FetchAck, Message, Message, Message]:
    by_name = {m.name: m for m in messages(vector)}
    ack = FetchAck.decode(by_name["Fetch-Ack"].body)
    return ack, by_name[REPRODUCTION], by_name[SKIP_PART], by_name[RECORD_PART]


# --- the perfSONAR transcripts ---------------------------------------------------------------


@pytest.mark.parametrize("m", all_named("Fetch-Session"), ids=lambda m: m.id)
def test_fetch_session_from_vectors(m: Message):
    f = m.fields
    fetch = FetchSession.decode(m.body)
    assert f["command"] == 4
    assert (fetch.begin_seq, fetch.end_seq, fetch.sid.hex()) == (
        f["begin_seq"],
        f["end_seq"],
        f["sid"],
    )
    assert fetch.complete
    assert fetch.encode() == m.body
    assert FetchSession(bytes.fromhex(f["sid"])).encode() == m.body


@pytest.mark.parametrize("m", all_named("Fetch-Ack"), ids=lambda m: m.id)
def test_fetch_ack_from_vectors(m: Message):
    f = m.fields
    ack = FetchAck.decode(m.body)
    assert ack.accept == f["accept"]
    assert ack.finished == bool(f["finished"])
    assert ack.next_seqno == f["next_seqno"]
    assert ack.num_skip_ranges == f["number_of_skip_ranges"]
    assert ack.num_records == f["number_of_records"]
    assert ack.encode() == m.body
    rebuilt = FetchAck(
        f["accept"],
        bool(f["finished"]),
        f["next_seqno"],
        f["number_of_skip_ranges"],
        f["number_of_records"],
    )
    assert rebuilt.encode() == m.body


@pytest.mark.parametrize("vector", OWAMP)
def test_fetched_session_from_vectors(vector: str):
    ack, reproduction, skips, records = fetch_data(vector)
    # Each piece ends in its HMAC; the reproduction has two (after octet 95 and after the slots).
    fixed = reproduction.plaintext[:96]
    slots = reproduction.plaintext[96 + HMAC : -HMAC]
    assert len(skips.plaintext) == skip_ranges_size(ack.num_skip_ranges) + HMAC
    assert len(records.plaintext) == records_size(ack.num_records) + HMAC
    session = FetchedSession.decode_parts(fixed, slots, skips.body, records.body, ack)
    assert session.skip_ranges == ()
    assert skips.fields["skip_ranges_hex"] == ""
    assert len(session.records) == ack.num_records == 5
    for record, recorded in zip(session.records, records.fields["records"], strict=True):
        assert record.seq == recorded["seq"]
        assert record.send_error == int(recorded["send_error_estimate"], 16)
        assert record.receive_error == int(recorded["receive_error_estimate"], 16)
        assert record.send_timestamp == ts(recorded["send_timestamp"])
        assert record.receive_timestamp == ts(recorded["receive_timestamp"])
        assert record.ttl == recorded["ttl"]
        assert not record.lost
    padding = records.body[25 * ack.num_records :]
    assert padding.hex() == records.fields["block_padding_hex"]
    # Re-encoded: the recorded octets of all four parts.
    assert session.encode_parts() == (fixed, slots, skips.body, records.body)


@pytest.mark.parametrize("vector", OWAMP)
def test_fetched_records_match_owping_raw_output(vector: str):
    ack, reproduction, skips, records = fetch_data(vector)
    session = FetchedSession.decode_parts(
        reproduction.plaintext[:96],
        reproduction.plaintext[96 + HMAC : -HMAC],
        skips.body,
        records.body,
        ack,
    )
    sid = session.request.sid.hex()
    lines = load(vector)["client_output"]["raw_R_lines"]
    # owping -R prints the "to" session (the one fetched) first, then the "from" session.
    assert any(s["sid"] == sid and s["conf_receiver"] for s in load(vector)["test_sessions"])
    for record, line in zip(session.records, lines[: len(session.records)], strict=True):
        seq, send_ts, send_sync, send_err, recv_ts, recv_sync, recv_err, ttl = line.split()
        send_ee = ErrorEstimate.from_int(record.send_error)
        recv_ee = ErrorEstimate.from_int(record.receive_error)
        assert record.seq == int(seq)
        assert record.send_timestamp == int(send_ts)
        assert int(send_sync) == send_ee.sync
        assert f"{send_ee.seconds:g}" == send_err
        assert record.receive_timestamp == int(recv_ts)
        assert int(recv_sync) == recv_ee.sync
        assert f"{recv_ee.seconds:g}" == recv_err
        assert record.ttl == int(ttl)


# --- layouts built by hand from the RFC 4656 §3.9 figures ------------------------------------


def test_fetch_session_layout():
    wire = bytes([4]) + bytes(7) + be(10, 4) + be(20, 4) + SID
    fetch = FetchSession(SID, 10, 20)
    assert fetch.encode() == wire
    assert FetchSession.decode(wire) == fetch
    assert not fetch.complete
    noisy = bytes([4]) + b"\xff" * 7 + wire[8:]  # MBZ ignored
    assert FetchSession.decode(noisy) == fetch


@pytest.mark.parametrize("command", [0, 1, 3, 5, 255])
def test_fetch_session_wrong_command(command: int):
    with pytest.raises(ProtocolError) as info:
        FetchSession.decode(bytes([command]) + bytes(15) + SID)
    assert info.value.field == "Fetch-Session"
    assert SECTION in str(info.value)


def test_fetch_ack_layout():
    wire = bytes([0, 1]) + bytes(2) + be(100, 4) + be(2, 4) + be(98, 4)
    ack = FetchAck(0, True, 100, 2, 98)
    assert ack.encode() == wire
    assert FetchAck.decode(wire) == ack
    assert FetchAck.decode(bytes([0, 1]) + b"\xff\xff" + wire[4:]) == ack  # MBZ ignored
    assert FetchAck.decode(bytes([0, 7]) + wire[2:]) == ack  # any non-zero Finished is 1


def test_fetch_ack_refusal_ignores_the_rest():
    noisy = bytes([3, 1]) + b"\xff" * 14
    assert FetchAck.decode(noisy) == FetchAck(3)
    assert FetchAck(3).encode() == bytes([3]) + bytes(15)
    with pytest.raises(ValueError):
        FetchAck(3, num_records=1)


def test_fetch_ack_unfinished_session():
    unfinished = FetchAck(0, False, 0, 0, 7)
    assert FetchAck.decode(unfinished.encode()) == unfinished
    # Next Seqno MUST be zero while unfinished: ignored on receipt.
    assert FetchAck.decode(bytes(4) + be(5, 4) + be(0, 4) + be(7, 4)) == unfinished
    # A Skip Range count would frame data that cannot be there.
    with pytest.raises(ProtocolError) as info:
        FetchAck.decode(bytes(4) + be(0, 4) + be(1, 4) + be(7, 4))
    assert info.value.field == "Number of Skip Ranges"
    assert SECTION in str(info.value)
    with pytest.raises(ValueError):
        FetchAck(0, False, 5)


def test_packet_record_layout():
    wire = (
        be(7, 4)  # 00 Seq Number
        + be(0x8A11, 2)  # 04 Send Error Estimate
        + be(0x0001, 2)  # 06 Receive Error Estimate
        + be(0xEEACD96FF47FFDE7, 8)  # 08 Send Timestamp
        + be(0xEEACD96FF4855DA2, 8)  # 16 Receive Timestamp
        + bytes([64])  # 24 TTL
    )
    record = PacketRecord(7, 0x8A11, 0x0001, 0xEEACD96FF47FFDE7, 0xEEACD96FF4855DA2, 64)
    assert len(wire) == 25
    assert record.encode() == wire
    assert PacketRecord.decode(wire) == record


def test_lost_packet_record():
    # RFC 4656 §3.9: presumed send time, Multiplier 1 / Scale "64" / S 0,
    # receive time zero, TTL 255. Scale 64 does not fit 6 bits, so the send
    # Error Estimate is not the mark: only the zero Receive Timestamp is.
    for send_error in (0x4001, 0x3F01):
        record = PacketRecord(3, send_error, 0x0001, 0xEEACD96FF47FFDE7, 0, 255)
        assert record.lost
        assert PacketRecord.decode(record.encode()) == record
    record = PacketRecord(3, 0x3F01, 0x0001, 0xEEACD96FF47FFDE7, 1, 255)
    assert not record.lost


def test_record_and_skip_parts_are_padded():
    records = tuple(PacketRecord(i, 1, 1, i, i + 1, 255) for i in range(5))
    part = encode_record_part(records)
    assert len(part) == records_size(5) == 128
    assert part[125:] == bytes(3)
    assert decode_record_part(part[:125] + b"\xff" * 3, 5) == records  # padding ignored
    assert records_size(0) == 0
    assert skip_ranges_size(0) == 0
    assert skip_ranges_size(1) == 16
    assert skip_ranges_size(3) == 32
    ranges = (SkipRange(0, 1), SkipRange(5, 6), SkipRange(9, 9))
    skips = encode_skip_range_part(ranges)
    assert skips == be(0, 4) + be(1, 4) + be(5, 4) + be(6, 4) + be(9, 4) + be(9, 4) + bytes(8)
    assert decode_skip_range_part(skips, 3) == ranges


@pytest.mark.parametrize(("count", "size"), [(1, 0), (1, 16), (1, 48), (2, 48), (5, 112)])
def test_record_part_wrong_length(count: int, size: int):
    with pytest.raises(ProtocolError) as info:
        decode_record_part(bytes(size), count)
    assert info.value.field == "Packet Records"
    assert SECTION in str(info.value)


def test_skip_range_part_out_of_order():
    skips = be(5, 4) + be(6, 4) + be(0, 4) + be(1, 4)
    with pytest.raises(ProtocolError) as info:
        decode_skip_range_part(skips, 2)
    assert SECTION in str(info.value)
    assert decode_skip_range_part(skips, 1) == (SkipRange(5, 6),)  # the rest is padding
    with pytest.raises(ProtocolError):
        decode_skip_range_part(skips, 3)  # three ranges need 32 octets


def request() -> RequestSession:
    return RequestSession(
        ipaddress.IPv4Address("127.0.0.1"),
        ipaddress.IPv4Address("127.0.0.1"),
        9556,
        29168,
        (Slot(SlotType.FIXED, 0x028F5C28),),
        5,
        conf_receiver=True,
        sid=SID,
    )


def test_fetched_session_parts():
    records = tuple(PacketRecord(i, 1, 1, i, i + 1, 255) for i in range(3))
    session = FetchedSession(request(), (SkipRange(3, 4),), records)
    fixed, slots, skips, recs = session.encode_parts()
    assert (len(fixed), len(slots), len(skips), len(recs)) == (96, 16, 16, 80)
    ack = FetchAck(0, True, 5, 1, 3)
    assert FetchedSession.decode_parts(fixed, slots, skips, recs, ack) == session
    with pytest.raises(ProtocolError):
        FetchedSession.decode_parts(fixed, slots, skips, recs, FetchAck(0, True, 5, 1, 4))
    with pytest.raises(ValueError):
        FetchedSession.decode_parts(fixed, slots, skips, recs, FetchAck(1))


# --- properties ------------------------------------------------------------------------------

u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, (1 << 32) - 1)
u64 = st.integers(0, (1 << 64) - 1)
record_st = st.builds(PacketRecord, u32, u16, u16, u64, u64, u8)


@st.composite
def acks(draw: st.DrawFn) -> FetchAck:
    accept = draw(u8)
    if accept:
        return FetchAck(accept)
    finished = draw(st.booleans())
    if not finished:
        return FetchAck(0, False, 0, 0, draw(u32))
    return FetchAck(0, True, draw(u32), draw(u32), draw(u32))


@given(st.builds(FetchSession, st.binary(min_size=16, max_size=16), u32, u32))
def test_fetch_session_round_trip(fetch: FetchSession):
    assert FetchSession.decode(fetch.encode()) == fetch


@given(acks())
def test_fetch_ack_round_trip(ack: FetchAck):
    assert FetchAck.decode(ack.encode()) == ack


@given(record_st)
def test_packet_record_round_trip(record: PacketRecord):
    assert PacketRecord.decode(record.encode()) == record


@given(st.lists(record_st, max_size=12), st.lists(st.integers(0, 1000), max_size=8))
def test_fetched_session_round_trip(records: list[PacketRecord], points: list[int]):
    edges = sorted(set(points))
    ranges = tuple(SkipRange(a, b) for a, b in zip(edges[::2], edges[1::2], strict=False))
    session = FetchedSession(request(), ranges, tuple(records))
    parts = session.encode_parts()
    assert all(len(p) % 16 == 0 for p in parts)
    ack = FetchAck(0, True, 5, len(ranges), len(records))
    assert FetchedSession.decode_parts(*parts, ack) == session


@given(st.lists(record_st, max_size=12))
def test_record_part_decodes_on_demand(records: list[PacketRecord]):
    """The decoded part keeps its octets: fields, indexing and iteration read them (§3.9)."""
    decoded = decode_record_part(encode_record_part(records), len(records))
    assert isinstance(decoded, PacketRecords)
    assert len(decoded) == len(records)
    assert list(decoded.fields()) == [
        (r.seq, r.send_error, r.receive_error, r.send_timestamp, r.receive_timestamp, r.ttl)
        for r in records
    ]
    assert list(decoded) == records and decoded == tuple(records)
    assert decoded[::2] == tuple(records[::2])
    if records:
        assert (decoded[0], decoded[-1]) == (records[0], records[-1])
    with pytest.raises(IndexError):
        decoded[len(records)]


@given(st.binary(max_size=200), st.integers(0, 10), st.integers(0, 10))
def test_fetch_decoders_random_bytes_raise_only_protocol_error(data: bytes, a: int, b: int):
    for decode in (FetchSession.decode, FetchAck.decode, PacketRecord.decode):
        with contextlib.suppress(ProtocolError):
            decode(data)
    with contextlib.suppress(ProtocolError):
        decode_record_part(data, a)
    with contextlib.suppress(ProtocolError):
        decode_skip_range_part(data, b)
    with contextlib.suppress(ProtocolError):
        FetchedSession.decode_parts(
            data[:96], data[96:112], data[112:], data, FetchAck(0, True, 0, a, b)
        )
