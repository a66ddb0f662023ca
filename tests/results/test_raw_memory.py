"""``--raw`` streams: its lines come one at a time, with no per-packet object kept alive."""

import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from otwamp.results import owamp, report
from otwamp.results.records import Arrival, OwampSessionRecord, TwampSessionRecord
from tests.results.conftest import record, reply, stamp

SMALL, LARGE = 20_000, 200_000
OCTETS_PER_PACKET = 16  # what may stay alive a packet while the lines stream (8 today)


def twamp_session(packets: int) -> TwampSessionRecord:
    """``packets`` sent, every one replied to but the last, the first one twice."""
    session = record(packets, [])
    for seq in (0, *range(packets - 1)):
        session.replies.append(reply(seq))
    return session


def owamp_session(packets: int) -> OwampSessionRecord:
    """``packets`` requested, every one received but the last, the first one twice."""
    session = OwampSessionRecord(bytes(16), "to", "open", "none", packets)
    for seq in (0, *range(packets - 1)):
        session.arrivals.append(Arrival(seq, stamp(seq), stamp(seq + 50_000), 64))
    return session


def streaming_peak(lines: Iterator[str]) -> tuple[int, int]:
    """The lines consumed one at a time: how many, and the peak of memory allocated meanwhile."""
    tracemalloc.start()
    try:
        count = sum(1 for _line in lines)
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("build", "raw_lines"),
    [(twamp_session, report.raw_lines), (owamp_session, owamp.raw_lines)],
    ids=["twamp", "owamp"],
)
def test_raw_lines_stream_in_memory_that_does_not_grow_with_objects(
    build: Callable[[int], TwampSessionRecord | OwampSessionRecord],
    raw_lines: Callable[..., Iterator[str]],
) -> None:
    """Text lines (JSON ones come from the same packets, ``packets_in_order``, and take
    twice as long under tracemalloc)."""
    small, large = build(SMALL), build(LARGE)
    lines = raw_lines(large, json_lines=False)
    assert iter(lines) is lines  # a generator, not a list of every line
    small_count, small_peak = streaming_peak(raw_lines(small, json_lines=False))
    large_count, large_peak = streaming_peak(lines)
    assert (small_count, large_count) == (SMALL + 1, LARGE + 1)  # one LOST, one DUP
    # Objects (a Reply is about 1 KB with its stamps) would cost far more than this.
    assert large_peak < OCTETS_PER_PACKET * LARGE
    assert large_peak - small_peak < OCTETS_PER_PACKET * (LARGE - SMALL)
