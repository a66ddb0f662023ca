"""The OWAMP receiver's records in columns: their size, and the same records and reports."""

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.results.delay import DelaySample
from otwamp.results.metrics import summarize_direction
from otwamp.results.ordering import count_reordered
from otwamp.results.owamp import (
    delay_sample,
    kept_end,
    missing_packet,
    missing_status,
    packet_lines,
    raw_lines,
    session_end,
    skipped_seqs,
    summarize_owamp,
)
from otwamp.results.records import Arrival, Arrivals, OwampSessionRecord
from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp
from tests.results.owamp.builders import EPOCH_NS, record, stamp

PACKETS = 100_000
MAX_OCTETS = 64  # a packet's records at most (issue 15)


def test_a_packet_costs_at_most_64_octets() -> None:
    arrivals = Arrivals()
    estimates = arrivals.estimates
    sent_code = estimates.wire_code(ErrorEstimate.from_seconds(1e-6, True).to_int())
    received_code = estimates.code(stamp(0))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seq in range(PACKETS):
            sent = EPOCH_NS + seq * 50_000
            arrivals.add(seq, ns_to_ntp(sent), sent_code, sent + 70_000, received_code, 64)
        octets = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(arrivals) == PACKETS
    assert octets / PACKETS <= MAX_OCTETS
    assert octets / PACKETS < 30  # 24 octets and the arrays' spare room


def test_wire_times_and_estimates_are_kept_as_they_came() -> None:
    """RFC 4656 §3.9: Fetch-Session gives back the packet's Timestamp and Error Estimate."""
    arrivals = Arrivals()
    estimates = arrivals.estimates
    # 2 x 2**-32 s and 1 x 2**-31 s are the same estimate, encoded two ways.
    twice, once = ErrorEstimate(True, 0, 2).to_int(), ErrorEstimate(True, 1, 1).to_int()
    sent = ns_to_ntp(EPOCH_NS) + 1  # a fraction no whole ns gives
    arrivals.add(0, sent, estimates.wire_code(twice), EPOCH_NS, estimates.code(stamp(9)), None)
    arrivals.add(1, sent, estimates.wire_code(once), EPOCH_NS, estimates.wire_code(once), 3)
    assert arrivals.sent[0] == sent
    assert arrivals.errors(0) == (twice, ErrorEstimate.from_seconds(1e-9, True).to_int())
    assert arrivals.errors(1) == (once, once)
    assert arrivals[0].sent == arrivals[1].sent  # the same time and estimate in seconds
    assert (arrivals[0].ttl, arrivals[1].ttl) == (None, 3)


def test_a_hostile_peer_s_every_estimate_is_kept() -> None:
    """Each of the 65,280 valid Error Estimates, then the receiver clock's own: none is lost."""
    arrivals = Arrivals()
    estimates = arrivals.estimates
    wires = [wire for wire in range(1 << 16) if wire & 0xFF]  # Multiplier 0 is refused
    for seq, wire in enumerate(wires):
        arrivals.add(seq, seq, estimates.wire_code(wire), seq, estimates.code(stamp(0)), None)
    for seq in range(300):  # a clock whose estimate keeps changing
        received = estimates.code(stamp(0, error=seq * 1e-6))
        arrivals.add(seq, seq, estimates.wire_code(wires[seq]), seq, received, None)
    assert len(estimates.pairs) > 0xFFFF
    assert [arrivals.errors(seq)[0] for seq in range(len(wires))] == wires
    assert arrivals[-1].received.error == 299e-6


times = st.integers(min_value=0, max_value=10**12)
arrival_lists = st.lists(
    st.builds(
        Arrival,
        st.integers(0, 40),
        st.builds(stamp, times, st.booleans(), st.sampled_from([1e-9, 2e-6, 0.5])),
        st.builds(stamp, times, st.booleans(), st.sampled_from([1e-9, 3e-6])),
        st.none() | st.integers(0, 255),
    ),
    max_size=60,
)


@given(arrival_lists)
def test_columns_give_back_the_arrivals(arrivals: list[Arrival]) -> None:
    log = Arrivals(arrivals)
    assert log == arrivals
    assert list(log) == arrivals
    assert log[1:4] == arrivals[1:4]
    assert repr(log) == f"<Arrivals of {len(arrivals)}>"


def reference_summary(record: OwampSessionRecord) -> tuple[object, ...]:
    """What the reports showed when arrivals were objects: counts and path, from the objects."""
    kept = kept_end(record)
    arrivals = [arrival for arrival in record.arrivals if arrival.seq < kept]
    firsts: dict[int, Arrival] = {}
    for arrival in arrivals:
        firsts.setdefault(arrival.seq, arrival)
    samples: list[DelaySample] = [delay_sample(arrival) for arrival in firsts.values()]
    summary = summarize_owamp(record)
    path = summarize_direction(
        samples,
        lost=summary.packets.lost,
        duplicates=len(arrivals) - len(firsts),
        reordered=count_reordered(arrival.seq for arrival in firsts.values()),
        ttls=(arrival.ttl for arrival in arrivals),
        initial_ttl=record.initial_ttl,
    )
    return len(firsts), path


def reference_raw_lines(record: OwampSessionRecord, json_lines: bool) -> list[str]:
    """The --raw lines as they were made from a dict of lists of arrivals."""
    by_seq: dict[int, list[Arrival]] = {}
    kept = kept_end(record)
    for arrival in record.arrivals:
        if arrival.seq < kept:
            by_seq.setdefault(arrival.seq, []).append(arrival)
    end = session_end(record)
    skipped = skipped_seqs(record.skipped, end)
    lines: list[str] = []
    for seq in range(end):
        copies = by_seq.get(seq)
        if copies:
            lines += packet_lines(copies, json_lines)
        else:
            lines.append(missing_packet(seq, missing_status(seq, skipped, kept), json_lines))
    return lines


@settings(max_examples=60)
@given(
    arrivals=arrival_lists,
    next_seqno=st.none() | st.integers(0, 45),
    discarded_from=st.none() | st.integers(0, 45),
    json_lines=st.booleans(),
)
def test_reports_from_columns_are_those_of_the_objects(
    arrivals: list[Arrival], next_seqno: int | None, discarded_from: int | None, json_lines: bool
) -> None:
    session = record(
        41, arrivals, next_seqno=next_seqno, discarded_from=discarded_from, skipped=[(3, 5)]
    )
    summary = summarize_owamp(session)
    received, path = reference_summary(session)
    assert (summary.packets.received, summary.path) == (received, path)
    assert list(raw_lines(session, json_lines)) == reference_raw_lines(session, json_lines)
