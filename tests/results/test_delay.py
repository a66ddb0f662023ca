"""Delay, IPDV (RFC 3393) and PDV (RFC 5481) of one series."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.results.delay import (
    DelaySample,
    ipdv_values,
    mean_abs,
    pdv_values,
    summarize_delays,
    summarize_one_way,
)

MS = 1_000_000

# RFC 4737 §7.1 Table 1 (packet 4 late) and §7.3 Table 3: delay in ms by source seq.
TABLE_1 = {1: 68, 2: 68, 3: 68, 4: 150, 5: 68, 6: 68, 7: 68, 8: 68, 9: 68, 10: 68}
TABLE_3 = {1: 68, 2: 68, 3: 68, 4: 190, 5: 172, 6: 156, 7: 68, 8: 68, 9: 68, 10: 68, 11: 68}


def in_ns(table: dict[int, int]) -> dict[int, int]:
    return {seq: delay * MS for seq, delay in table.items()}


def test_ipdv_table_1() -> None:
    # The IPDV column of Table 1, listed by source seq: 4 gets +82, 5 gets -82.
    assert ipdv_values(in_ns(TABLE_1)) == [v * MS for v in [0, 0, 82, -82, 0, 0, 0, 0, 0]]


def test_ipdv_table_3() -> None:
    assert ipdv_values(in_ns(TABLE_3)) == [v * MS for v in [0, 0, 122, -18, -16, -88, 0, 0, 0, 0]]


def test_ipdv_skips_pairs_with_a_lost_packet() -> None:
    # RFC 3393 §4.1: pairs with an undefined delay are left out; 3 is lost.
    assert ipdv_values({1: 10, 2: 12, 4: 20, 5: 15}) == [2, -5]


def test_ipdv_of_single_packet_is_empty() -> None:
    assert ipdv_values({7: 10}) == []


def test_pdv_is_delay_minus_minimum() -> None:
    # RFC 5481 §4.2.
    assert pdv_values([68, 68, 150, 70]) == [0, 0, 82, 2]
    assert pdv_values([]) == []


def test_jitter_is_mean_absolute_ipdv() -> None:
    # RFC 3393 §4.5; Table 1: |+82| + |-82| over 9 pairs.
    assert mean_abs(ipdv_values(in_ns(TABLE_1))) == pytest.approx(0.164 / 9)
    assert mean_abs([]) is None


def test_summarize_delays_table_3() -> None:
    summary = summarize_delays(in_ns(TABLE_3).items())
    assert summary.delay is not None
    assert summary.ipdv is not None
    assert summary.pdv is not None
    assert summary.delay.min == 0.068
    assert summary.delay.max == 0.190
    assert summary.delay.median == 0.068
    assert summary.ipdv.min == -0.088
    assert summary.ipdv.max == 0.122
    assert summary.pdv.min == 0.0
    assert summary.pdv.p99 == pytest.approx(0.122)  # p99 - min of the delays
    assert summary.jitter == pytest.approx((0.122 + 0.018 + 0.016 + 0.088) / 10)


def test_summarize_delays_keeps_first_copy() -> None:
    summary = summarize_delays([(1, 10 * MS), (1, 99 * MS), (2, 12 * MS)])
    assert summary.delay is not None
    assert summary.delay.count == 2
    assert summary.delay.max == 0.012


def test_summarize_delays_empty() -> None:
    summary = summarize_delays([])
    assert (summary.delay, summary.ipdv, summary.jitter, summary.pdv) == (None,) * 4


def test_one_way_sync_and_error() -> None:
    summary = summarize_one_way(
        [
            DelaySample(0, 50_000, True, 2e-9),
            DelaySample(1, 52_000, True, 5e-6),
            DelaySample(2, 51_000, True, 1e-6),
        ]
    )
    assert summary.sync
    assert summary.error == 5e-6
    assert summary.delays.delay is not None
    assert summary.delays.delay.median == 51e-6


def test_one_way_one_unsynchronized_sample_clears_sync() -> None:
    samples = [DelaySample(0, 50_000, True, 0.0), DelaySample(1, 50_000, False, 0.0)]
    assert not summarize_one_way(samples).sync


def test_one_way_accepts_plain_tuples() -> None:
    summary = summarize_one_way([(0, 1_000, True, 1e-9)])
    assert summary.sync


def test_one_way_empty_is_unsynchronized_with_no_error() -> None:
    summary = summarize_one_way([])
    assert not summary.sync
    assert summary.error is None
    assert summary.delays.delay is None


@given(st.dictionaries(st.integers(0, 500), st.integers(-(10**9), 10**9), min_size=1))
def test_pdv_minimum_is_zero_and_ipdv_count(delays: dict[int, int]) -> None:
    summary = summarize_delays(delays.items())
    assert summary.pdv is not None
    assert summary.pdv.min == 0.0
    pairs = sum(1 for seq in delays if seq - 1 in delays)
    assert (summary.ipdv.count if summary.ipdv else 0) == pairs
