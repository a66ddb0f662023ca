"""Nearest-rank percentiles and sample statistics."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.results.stats import percentile, seconds, summarize

samples = st.lists(st.integers(-(10**12), 10**12), min_size=1, max_size=200)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        # The classic nearest-rank examples.
        ([15, 20, 35, 40, 50], 5, 15),
        ([15, 20, 35, 40, 50], 30, 20),
        ([15, 20, 35, 40, 50], 40, 20),
        ([15, 20, 35, 40, 50], 50, 35),
        ([15, 20, 35, 40, 50], 100, 50),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 25, 7),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 50, 8),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 75, 15),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 100, 20),
        ([3, 6, 7, 8, 8, 10, 13, 15, 16, 20], 0, 3),
        ([42], 99, 42),
    ],
)
def test_percentile_nearest_rank(values: list[int], p: int, expected: int) -> None:
    assert percentile(values, p) == expected


def test_percentile_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        percentile([1], 101)


def test_summarize_one_to_hundred_ns() -> None:
    stats = summarize(range(100, 0, -1))  # order of input does not matter
    assert stats is not None
    assert stats.count == 100
    assert (stats.min, stats.p25, stats.median, stats.p75) == (1e-9, 25e-9, 50e-9, 75e-9)
    assert (stats.p90, stats.p95, stats.p99, stats.max) == (90e-9, 95e-9, 99e-9, 100e-9)
    assert stats.mean == pytest.approx(50.5e-9)


def test_summarize_even_median_is_lower_middle() -> None:
    stats = summarize([1_000, 2_000, 3_000, 4_000])
    assert stats is not None
    assert stats.median == 2e-6


def test_summarize_empty_is_none() -> None:
    assert summarize([]) is None


def test_seconds() -> None:
    assert seconds(1_500_000_000) == 1.5


@given(samples)
def test_percentiles_are_monotone_and_members(values: list[int]) -> None:
    ordered = sorted(values)
    results = [percentile(ordered, p) for p in range(101)]
    assert results == sorted(results)
    assert set(results) <= set(values)
    assert results[0] == ordered[0]
    assert results[100] == ordered[-1]


@given(samples)
def test_stats_are_ordered(values: list[int]) -> None:
    stats = summarize(values)
    assert stats is not None
    chain = [stats.min, stats.p25, stats.median, stats.p75, stats.p90, stats.p95, stats.p99]
    assert [*chain, stats.max] == sorted([*chain, stats.max])
    assert stats.min - 1e-9 <= stats.mean <= stats.max + 1e-9
    assert stats.count == len(values)
