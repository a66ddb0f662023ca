"""The OWAMP-Test receiver: checks, records, Stop-Sessions and Fetch records (RFC 4656 §4.2)."""

import gc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.results.owamp import summarize_owamp
from otwamp.results.records import OwampSessionRecord
from otwamp.session.owamp_receiver import LOST_SEND_ERROR, OwampReceiver
from otwamp.session.protection import session_protection
from otwamp.session.slots import send_times
from otwamp.wire.owamp_control import Slot, SlotType
from otwamp.wire.owamp_stop import SkipRange
from otwamp.wire.timestamp import ErrorEstimate, duration_to_ntp, ns_to_ntp

from .helpers import (
    ERROR,
    INTERVAL,
    SID,
    TIMEOUT,
    NoRandom,
    fetch_records,
    make_link,
    stamp_at,
    transcript,
    transcript_keys,
)

MODES = ["open", "authenticated", "encrypted"]
DELAY = duration_to_ntp(0.0001)
ALL = (0, 0xFFFFFFFF)  # Begin Seq and End Seq of a complete session (RFC 4656 §3.9)


@pytest.mark.parametrize("mode", MODES)
def test_round_trip_records_every_field(mode: str) -> None:
    link = make_link(mode, padding=bytes(3))
    arrival = link.deliver(2, ttl=250)
    assert arrival is not None
    assert arrival.seq == 2
    assert ns_to_ntp(arrival.sent.ns) == link.times[2]
    assert (arrival.sent.sync, arrival.sent.error) == (True, ERROR.seconds)
    assert ns_to_ntp(arrival.received.ns) - link.times[2] == pytest.approx(DELAY, abs=5)
    assert arrival.ttl == 250
    assert link.receiver.record.arrivals == [arrival]
    (record,) = fetch_records(link.receiver, *ALL)
    assert record.seq == 2
    assert record.send_timestamp == link.times[2]
    assert record.send_error == ERROR.to_int()
    assert ErrorEstimate.from_int(record.receive_error).seconds >= ERROR.seconds
    assert record.ttl == 250
    assert not record.lost


@pytest.mark.parametrize(
    ("mode", "offset"),
    # The encrypted first block, the HMAC, and in encrypted mode the timestamp too.
    [
        ("authenticated", 0),
        ("authenticated", 40),
        ("encrypted", 0),
        ("encrypted", 20),
        ("encrypted", 40),
    ],
)
def test_forged_packet_counted_as_auth_failure(mode: str, offset: int) -> None:
    link = make_link(mode)
    wire = bytearray(link.packet(0, link.times[0]))
    wire[offset] ^= 1
    assert not link.receiver.on_datagram(bytes(wire), stamp_at(link.times[0] + DELAY), 255)
    assert link.receiver.record.dropped.auth_failures == 1
    assert link.receiver.record.arrivals == []


@pytest.mark.parametrize(("mode", "size"), [("open", 13), ("authenticated", 47), ("encrypted", 0)])
def test_truncated_packet(mode: str, size: int) -> None:
    link = make_link(mode)
    wire = link.packet(0, link.times[0])[:size]
    assert not link.receiver.on_datagram(wire, stamp_at(link.times[0]), 255)
    assert link.receiver.record.dropped.truncated == 1


def test_zero_multiplier_is_corrupt() -> None:
    link = make_link("open")
    wire = bytearray(link.packet(0, link.times[0]))
    wire[13] = 0  # Multiplier (RFC 4656 §4.1.2)
    assert not link.receiver.on_datagram(bytes(wire), stamp_at(link.times[0]), 255)
    assert link.receiver.record.dropped.corrupt == 1
    assert link.receiver.record.dropped.truncated == 0


def test_sequence_number_beyond_count_is_dropped() -> None:
    link = make_link("authenticated", count=5)
    wire = link.packet(5, link.times[4] + INTERVAL)
    assert not link.receiver.on_datagram(wire, stamp_at(link.times[4] + INTERVAL), 255)
    assert link.receiver.record.dropped.unknown_seq == 1


@pytest.mark.parametrize(
    ("sent_late", "delay"),
    [(TIMEOUT + 10, DELAY), (0, TIMEOUT + 10), (-TIMEOUT - 10, DELAY)],
)
def test_packet_off_schedule_by_more_than_timeout_is_dropped(sent_late: int, delay: int) -> None:
    """RFC 4656 §4.2: send time off its schedule, or older or newer than Timeout."""
    link = make_link("open")
    sent_at = link.times[1] + sent_late
    wire = link.packet(1, sent_at)
    assert not link.receiver.on_datagram(wire, stamp_at(sent_at + delay), 255)
    assert link.receiver.record.dropped.unknown_seq == 1


