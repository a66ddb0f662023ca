"""Send schedules for the Session-Sender.

TWAMP leaves the schedule to the sender (RFC 5357 §3.6); we offer OWAMP's two
kinds (RFC 4656 §3.6): fixed intervals and exponentially distributed gaps
(a Poisson process) with the given mean.
"""

import enum
from typing import Protocol


class Schedule(enum.Enum):
    """How send times are spaced."""

    FIXED = "fixed"
    POISSON = "poisson"


class Exponential(Protocol):
    """A source of exponentially distributed numbers, like ``random.Random``."""

    def expovariate(self, lambd: float, /) -> float: ...


def send_offsets(count: int, interval: float, kind: Schedule, rng: Exponential) -> list[float]:
    """Seconds from the session start at which each of ``count`` packets is due."""
    if count < 0 or interval < 0:
        raise ValueError("count and interval must not be negative")
    if kind is Schedule.FIXED or interval == 0:
        return [seq * interval for seq in range(count)]
    offsets: list[float] = []
    due = 0.0
    for _ in range(count):
        offsets.append(due)
        due += rng.expovariate(1.0 / interval)
    return offsets
