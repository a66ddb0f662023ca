"""The link emulator's decisions, without sockets or clocks (sans-I/O, like otwamp's machines).

One :class:`Direction` per way through the link. The driver (``emulator.py``) hands it each
impaired frame with the kernel's receive time (``arrive``), asks when the next frame is due
(``next_due``), takes the frames due (``pop_due``) and reports when it actually sent each one
(``sent``). Every decision comes from a seeded PRNG, drawn the same way for every packet, so a
seed and a packet's position in its direction fix what happens to it whatever the knobs.

What is counted is what was done: drops, copies, packets held back, and reordering as the
receiver sees it (RFC 4737 §3.3, per flow, over first copies, using the order the packets
entered the link as their sequence numbers), plus the delay each frame really got (sent time
minus kernel receive time) and how late the emulator sent it against its plan.
"""

import heapq
import math
import random
import statistics
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

NS_PER_US = 1_000

Flow = Hashable
JitterShape = Literal["uniform", "normal"]


@dataclass(frozen=True)
class Impairment:
    """What one direction does to the UDP datagrams crossing it.

    ``delay_us`` is added to every packet, plus a jitter of at most ``jitter_us`` either way
    (``uniform``, or ``normal`` with sigma = jitter_us / 3, clipped at ±jitter_us). Packets
    leave in the order they came (FIFO: a packet is never sent before the one ahead of it, so
    jitter alone never reorders) except those held back: with probability ``reorder`` a packet
    leaves after the ``reorder_gap`` packets that follow it, or ``reorder_timeout_us`` after
    it was due if fewer follow. ``loss`` and ``duplicate`` are Bernoulli probabilities (a
    duplicate leaves right after its original).
    """

    delay_us: float = 0.0
    jitter_us: float = 0.0
    jitter: JitterShape = "uniform"
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_gap: int = 1
    reorder_timeout_us: float = 100_000.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, not {getattr(self, name)}")
        if self.delay_us < 0 or self.jitter_us < 0 or self.reorder_timeout_us < 0:
            raise ValueError("delay, jitter and reorder timeout must not be negative")
        if self.jitter not in ("uniform", "normal"):
            raise ValueError(f"jitter shape must be uniform or normal, not {self.jitter!r}")
        if self.reorder_gap < 1:
            raise ValueError("reorder gap must be at least one packet")


@dataclass(frozen=True)
class Frame:
    """One copy of a packet to send: ``copy`` 0 is the original, 1 its duplicate."""

    data: bytes
    flow: Flow
    index: int
    t_in: int
    due: int
    copy: int
    held: bool


@dataclass
class _Held:
    frames: list[Frame]
    waiting_for: int
    deadline: int


def summary(values: list[int]) -> dict[str, float] | None:
    """Count, mean, stdev, min, median, p90, p99 and max of nanosecond values, in µs."""
    if not values:
        return None
    ordered = sorted(values)
    us = [v / NS_PER_US for v in ordered]
    return {
        "count": len(us),
        "mean": statistics.fmean(us),
        "stdev": statistics.pstdev(us),
        "min": us[0],
        "median": us[len(us) // 2],
        "p90": us[math.ceil(0.90 * len(us)) - 1],
        "p99": us[math.ceil(0.99 * len(us)) - 1],
        "max": us[-1],
    }


@dataclass
class Tally:
    """What was done to one direction's packets, or one flow's."""

    arrived: int = 0
    dropped: int = 0
    duplicated: int = 0
    held: int = 0
    sent: int = 0
    reordered: int = 0
    delay_ns: list[int] = field(default_factory=list)
    drawn_ns: list[int] = field(default_factory=list)
    late_ns: list[int] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "arrived": self.arrived,
            "dropped": self.dropped,
            "duplicated": self.duplicated,
            "held": self.held,
            "sent": self.sent,
            "reordered": self.reordered,
            "delay_us": summary(self.delay_ns),
            "drawn_us": summary(self.drawn_ns),
            "late_us": summary(self.late_ns),
        }


@dataclass
class _FlowState:
    tally: Tally = field(default_factory=Tally)
    next_index: int = 0
    next_expected: int = 0
    seen_first: bool = False


