"""Send schedules of the Session-Sender (RFC 4656 §3.6 kinds, used by TWAMP and STAMP senders)."""

import itertools
import random

import pytest

from otwamp.session.schedule import Schedule, send_offsets


def test_fixed_offsets_are_multiples_of_the_interval() -> None:
    offsets = send_offsets(5, 0.25, Schedule.FIXED, random.Random(1))
    assert list(offsets) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_offsets_cost_eight_octets_a_packet() -> None:
    """Machine doubles, not Python floats: a 10,000,000-packet session's schedule is 80 MB."""
    for kind in Schedule:
        offsets = send_offsets(1000, 0.001, kind, random.Random(2))
        assert (offsets.typecode, offsets.itemsize, len(offsets)) == ("d", 8, 1000)


def test_poisson_offsets_have_exponential_gaps_of_the_mean_interval() -> None:
    offsets = send_offsets(20_000, 0.01, Schedule.POISSON, random.Random(3))
    gaps = [later - earlier for earlier, later in itertools.pairwise(offsets)]
    assert offsets[0] == 0.0 and min(gaps) >= 0
    assert sum(gaps) / len(gaps) == pytest.approx(0.01, rel=0.03)
    # exponential: about e^-1 of the gaps exceed the mean
    assert sum(gap > 0.01 for gap in gaps) / len(gaps) == pytest.approx(0.368, abs=0.02)


def test_a_zero_interval_sends_everything_at_once() -> None:
    assert list(send_offsets(3, 0.0, Schedule.POISSON, random.Random(4))) == [0.0] * 3


@pytest.mark.parametrize(("count", "interval"), [(-1, 0.1), (1, -0.1)])
def test_negative_counts_and_intervals_are_refused(count: int, interval: float) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        send_offsets(count, interval, Schedule.FIXED, random.Random(5))
