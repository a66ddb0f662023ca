"""OWAMP one-way metrics: loss with Stop-Sessions, duplicates, reordering, delay, TTL."""

import pytest

from otwamp.results.metrics import Range
from otwamp.results.owamp import (
    fetched_discard_start,
    session_end,
    skipped_count,
    summarize_owamp,
)
from otwamp.results.records import Dropped

from .builders import SID, arrival, record


def test_all_received_in_order() -> None:
    summary = summarize_owamp(
        record(3, [arrival(0, 50_000), arrival(1, 60_000), arrival(2, 55_000)])
    )
    packets = summary.packets
    assert (packets.sent, packets.received, packets.lost) == (3, 3, 0)
    assert (packets.duplicates, packets.reordered, packets.dropped) == (0, 0, 0)
    delays = summary.path.one_way.delays
    assert delays.delay is not None
    assert (delays.delay.min, delays.delay.median, delays.delay.max) == (50e-6, 55e-6, 60e-6)
    assert delays.delay.mean == pytest.approx(55e-6)
    assert summary.path.one_way.sync
    assert summary.path.one_way.error == pytest.approx(2e-9)
    assert (summary.sid, summary.direction, summary.protocol) == (SID, "to", "owamp")
    assert summary.completed


def test_ipdv_and_pdv() -> None:
    """RFC 3393 §2.4 over consecutive seqs; RFC 5481 §4.2 delay minus the minimum."""
    arrivals = [arrival(0, 50_000), arrival(1, 60_000), arrival(2, 55_000), arrival(4, 70_000)]
    delays = summarize_owamp(record(5, arrivals)).path.one_way.delays
    assert delays.ipdv is not None and delays.pdv is not None
    assert (delays.ipdv.count, delays.ipdv.min, delays.ipdv.max) == (2, -5e-6, 10e-6)
    assert delays.jitter == pytest.approx(7.5e-6)
    assert (delays.pdv.min, delays.pdv.max, delays.pdv.count) == (0.0, 20e-6, 4)


def test_loss_with_next_seqno_and_skip_ranges() -> None:
    """RFC 4656 §3.8: packets at or beyond Next Seqno or skipped were never sent."""
    arrivals = [arrival(seq) for seq in (0, 1, 4, 6)]
    summary = summarize_owamp(record(10, arrivals, next_seqno=8, skipped=[(2, 3)]))
    packets = summary.packets
    assert (packets.sent, packets.received, packets.lost) == (6, 4, 2)  # 5 and 7 lost
    assert summary.path.lost == 2


def test_without_stop_sessions_every_packet_counts() -> None:
    summary = summarize_owamp(record(4, [arrival(0)]))
    assert (summary.packets.sent, summary.packets.lost) == (4, 3)


def test_skip_ranges_are_clipped_to_next_seqno() -> None:
    assert skipped_count([(0, 1), (5, 20)], 8) == 5
    assert session_end(record(10, [], next_seqno=12)) == 10


def test_duplicates_counted_once_and_not_reordered() -> None:
    arrivals = [arrival(0), arrival(1), arrival(1, 90_000), arrival(2)]
    summary = summarize_owamp(record(3, arrivals))
    packets = summary.packets
    assert (packets.received, packets.duplicates, packets.reordered, packets.lost) == (3, 1, 0, 0)
    delay = summary.path.one_way.delays.delay
    assert delay is not None and delay.max == 50e-6  # the first copy's delay


def test_reordering_over_arrival_order() -> None:
    """RFC 4737 §3.3: 2 arrives before 1, so 1 is reordered; so are 3 and 4 after 5."""
    arrivals = [arrival(seq) for seq in (0, 2, 1, 5, 3, 4)]
    summary = summarize_owamp(record(6, arrivals))
    assert summary.packets.reordered == 3
    assert summary.path.reordered == 3


@pytest.mark.parametrize(
    ("syncs", "expected"),
    [((True, True), True), ((False, True), False), ((True, False), False)],
)
def test_sync_needs_both_stamps(syncs: tuple[bool, bool], expected: bool) -> None:
    arrivals = [arrival(0), arrival(1, syncs=syncs)]
    assert summarize_owamp(record(2, arrivals)).path.one_way.sync is expected


def test_error_is_the_largest_combined_estimate() -> None:
    arrivals = [arrival(0, errors=(1e-6, 2e-6)), arrival(1, errors=(1e-9, 1e-9))]
    assert summarize_owamp(record(2, arrivals)).path.one_way.error == pytest.approx(3e-6)


def test_nothing_received() -> None:
    summary = summarize_owamp(record(3, []))
    assert (summary.packets.lost, summary.path.one_way.sync) == (3, False)
    assert summary.path.one_way.delays.delay is None
    assert summary.path.ttl is None and summary.path.hops is None


def test_ttl_and_hops() -> None:
    arrivals = [arrival(0, ttl=250), arrival(1, ttl=248), arrival(2, ttl=None)]
    path = summarize_owamp(record(3, arrivals)).path
    assert path.ttl == Range(248, 250)
    assert path.hops == Range(5, 7)


def test_drops_are_reported() -> None:
    dropped = Dropped(truncated=1, corrupt=4, unknown_seq=2, auth_failures=3)
    packets = summarize_owamp(record(1, [arrival(0)], dropped=dropped)).packets
    assert (packets.auth_failures, packets.corrupt, packets.dropped) == (3, 4, 10)


def test_discarded_packets_stay_sent_and_are_not_lost() -> None:
    """RFC 4656 §3.8: records due within Timeout of the stop are discarded, not unsent."""
    arrivals = [arrival(seq) for seq in range(93) if seq != 50]
    summary = summarize_owamp(
        record(100, arrivals, next_seqno=100, discarded_from=93, skipped=[(95, 96)])
    )
    packets = summary.packets
    assert (packets.sent, packets.received, packets.lost) == (98, 92, 1)
    assert packets.discarded == 5  # 93, 94, 97, 98, 99: the skipped ones were never sent
    assert packets.measured == 93
    assert summary.path.lost == 1


def test_arrivals_in_the_discarded_part_do_not_count() -> None:
    summary = summarize_owamp(record(4, [arrival(0), arrival(3)], discarded_from=2))
    assert (summary.packets.received, summary.packets.lost, summary.packets.discarded) == (1, 1, 2)


@pytest.mark.parametrize(
    ("seqs", "next_seqno", "start"),
    [([0, 3, 1, 2], 10, 4), ([0, 1, 2], 3, None), ([], 5, 0), ([], 0, None)],
)
def test_discard_start_from_fetched_records(
    seqs: list[int], next_seqno: int, start: int | None
) -> None:
    """Fetched records, lost ones included, cover every kept packet (RFC 4656 §3.9)."""
    assert fetched_discard_start(seqs, next_seqno) == start
