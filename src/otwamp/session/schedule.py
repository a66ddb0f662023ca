"""Send schedules for the Session-Sender.

TWAMP leaves the schedule to the sender (RFC 5357 §3.6); we offer OWAMP's two
kinds (RFC 4656 §3.6): fixed intervals and exponentially distributed gaps
(a Poisson process) with the given mean.
"""

import enum
from array import array
from collections.abc import Iterator
from typing import Protocol


class Schedule(enum.Enum):
    """How send times are spaced."""

    FIXED = "fixed"
    POISSON = "poisson"


class Exponential(Protocol):
    """A source of exponentially distributed numbers, like ``random.Random``."""

    def expovariate(self, lambd: float, /) -> float: ...


def send_offsets(count: int, interval: float, kind: Schedule, rng: Exponential) -> "array[float]":
    """Seconds from the session start at which each of ``count`` packets is due.

    Machine doubles, 8 octets a packet (a list of floats took 32: 305 MiB for
    a 10,000,000-packet session), built from a generator with no list between.
    """
    if count < 0 or interval < 0:
        raise ValueError("count and interval must not be negative")
    return array("d", _offsets(count, interval, kind, rng))


def _offsets(count: int, interval: float, kind: Schedule, rng: Exponential) -> Iterator[float]:
    if kind is Schedule.FIXED or interval == 0:
        yield from (seq * interval for seq in range(count))
        return
    due = 0.0
    for _ in range(count):
        yield due
        due += rng.expovariate(1.0 / interval)