def test_duplicates_are_recorded_in_arrival_order() -> None:
    link = make_link("encrypted")
    for seq in (0, 2, 1, 2):
        link.deliver(seq)
    assert [arrival.seq for arrival in link.receiver.record.arrivals] == [0, 2, 1, 2]
    assert [record.seq for record in fetch_records(link.receiver, *ALL)] == [0, 2, 1, 2]


def test_memory_is_bounded_by_the_packet_count() -> None:
    link = make_link("open", count=3)
    for _ in range(100):
        link.deliver(0)
    assert len(link.receiver.record.arrivals) == 6  # 2 x count
    assert len(fetch_records(link.receiver, *ALL)) == 6
    assert link.receiver.excess == 94


def test_records_leave_nothing_for_the_garbage_collector() -> None:
    """A server keeps Fetch-Session records for a long time: no GC-tracked object per packet."""
    link = make_link("open", count=2000)
    gc.collect()
    tracked = len(gc.get_objects())
    for seq in range(2000):
        link.deliver(seq)
    gc.collect()
    assert len(gc.get_objects()) - tracked < 50  # not 2,000 records nor 8,000 objects
    assert len(link.receiver.record.arrivals) == 2000
    assert len(fetch_records(link.receiver, *ALL)) == 2000


def test_record_limit_can_be_set() -> None:
    link = make_link("open", count=3, max_records=4)
    for seq in (0, 1, 2, 2, 2):
        link.deliver(seq)
    assert len(link.receiver.record.arrivals) == 4
    assert link.receiver.excess == 1


def test_unknown_ttl_is_recorded_as_255() -> None:
    link = make_link("open")
    arrival = link.deliver(0, ttl=None)
    assert arrival is not None and arrival.ttl is None
    assert fetch_records(link.receiver, *ALL)[0].ttl == 255


def test_finish_lists_lost_packets_last_with_their_schedule() -> None:
    link = make_link("open", count=5)
    for seq in (0, 3, 1):
        link.deliver(seq)
    stopped = stamp_at(link.times[-1] + TIMEOUT + INTERVAL)
    link.receiver.finish(5, [], stopped)
    records = fetch_records(link.receiver, *ALL)
    assert [record.seq for record in records] == [0, 3, 1, 2, 4]
    lost = records[3:]
    assert all(record.lost for record in lost)
    assert [record.send_timestamp for record in lost] == [link.times[2], link.times[4]]
    assert {record.send_error for record in lost} == {LOST_SEND_ERROR}
    assert {record.ttl for record in lost} == {255}
    assert lost[0].receive_error == ErrorEstimate.from_seconds(stopped.error, True).to_int()
    assert link.receiver.record.next_seqno == 5
    assert link.receiver.record.completed


def test_lost_send_error_is_unsynchronized_multiplier_one() -> None:
    estimate = ErrorEstimate.from_int(LOST_SEND_ERROR)
    assert (estimate.sync, estimate.multiplier, estimate.scale) == (False, 1, 63)


def test_finish_keeps_skip_ranges_and_next_seqno() -> None:
    link = make_link("open", count=10)
    for seq in (0, 3):
        link.deliver(seq)
    link.receiver.finish(
        5, [SkipRange(1, 2), SkipRange(4, 7)], stamp_at(link.times[-1] + TIMEOUT + INTERVAL)
    )
    record = link.receiver.record
    assert record.next_seqno == 5
    assert record.skipped == [(1, 2), (4, 4)]  # clipped to Next Seqno
    assert [r.seq for r in fetch_records(link.receiver, *ALL)] == [0, 3, 1, 2, 4]


def test_finish_discards_packets_due_in_the_last_timeout() -> None:
    """RFC 4656 §3.8: records whose send time is within Timeout before the stop go."""
    link = make_link("open", count=10)
    for seq in range(10):
        link.deliver(seq)
    # Stop just after packet 5's send time + Timeout: packets 6..9 were due in the last Timeout.
    link.receiver.finish(10, [], stamp_at(link.times[5] + TIMEOUT + 10))
    record = link.receiver.record
    assert record.next_seqno == 10  # what the sender said: the discarded packets were sent
    assert record.discarded_from == 6
    counts = summarize_owamp(record).packets  # the records stay; the reports leave them out
    assert (counts.received, counts.discarded, counts.lost) == (6, 4, 0)
    assert len(fetch_records(link.receiver, *ALL)) == 6


def test_packet_beyond_next_seqno_invalidates_the_session() -> None:
    link = make_link("open", count=5)
    for seq in (0, 1, 4):
        link.deliver(seq)
    link.receiver.finish(3, [], stamp_at(link.times[-1] + TIMEOUT + INTERVAL))
    assert not link.receiver.record.completed
    assert [record.seq for record in fetch_records(link.receiver, *ALL)] == [0, 1, 2]  # 2 lost
    assert summarize_owamp(link.receiver.record).packets.received == 2


