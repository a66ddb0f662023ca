"""Summary statistics of a sample of times, the one percentile method of otwamp.

Percentiles use the nearest-rank method: the P-th percentile of n sorted
values is the value of rank ceil(P/100 * n) (1-based), so it is always a
value of the sample and the median of an even-sized sample is the lower of
the two middle values. RFC 3393 §4.3 and RFC 5481 §6 ask for percentiles
without fixing a method; this one is exact, monotone in P and needs no
interpolation.
"""

import heapq
from array import array
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


CHUNK = 1 << 16  # values sorted at once; longer samples are merged from sorted chunks
_PERCENTILES = (25, 50, 75, 90, 95, 99)


def summarize(values_ns: Iterable[int]) -> Stats | None:
    """Statistics of a sample of nanosecond values; None for an empty sample."""
    ordered = sorted(values_ns)
    if not ordered:
        return None
    return summarize_sorted(ordered, len(ordered), sum(ordered))


def summarize_column(values_ns: "array[int]", shift: int = 0) -> Stats | None:
    """``summarize`` of a column of values minus ``shift``, without a list of them all.

    A long column is sorted a chunk at a time, in place (the column's order
    is lost, not its values), and the chunks merged, so a session of millions
    of packets needs octets, not objects.
    """
    if not values_ns:
        return None
    count = len(values_ns)
    if count <= CHUNK:
        ordered: Iterable[int] = sorted(values_ns)
    else:
        for start in range(0, count, CHUNK):
            values_ns[start : start + CHUNK] = array("q", sorted(values_ns[start : start + CHUNK]))
        view = memoryview(values_ns)  # the chunks without copies
        ordered = heapq.merge(*(view[start : start + CHUNK] for start in range(0, count, CHUNK)))
    return summarize_sorted(ordered, count, sum(values_ns), shift)


def summarize_sorted(ordered: Iterable[int], count: int, total: int, shift: int = 0) -> Stats:
    """Statistics of ``count`` ascending values summing to ``total``, each minus ``shift``."""
    ranks = {p: max(-(-p * count // 100), 1) for p in _PERCENTILES}  # nearest rank, 1-based
    wanted = set(ranks.values())
    by_rank: dict[int, int] = {}
    first = last = 0
    for rank, value in enumerate(ordered, 1):
        if rank == 1:
            first = value
        if rank in wanted:
            by_rank[rank] = value
        last = value
    at = {p: seconds(by_rank[rank] - shift) for p, rank in ranks.items()}
    return Stats(
        count=count,
        min=seconds(first - shift),
        p25=at[25],
        median=at[50],
        p75=at[75],
        p90=at[90],
        p95=at[95],
        p99=at[99],
        max=seconds(last - shift),
        mean=(total - shift * count) / count / NS_PER_S,
    )