class Direction:
    """One way through the link: decides, schedules and counts (see the module docstring)."""

    def __init__(self, name: str, impairment: Impairment, seed: int) -> None:
        self.name = name
        self.impairment = impairment
        # Not secrets: the point is a reproducible, seeded sequence of decisions.
        self._rng = random.Random(f"{seed}/{name}")
        self._queue: list[tuple[int, int, Frame]] = []
        self._order = 0
        self._fifo_tail = 0
        self._held: list[_Held] = []
        self._flows: dict[Flow, _FlowState] = {}
        self.tally = Tally()

    def _draws(self) -> tuple[bool, bool, bool, float]:
        """Loss, duplicate, hold and jitter for one packet: always four draws, in this order."""
        knobs = self.impairment
        lost = self._rng.random() < knobs.loss
        doubled = self._rng.random() < knobs.duplicate
        held = self._rng.random() < knobs.reorder
        bound = knobs.jitter_us
        if knobs.jitter == "normal":
            jitter = max(-bound, min(bound, self._rng.gauss(0.0, bound / 3)))
        else:
            jitter = self._rng.uniform(-bound, bound)
        return lost, doubled, held, jitter

    def arrive(self, data: bytes, flow: Flow, t_in: int) -> None:
        """A frame of ``flow`` entered the link at ``t_in`` (ns, the kernel's receive time)."""
        state = self._flows.setdefault(flow, _FlowState())
        index = state.next_index
        state.next_index += 1
        tallies = (self.tally, state.tally)
        for tally in tallies:
            tally.arrived += 1
        lost, doubled, held, jitter = self._draws()
        if lost:
            for tally in tallies:
                tally.dropped += 1
            return
        drawn = max(0, round((self.impairment.delay_us + jitter) * NS_PER_US))
        due = t_in + drawn
        if not held:
            due = max(due, self._fifo_tail)
            self._fifo_tail = due
        frames = [Frame(data, flow, index, t_in, due, copy, held) for copy in range(1 + doubled)]
        for tally in tallies:
            tally.drawn_ns.append(drawn)
            tally.duplicated += doubled
            tally.held += held
        if held:
            timeout = round(self.impairment.reorder_timeout_us * NS_PER_US)
            self._held.append(_Held(frames, self.impairment.reorder_gap, due + timeout))
            return
        for frame in frames:
            heapq.heappush(self._queue, (due, self._order, frame))
            self._order += 1

    def next_due(self) -> int | None:
        """When ``pop_due`` has something to return next (ns), or None if nothing waits."""
        times = [self._queue[0][0]] if self._queue else []
        times.extend(h.deadline if h.waiting_for > 0 else h.frames[0].due for h in self._held)
        return min(times, default=None)

    def pop_due(self, now: int) -> list[Frame]:
        """The frames to send now, in order; a held packet follows the one that frees it."""
        out: list[Frame] = []
        while self._queue and self._queue[0][0] <= now:
            frame = heapq.heappop(self._queue)[2]
            out.append(frame)
            if frame.copy == 0:
                for held in self._held:
                    held.waiting_for -= 1
            out.extend(self._release(now))
        out.extend(self._release(now))
        return out

    def _release(self, now: int) -> list[Frame]:
        ready: list[Frame] = []
        keep: list[_Held] = []
        for held in self._held:
            if held.frames[0].due <= now and (held.waiting_for <= 0 or held.deadline <= now):
                ready.extend(held.frames)
            else:
                keep.append(held)
        self._held = keep
        return ready

    def sent(self, frame: Frame, t_out: int) -> None:
        """``frame`` left at ``t_out`` (ns): count it, and whether the receiver sees it late."""
        state = self._flows[frame.flow]
        tallies = (self.tally, state.tally)
        for tally in tallies:
            tally.sent += 1
            tally.delay_ns.append(t_out - frame.t_in)
            tally.late_ns.append(t_out - frame.due)
        if frame.copy:
            return
        # RFC 4737 §3.3: reordered when below NextExp; the first packet is in order (§3.6).
        if state.seen_first and frame.index < state.next_expected:
            for tally in tallies:
                tally.reordered += 1
        else:
            state.next_expected = frame.index + 1
            state.seen_first = True

    def pending(self) -> int:
        """Frames still queued or held."""
        return len(self._queue) + sum(len(h.frames) for h in self._held)

    def report(self) -> dict[str, Any]:
        """Totals for the direction, and per flow (keyed by ``str(flow)``)."""
        return {
            **self.tally.report(),
            "flows": {
                str(flow): state.tally.report()
                for flow, state in self._flows.items()
                if state.tally.arrived or state.tally.sent
            },
        }

    def reset(self) -> None:
        """Start counting afresh (queued frames and sequence positions stay)."""
        self.tally = Tally()
        for state in self._flows.values():
            state.tally = Tally()
