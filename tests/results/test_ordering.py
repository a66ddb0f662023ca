"""Reordering and duplicates (RFC 4737)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.results.ordering import (
    count_reordered,
    first_copies,
    reordered_flags,
    reordered_ratio,
)


def test_introduction_example_only_late_packet_is_reordered() -> None:
    # RFC 4737 §1: arrivals 1,2,4,5,3 -> packet 3 is reordered, not 4 and 5.
    assert reordered_flags([1, 2, 4, 5, 3]) == [False, False, False, False, True]


@pytest.mark.parametrize(
    ("arrivals", "reordered"),
    [
        ([1, 2, 3, 5, 6, 7, 8, 4, 9, 10], {4}),  # §7.1, Table 1
        ([1, 2, 3, 4, 7, 5, 6, 8, 9, 10], {5, 6}),  # §7.2, Table 2
        ([1, 2, 3, 7, 8, 9, 10, 4, 5, 6, 11], {4, 5, 6}),  # §7.3, Table 3
        ([1, 2, 3, 6, 7, 4, 5, 8, 9, 10, 12, 13, 11, 14, 15, 16], {4, 5, 11}),  # §7.4
    ],
)
def test_rfc4737_examples(arrivals: list[int], reordered: set[int]) -> None:
    flags = reordered_flags(arrivals)
    assert {seq for seq, late in zip(arrivals, flags, strict=True) if late} == reordered
    assert count_reordered(arrivals) == len(reordered)


def test_first_packet_is_in_order() -> None:
    # §3.6: NextExp is undefined for the first arrival.
    assert reordered_flags([5, 1, 6]) == [False, True, False]


def test_sequence_discontinuity_is_in_order() -> None:
    # §3.4: s > NextExp (loss) is still in order.
    assert count_reordered([0, 3, 7, 8]) == 0


def test_duplicates_are_removed_before_counting() -> None:
    # §3.6: a later copy would count as reordered; only the first copy is analysed.
    arrivals = [1, 2, 2, 3, 1]
    assert count_reordered(arrivals) == 2
    assert list(first_copies(arrivals)) == [1, 2, 3]
    assert count_reordered(first_copies(arrivals)) == 0


def test_reordered_ratio() -> None:
    # §4.1.3: R = reordered / received (Table 2: 2 of 10).
    assert reordered_ratio(2, 10) == 0.2
    assert reordered_ratio(0, 0) is None


@given(st.lists(st.integers(0, 1000), unique=True))
def test_sorted_stream_is_never_reordered(seqs: list[int]) -> None:
    assert count_reordered(sorted(seqs)) == 0


@given(st.permutations(list(range(30))))
def test_reordered_count_bounds(seqs: list[int]) -> None:
    count = count_reordered(seqs)
    assert 0 <= count <= len(seqs) - 1
    # A packet is in order exactly when it exceeds every earlier arrival.
    in_order = sum(1 for i, seq in enumerate(seqs) if all(seq > s for s in seqs[:i]))
    assert count == len(seqs) - in_order
