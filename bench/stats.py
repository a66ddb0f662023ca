"""Distributions of nanosecond samples as JSON objects in microseconds.

Percentiles use otwamp's own nearest-rank method, so a median here is the
same value ``otwamp ping --json`` would print for the same sample.
"""

from collections.abc import Iterable
from typing import Any

from otwamp.results.stats import percentile

JsonObject = dict[str, Any]


def _us(ns: float) -> float:
    return round(ns / 1000, 3)


def distribution_us(values_ns: Iterable[int]) -> JsonObject | None:
    """{count, min_us, median_us, p95_us, p99_us, max_us, mean_us}; None for no sample."""
    ordered = sorted(values_ns)
    if not ordered:
        return None
    return {
        "count": len(ordered),
        "min_us": _us(ordered[0]),
        "median_us": _us(percentile(ordered, 50)),
        "p95_us": _us(percentile(ordered, 95)),
        "p99_us": _us(percentile(ordered, 99)),
        "max_us": _us(ordered[-1]),
        "mean_us": _us(sum(ordered) / len(ordered)),
    }


def median(values: Iterable[float]) -> float | None:
    """Nearest-rank median of a few floats (e.g. the medians of repeated runs)."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[(len(ordered) + 1) // 2 - 1]
