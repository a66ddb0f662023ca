"""The scheduler on a fake clock: random starts within periods, continuous coverage, the cap,
back-off, reloads."""

import itertools
import random

import pytest

from otwamp.agent.config import TestSpec as Spec
from otwamp.agent.plan import Job
from otwamp.agent.scheduler import LEAD, Scheduler
from otwamp.archive.store import Backoff
from otwamp.keys.ikev2 import Policy
from otwamp.session.schedule import Schedule
from otwamp.wire.registry import TwampMode


def spec(name: str, every: float | None = 60.0, packets: int = 100, interval: float = 0.1) -> Spec:
    return Spec(
        name=name,
        protocol="owamp" if every is None else "twamp",
        targets=("mesh",),
        sources=None,
        modes=(TwampMode.UNAUTHENTICATED,),
        key_source="none",
        passphrase=None,
        ike_policy=Policy.INITIATE,
        packets=packets,
        interval=interval,
        schedule=Schedule.FIXED,
        padding=None,
        dscp=0,
        wait=2.0,
        every=every,
        directions=("to", "from"),
        line=1,
    )


def job(test: Spec, target: str = "b") -> Job:
    return Job(test, target, "192.0.2.2", 862)


def run(
    scheduler: Scheduler, until: float, duration: float, step: float = 0.01
) -> list[tuple[float, Job]]:
    """Advance a fake clock; each session takes ``duration`` s and succeeds."""
    now, started, ends = 0.0, [], []
    while now < until:
        for finished in [item for item in ends if item[0] <= now]:
            ends.remove(finished)
            scheduler.finished(finished[1], now, ok=True)
        for item in scheduler.take_due(now):
            started.append((now, item))
            ends.append((now + duration, item))
        now = round(now + step, 6)
    return started


def test_every_starts_once_per_period_at_a_random_point() -> None:
    scheduler = Scheduler(16, random.Random(1))
    scheduler.update([job(spec("t", every=10.0))], 0.0)
    starts = [when for when, _ in run(scheduler, 1000.0, duration=1.0, step=0.05)]
    periods = [int(when // 10) for when in starts]
    assert periods == list(range(100))  # exactly one per period, none skipped
    offsets = [when % 10 for when in starts]
    assert min(offsets) < 1.0 and max(offsets) > 9.0  # spread over the whole period
    assert 4.0 < sum(offsets) / len(offsets) < 6.0


def test_a_mesh_does_not_start_in_step() -> None:
    scheduler = Scheduler(64, random.Random(2))
    scheduler.update([job(spec("t", every=60.0), f"m{n}") for n in range(40)], 0.0)
    firsts: dict[str, float] = {}
    for when, started in run(scheduler, 61.0, duration=1.0, step=0.1):
        firsts.setdefault(started.target, when)
    assert len(firsts) == 40 and max(firsts.values()) <= 60.0
    assert len({int(when) for when in firsts.values()}) > 25  # in 40 different seconds, nearly


def test_continuous_sessions_follow_back_to_back() -> None:
    test = spec("c", every=None, packets=100, interval=0.1)  # 10 s of sending
    scheduler = Scheduler(16, random.Random(3))
    scheduler.update([job(test)], 0.0)
    started = run(scheduler, 100.0, duration=13.0)  # sending, the wait and the fetch
    starts = [when for when, _ in started]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # The next one starts LEAD s before this one's sending ends: set-up and the Start Time delay
    # take that long, so its first packet follows this one's last, with no gap in coverage.
    assert gaps and all(gap == pytest.approx(test.sending - LEAD, abs=0.011) for gap in gaps)
    assert len(starts) >= 100 / (test.sending - LEAD) - 1


def test_the_cap_holds_and_what_waits_starts_earliest_first() -> None:
    scheduler = Scheduler(3, random.Random(4))
    jobs = [job(spec("t", every=1.0), f"m{n}") for n in range(10)]
    scheduler.update(jobs, 0.0)
    running: list[Job] = []
    most = 0
    now = 0.0
    while now < 30.0:
        running += scheduler.take_due(now)
        most = max(most, len(running))
        assert scheduler.running == len(running) <= 3
        if running and int(now * 100) % 50 == 0:  # one ends every 0.5 s
            scheduler.finished(running.pop(0), now, ok=True)
        now = round(now + 0.01, 6)
    assert most == 3
    assert scheduler.next_due() is None or scheduler.running < 3


def test_failures_back_off_exponentially_up_to_a_bound() -> None:
    backoff = Backoff(first=5.0, most=40.0, jitter=0.0)
    scheduler = Scheduler(16, random.Random(5), backoff)
    failing = job(spec("t", every=1.0))
    scheduler.update([failing], 0.0)
    now, attempts = 0.0, []
    while now < 400.0:
        for item in scheduler.take_due(now):
            attempts.append(now)
            scheduler.finished(item, now, ok=False)  # fails at once (unreachable)
        now = round(now + 0.01, 6)
    gaps = [round(b - a) for a, b in itertools.pairwise(attempts)]
    # the delay doubles from 5 s to the bound, 40 s; the random start within a period adds < 1 s
    assert gaps[:4] == pytest.approx([5, 10, 20, 40], abs=1)
    assert all(39 <= gap <= 41 for gap in gaps[3:])


def test_a_success_ends_the_back_off() -> None:
    scheduler = Scheduler(16, random.Random(6), Backoff(first=5.0, most=40.0, jitter=0.0))
    test = spec("c", every=None, packets=30, interval=0.1)  # 3 s sending: next due after 2 s
    item = job(test)
    scheduler.update([item], 0.0)
    assert scheduler.take_due(0.0) == [item]
    scheduler.finished(item, 0.5, ok=False)
    assert scheduler.take_due(5.4) == []
    assert scheduler.take_due(5.5) == [item]  # 5 s after the failure
    scheduler.finished(item, 9.0, ok=True)
    assert scheduler.next_due() == pytest.approx(5.5 + test.sending - LEAD)


def test_a_reload_keeps_timing_and_drops_removed_jobs() -> None:
    scheduler = Scheduler(16, random.Random(7))
    kept, removed = job(spec("t", every=60.0), "b"), job(spec("t", every=60.0), "c")
    scheduler.update([kept, removed], 0.0)
    due = scheduler.next_due()
    started = scheduler.take_due(61.0)
    assert set(started) == {kept, removed}
    added = job(spec("u", every=30.0), "b")
    scheduler.update([kept, added], 62.0)  # "c" left the mesh, test "u" is new
    assert scheduler.jobs == (kept, added)
    scheduler.finished(removed, 63.0, ok=True)  # its running session ends as usual
    assert scheduler.running == 1
    scheduler.finished(kept, 63.0, ok=True)
    assert due is not None and scheduler.running == 0
    starts: dict[tuple[str, str], float] = {}
    now = 63.0
    while now < 200.0:
        for item in scheduler.take_due(now):
            starts.setdefault(item.key, now)
            scheduler.finished(item, now, ok=True)
        now = round(now + 0.05, 6)
    assert ("t", "c") not in starts
    assert 62.0 <= starts[added.key] <= 92.0  # a random point of its first period
    assert 120.0 <= starts[kept.key] < 180.0  # the period after the one it last ran in
