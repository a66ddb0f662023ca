"""The sender's records in columns: the same records back, bounded octets, both metric paths."""

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.results import metrics, stats
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import Reply, ReplyLog, Sent, SentLog, Stamp

from .conftest import EPOCH_NS, record, reply

stamps = st.builds(
    Stamp,
    st.integers(0, 2**62),
    st.booleans(),
    st.sampled_from([1e-9, 2.5e-7, 1e-3, 16.0]),
)
replies = st.builds(
    Reply,
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    stamps,
    stamps,
    stamps,
    stamps,
    st.integers(0, 255),
    st.none() | st.integers(0, 255),
)


@given(st.lists(replies, max_size=20))
def test_replies_come_back_as_they_went_in(items: list[Reply]) -> None:
    log = ReplyLog(items)
    assert list(log) == items and log == items and len(log) == len(items)
    if items:
        assert log[-1] == items[-1] and log[1:] == items[1:]


@settings(deadline=None)
@given(st.lists(stamps, max_size=20), st.data())
def test_sent_records_come_back_as_they_went_in(t1s: list[Stamp], data: st.DataObject) -> None:
    offsets = data.draw(
        st.lists(
            st.none() | st.integers(-(2**31) + 1, 2**31 - 1), min_size=len(t1s), max_size=len(t1s)
        )
    )
    items = [
        Sent(seq, t1, None if offset is None else t1.ns + offset)
        for seq, (t1, offset) in enumerate(zip(t1s, offsets, strict=True))
    ]
    log = SentLog(items)
    assert list(log) == items
    assert log.kernel_count == sum(offset is not None for offset in offsets)


def test_sequence_numbers_not_in_order_are_kept() -> None:
    items = [Sent(seq, Stamp(EPOCH_NS + seq, True, 1e-9)) for seq in (0, 1, 5, 3)]
    assert list(SentLog(items)) == items


def test_a_kernel_time_far_from_the_packets_is_refused() -> None:
    log = SentLog([Sent(0, Stamp(EPOCH_NS, True, 1e-9))])
    assert not log.kernel_sent(0, EPOCH_NS + 3 * 10**9)  # beyond the 32-bit offset
    assert log.kernel_sent(0, EPOCH_NS + 1_500)
    assert log[0].t1_kernel_ns == EPOCH_NS + 1_500 and log[0].t1_source == "kernel"


def test_more_than_256_error_estimates_widen_the_codes() -> None:
    items = [
        Reply(i, i, *(Stamp(EPOCH_NS + i, True, (i + 1) * 1e-9),) * 4, 255, None)
        for i in range(300)
    ]
    sent = [Sent(i, Stamp(EPOCH_NS + i, i % 2 == 0, (i + 1) * 1e-9)) for i in range(300)]
    assert list(ReplyLog(items)) == items and list(SentLog(sent)) == sent


def test_records_of_a_million_packets_fit_in_64_octets_each() -> None:
    sent, replies_ = SentLog(), ReplyLog()
    one = Stamp(EPOCH_NS, True, 1e-9)
    for seq in range(10_000):
        sent.append(Sent(seq, one, EPOCH_NS + 700))
        replies_.append(Reply(seq, seq, one, one, one, one, 255, 64))
    columns = [sent.t1, sent._kernel, sent._codes, *replies_.t, replies_._codes]
    columns += [replies_.sender_seq, replies_.reflector_seq, replies_.sender_ttl, replies_.ttl]
    assert sum(column.itemsize for column in columns) <= 64
    assert sent._seqs is None  # numbered 0, 1, 2...: not stored


def test_lists_become_columns() -> None:
    session = record(2, [reply(0), reply(1)])
    assert isinstance(session.sent, SentLog) and isinstance(session.replies, ReplyLog)
    assert session == record(2, [reply(0), reply(1)])


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(-5_000, 90_000)),
        max_size=40,
    )
)
def test_sparse_and_dense_sequence_numbers_give_the_same_metrics(
    items: list[tuple[int, int, int]],
) -> None:
    """Columns indexed by sequence number, or sorting when a peer's numbers are huge."""
    session = record(41, [reply(seq, rseq, fwd=fwd) for seq, rseq, fwd in items])
    dense = summarize_twamp(session)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "dense", lambda seqs, count: False)
        assert summarize_twamp(session) == dense


@given(st.lists(st.integers(-(10**9), 10**9), min_size=1, max_size=300), st.integers(-9, 9))
def test_merged_chunks_give_the_same_statistics(values: list[int], shift: int) -> None:
    expected = stats.summarize([value - shift for value in values])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stats, "CHUNK", 7)
        assert stats.summarize_column(array("q", values), shift) == expected


def test_a_reflector_numbering_from_four_billion_costs_no_memory() -> None:
    session = record(2, [reply(0, 2**32 - 2), reply(1, 2**32 - 1)])
    summary = summarize_twamp(session)
    assert summary.backward.lost == 2**32 - 2  # what the numbering says, without a column
    assert summary.packets.received == 2
