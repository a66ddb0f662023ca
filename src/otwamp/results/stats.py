"""Summary statistics of a sample of times, the one percentile method of otwamp.

Percentiles use the nearest-rank method: the P-th percentile of n sorted
values is the value of rank ceil(P/100 * n) (1-based), so it is always a
value of the sample and the median of an even-sized sample is the lower of
the two middle values. RFC 3393 §4.3 and RFC 5481 §6 ask for percentiles
without fixing a method; this one is exact, monotone in P and needs no
interpolation.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NS_PER_S = 1_000_000_000


def percentile(sorted_values: Sequence[int], p: int) -> int:
    """Nearest-rank P-th percentile (0 <= P <= 100) of an ascending, non-empty sample."""
    if not sorted_values:
        raise ValueError("percentile of an empty sample")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    rank = -(-p * len(sorted_values) // 100)  # ceil without floats
    return sorted_values[max(rank, 1) - 1]


def seconds(ns: int) -> float:
    """Nanoseconds as float seconds."""
    return ns / NS_PER_S


@dataclass(frozen=True, slots=True)
class Stats:
    """Distribution of a sample of times, in seconds (percentiles by nearest rank)."""

    count: int
    min: float
    p25: float
    median: float
    p75: float
    p90: float
    p95: float
    p99: float
    max: float
    mean: float


def summarize(values_ns: Iterable[int]) -> Stats | None:
    """Statistics of a sample of nanosecond values; None for an empty sample."""
    ordered = sorted(values_ns)
    if not ordered:
        return None

    def at(p: int) -> float:
        return seconds(percentile(ordered, p))

    return Stats(
        count=len(ordered),
        min=seconds(ordered[0]),
        p25=at(25),
        median=at(50),
        p75=at(75),
        p90=at(90),
        p95=at(95),
        p99=at(99),
        max=seconds(ordered[-1]),
        mean=sum(ordered) / len(ordered) / NS_PER_S,
    )
