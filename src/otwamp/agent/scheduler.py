"""When each job runs: a sans-I/O scheduler, time passed in (seconds, monotonic).

- ``every``: one session per period, started at a random point of the
  period, so that a mesh does not synchronise; periods missed (the job still
  running, the cap reached) are skipped, never made up in a burst.
- ``continuous``: the next session is started ``LEAD`` seconds before the
  previous one stops sending, so that its first packet follows the previous
  one's last (control set-up and OWAMP's Start Time delay take that long):
  no gap in coverage, as powstream does. So sessions of one job overlap.
- at most ``max_sessions`` at once; what is due waits, earliest first.
- a failed session backs its job off: 5 s doubling to 10 minutes (with
  jitter, archive.store.Backoff); the first success resets it.
- a reload keeps the timing of jobs that did not change; removed jobs are
  no longer started, and their running sessions finish.
"""

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from otwamp.agent.plan import Job
from otwamp.archive.store import Backoff
from otwamp.drivers.owamp_client import START_DELAY

LEAD = START_DELAY + 0.5  # seconds from a session's start to its first packet, at most
TAIL = 1.0  # seconds a session may take after its Timeout: Stop-Sessions and Fetch-Session
BACKOFF = Backoff(first=5.0, most=600.0)


@dataclass
class _Entry:
    job: Job
    due: float  # when it may start next
    period: float = 0.0  # every: the start of the period ``due`` lies in
    running: int = 0
    delays: Iterator[float] | None = field(default=None, repr=False)  # during a back-off


class Scheduler:
    """Which jobs to start now, and when to look again."""

    def __init__(
        self, max_sessions: int, rng: random.Random | None = None, backoff: Backoff = BACKOFF
    ) -> None:
        self.max_sessions = max_sessions
        self.rng = rng or random.Random()
        self.backoff = backoff
        self.running = 0  # sessions started and not finished, removed jobs' included
        self._entries: dict[tuple[str, str], _Entry] = {}

    @property
    def jobs(self) -> tuple[Job, ...]:
        """The jobs scheduled."""
        return tuple(entry.job for entry in self._entries.values())

    def update(self, jobs: Iterable[Job], now: float) -> None:
        """Schedule ``jobs`` from now: unchanged ones keep their timing, new ones start afresh."""
        entries: dict[tuple[str, str], _Entry] = {}
        for job in jobs:
            old = self._entries.get(job.key)
            if old is not None and old.job == job:
                entries[job.key] = old
                continue
            entry = _Entry(job, now, now, old.running if old else 0)
            if job.test.every is not None:  # a random point of the first period
                entry.due = now + self.rng.uniform(0, job.test.every)
            entries[job.key] = entry
        self._entries = entries

    def take_due(self, now: float) -> list[Job]:
        """The jobs to start now (counted as running), earliest due first, within the cap."""
        started: list[Job] = []
        for entry in sorted(self._entries.values(), key=lambda entry: entry.due):
            if self.running >= self.max_sessions or entry.due > now:
                break
            if entry.running >= _limit(entry.job):
                continue
            entry.running += 1
            self.running += 1
            self._next(entry, now)
            started.append(entry.job)
        return started

    def _next(self, entry: _Entry, now: float) -> None:
        """When the job after the one starting now is due."""
        test = entry.job.test
        if test.every is None:
            entry.due = now + max(test.sending - LEAD, 0.0)
            return
        while entry.period <= now:  # the next period that begins after now
            entry.period += test.every
        entry.due = entry.period + self.rng.uniform(0, test.every)

    def finished(self, job: Job, now: float, ok: bool) -> None:
        """A session of ``job`` ended; a failure backs the job off."""
        self.running -= 1
        entry = self._entries.get(job.key)
        if entry is None or entry.job != job:
            return  # removed or changed by a reload meanwhile
        entry.running -= 1
        if ok:
            entry.delays = None
            return
        if entry.delays is None:
            entry.delays = self.backoff.delays()
        delay = next(entry.delays)
        entry.due = max(entry.due, now + delay)
        if entry.job.test.every is not None:
            entry.period = max(entry.period, entry.due - entry.job.test.every)

    def next_due(self) -> float | None:
        """When a job can start next; None while none can until a session ends (or no jobs)."""
        if self.running >= self.max_sessions:
            return None
        return min(
            (entry.due for entry in self._entries.values() if entry.running < _limit(entry.job)),
            default=None,
        )


def _limit(job: Job) -> int:
    """Sessions of ``job`` that may run at once: one, or as many continuous ones as overlap
    (a session lasts LEAD + sending + Timeout + TAIL, and one starts every sending - LEAD)."""
    test = job.test
    if test.every is not None:
        return 1
    return 1 + math.ceil((test.wait + LEAD + TAIL) / max(test.sending - LEAD, 0.1))