@pytest.mark.parametrize("ranges", [[(0, 2), (2, 3)], [(4, 5), (0, 1)]])
def test_skip_ranges_out_of_order_are_refused(ranges: list[tuple[int, int]]) -> None:
    link = make_link("open", count=10)
    skips = [SkipRange(*skip) for skip in ranges]
    with pytest.raises(ProtocolError, match=r"§3\.8"):
        link.receiver.finish(10, skips, stamp_at(link.times[-1] + TIMEOUT))


def test_packets_after_finish_are_dropped() -> None:
    link = make_link("open")
    link.receiver.finish(5, [], stamp_at(link.times[-1] + TIMEOUT + INTERVAL))
    assert link.deliver(0) is None
    assert link.receiver.record.dropped.unknown_seq == 1


def test_fetch_before_finish_gives_received_packets_in_range() -> None:
    link = make_link("open", count=10)
    for seq in (5, 1, 7, 3):
        link.deliver(seq)
    assert [record.seq for record in fetch_records(link.receiver, 2, 6)] == [5, 3]


def test_fetch_range_applies_to_lost_packets_too() -> None:
    link = make_link("open", count=10)
    link.deliver(5)
    link.receiver.finish(10, [], stamp_at(link.times[-1] + TIMEOUT + INTERVAL))
    assert [record.seq for record in fetch_records(link.receiver, 4, 6)] == [5, 4, 6]


def test_abandon_keeps_up_to_the_last_packet_received() -> None:
    link = make_link("open", count=10)
    for seq in (0, 2, 4):
        link.deliver(seq)
    link.receiver.abandon(stamp_at(link.times[-1]))
    assert link.receiver.record.next_seqno == 5
    assert not link.receiver.record.completed
    assert [r.seq for r in fetch_records(link.receiver, *ALL)] == [0, 2, 4, 1, 3]


def test_schedule_must_cover_the_count() -> None:
    record = OwampSessionRecord(SID, "to", "open", "none", 3)
    with pytest.raises(ValueError):
        OwampReceiver(record, [0, 1], TIMEOUT)


@pytest.mark.parametrize("name", ["owamp-O", "owamp-A", "owamp-E"])
def test_receives_perfsonar_packets_as_owampd_recorded_them(name: str) -> None:
    """owping's packets to owampd give owampd's fetched records (send fields exactly)."""
    doc = transcript(name)
    messages = {m["name"]: m["fields"] for m in doc["control"]["messages"]}
    request = messages["Fetch data: Request-Session reproduction"]
    expected = messages["Fetch data: packet records + HMAC"]["records"]
    to_session = doc["test_sessions"][0]
    sid = bytes.fromhex(to_session["sid"])
    first_request = next(m for m in doc["control"]["messages"] if m["name"] == "Request-Session")
    fields = first_request["fields"]
    slot = fields["slots"][0]
    times = list(
        send_times(
            fields["start_time"]["uint64"],
            [Slot(SlotType(slot["slot_type"]), slot["slot_parameter"]["uint64"])],
            request["num_packets"],
            NoRandom(),
        )
    )
    record = OwampSessionRecord(sid, "to", doc["mode_name"], "passphrase", request["num_packets"])
    protection = session_protection(doc["mode_value"], sid, transcript_keys(doc))
    receiver = OwampReceiver(record, times, fields["timeout"]["uint64"], protection)
    packets = [p for p in doc["test_packets"] if p["direction"] == "client->server"]
    for packet, wanted in zip(packets, expected, strict=True):
        received = stamp_at(wanted["receive_timestamp"]["uint64"], sync=False, error=2**-32)
        receiver.on_datagram(bytes.fromhex(packet["payload_hex"]), received, packet["ip_ttl"])
    receiver.finish(5, [], stamp_at(times[-1] + fields["timeout"]["uint64"] + INTERVAL))
    got = fetch_records(receiver, *ALL)
    assert [
        (r.seq, f"{r.send_error:04x}", f"{r.receive_error:04x}", r.send_timestamp, r.ttl)
        for r in got
    ] == [
        (
            w["seq"],
            w["send_error_estimate"],
            w["receive_error_estimate"],
            w["send_timestamp"]["uint64"],
            w["ttl"],
        )
        for w in expected
    ]
    for record_got, wanted in zip(got, expected, strict=True):
        assert abs(record_got.receive_timestamp - wanted["receive_timestamp"]["uint64"]) <= 2


@pytest.mark.parametrize("mode", MODES)
@given(data=st.binary(max_size=120), ttl=st.none() | st.integers(0, 255))
def test_arbitrary_datagrams_never_raise(mode: str, data: bytes, ttl: int | None) -> None:
    link = make_link(mode)
    link.receiver.on_datagram(data, stamp_at(link.times[0]), ttl)
    dropped = link.receiver.record.dropped
    kept = len(link.receiver.record.arrivals)
    refused = dropped.truncated + dropped.corrupt + dropped.unknown_seq + dropped.auth_failures
    assert kept + refused == 1
