"""Delay and delay variation of one series of packets (RFC 3393, RFC 5481).

These helpers know nothing of TWAMP: a series is (sequence number, delay)
pairs in the sending order's numbering, so the OWAMP receiver's records and
each direction of a TWAMP session use them alike.
"""

from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from otwamp.results.records import Stamp
from otwamp.results.stats import NS_PER_S, Stats, summarize, summarize_column

MISSING = -(1 << 63)  # a column's "no delay": the packet did not arrive


class DelaySample(NamedTuple):
    """One packet's one-way delay with the sync flags and error of its two stamps."""

    seq: int
    delay_ns: int
    sync: bool  # both stamps synchronized (RFC 4656 §4.1.2 S bit)
    error: float  # combined Error Estimate of both stamps, seconds

    @classmethod
    def between(cls, seq: int, sent: Stamp, received: Stamp) -> "DelaySample":
        """Received minus sent, synchronized only if both stamps are (RFC 4656 §4.1.2)."""
        return cls(
            seq, received.ns - sent.ns, sent.sync and received.sync, sent.error + received.error
        )


@dataclass(frozen=True, slots=True)
class DelaySummary:
    """Delay, IPDV, jitter and PDV of one series; every field None when it is empty."""

    delay: Stats | None
    ipdv: Stats | None  # RFC 3393 §2.4 / RFC 5481 §4.1, consecutive packets
    jitter: float | None  # mean |IPDV|, seconds (RFC 3393 §4.5)
    pdv: Stats | None  # RFC 5481 §4.2, delay minus minimum delay


@dataclass(frozen=True, slots=True)
class OneWaySummary:
    """A one-way delay series with its clock quality (RFC 4656 §4.1.2)."""

    delays: DelaySummary
    sync: bool  # every stamp involved was synchronized; False for an empty series
    error: float | None  # largest combined Error Estimate, seconds


def ipdv_values(delays_by_seq: Mapping[int, int]) -> list[int]:
    """IPDV(i) = D(i) - D(i-1) for each i whose predecessor arrived (RFC 3393 §4.1).

    Pairs with a lost packet are left out: the statistics are conditional on
    both packets of the pair arriving, as RFC 3393 §4.1 suggests.
    """
    return [
        delay - delays_by_seq[seq - 1]
        for seq, delay in sorted(delays_by_seq.items())
        if seq - 1 in delays_by_seq
    ]


def pdv_values(delays: Iterable[int]) -> list[int]:
    """PDV(i) = D(i) - D(min) for each packet of the series (RFC 5481 §4.2)."""
    values = list(delays)
    if not values:
        return []
    floor = min(values)
    return [delay - floor for delay in values]


def mean_abs(values_ns: Sequence[int]) -> float | None:
    """Mean absolute value in seconds, the IPDV jitter of RFC 3393 §4.5."""
    if not values_ns:
        return None
    return sum(abs(value) for value in values_ns) / len(values_ns) / NS_PER_S


def summarize_delays(series: Iterable[tuple[int, int]]) -> DelaySummary:
    """Summarize (seq, delay_ns) pairs; a repeated seq keeps its first delay (RFC 4737 §3.6)."""
    delays_by_seq: dict[int, int] = {}
    for seq, delay in series:
        delays_by_seq.setdefault(seq, delay)
    ipdv = ipdv_values(delays_by_seq)
    return DelaySummary(
        delay=summarize(delays_by_seq.values()),
        ipdv=summarize(ipdv),
        jitter=mean_abs(ipdv),
        pdv=summarize(pdv_values(delays_by_seq.values())),
    )


def summarize_delay_column(
    by_seq: "array[int]", delays: Callable[[], Iterable[int]]
) -> DelaySummary:
    """``summarize_delays`` of a column indexed by sequence number, ``MISSING`` where none.

    ``delays`` gives the column's delays again, in any order. The column is
    used up: its IPDVs replace it in place, then those delays do, so a
    session of millions of packets needs this one column of 8 octets a
    sequence number and no object a packet (``results.metrics``).
    """
    count, previous = 0, MISSING
    for value in by_seq:  # writes only where it has read
        if MISSING not in (value, previous):
            by_seq[count] = value - previous  # RFC 3393 §4.1: both packets arrived
            count += 1
        previous = value
    del by_seq[count:]
    jitter = mean_abs(by_seq)
    ipdv = summarize_column(by_seq)
    del by_seq[:]
    by_seq.extend(delays())
    delay = summarize_column(by_seq)
    pdv = summarize_column(by_seq, min(by_seq)) if by_seq else None  # RFC 5481 §4.2
    return DelaySummary(delay=delay, ipdv=ipdv, jitter=jitter, pdv=pdv)


def summarize_one_way(samples: Iterable[tuple[int, int, bool, float]]) -> OneWaySummary:
    """Summarize (seq, delay_ns, sync, error) samples, e.g. DelaySample (RFC 4656 §4.1.2)."""
    kept = [DelaySample(*sample) for sample in samples]
    return OneWaySummary(
        delays=summarize_delays((sample.seq, sample.delay_ns) for sample in kept),
        sync=bool(kept) and all(sample.sync for sample in kept),
        error=max((sample.error for sample in kept), default=None),
    )
