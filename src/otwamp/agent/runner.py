"""Sessions in the agent's event loop: the scheduler says when, the client drivers measure.

Each session is one task running ``ping`` or ``owping`` (the drivers of
``otwamp ping``/``owping``), archived when it ends, failed or not, and fed
to the metrics. A failure is archived with its reason, the words
``otwamp ping`` would print.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from otwamp.agent.config import PROTOCOLS, TestSpec
from otwamp.agent.metrics import AgentMetrics
from otwamp.agent.plan import Job, Plan
from otwamp.agent.scheduler import Scheduler
from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from otwamp.cli.addresses import format_endpoint
from otwamp.cli.measure import network_reason
from otwamp.drivers.owamp_client import OwpingOutcome, owping
from otwamp.drivers.twamp_client import PingOutcome, ping
from otwamp.errors import OtwampError
from otwamp.keys.source import ClientKeySource, KeySourceKind

log = logging.getLogger("otwamp.agent")
Keys = Callable[[TestSpec], ClientKeySource | None]


class Runner:
    """Starts what the scheduler says, at most its cap at once, until stopped."""

    def __init__(
        self,
        scheduler: Scheduler,
        archive: Archive,
        metrics: AgentMetrics | None,
        keys: Keys,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scheduler, self.archive, self.metrics, self.keys = scheduler, archive, metrics, keys
        self.clock = clock
        self.source: str | None = None
        self.tasks: dict[asyncio.Task[None], Job] = {}
        self._wake = asyncio.Event()
        self._stopping = False

    def apply(self, plan: Plan) -> None:
        """Run ``plan`` from now on; running sessions go on (those of removed jobs too)."""
        self.source = plan.source
        self.scheduler.update(plan.jobs, self.clock())
        if self.metrics is not None:
            self.metrics.forget(job.key for job in plan.jobs)
        self._wake.set()

    async def run(self) -> None:
        """Start sessions when due until ``stop``."""
        while not self._stopping:
            for job in self.scheduler.take_due(self.clock()):
                task = asyncio.create_task(self._session(job), name=f"otwamp-agent {job.key}")
                self.tasks[task] = job
                task.add_done_callback(self._done)
            due = self.scheduler.next_due()
            self._wake.clear()
            timeout = None if due is None else max(due - self.clock(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _done(self, task: "asyncio.Task[None]") -> None:
        del self.tasks[task]
        self._wake.set()

    async def stop(self) -> None:
        """Start nothing more and let the running sessions end.

        They are not cut: each ends within its sending time, Timeout and the
        control timeouts, or sooner when its server stops (R14); the drivers
        are not written to be cancelled half-way.
        """
        self._stopping = True
        self._wake.set()
        if self.tasks:
            log.info("waiting for %d running sessions to end", len(self.tasks))
            await asyncio.wait(set(self.tasks))

    async def _session(self, job: Job) -> None:
        """One measurement of ``job``, archived and counted whatever happens."""
        test = job.test
        keys = self.keys(test)
        start_ns = time.time_ns()
        outcome: PingOutcome | OwpingOutcome | None = None
        failure = None
        try:
            settings = job.settings(keys, self.source)
            outcome = await (ping(settings) if test.protocol == "twamp" else owping(settings))
        except OSError as exc:
            where = format_endpoint(job.host, job.port)
            failure = network_reason(exc, where, PROTOCOLS[test.protocol].name)
        except OtwampError as exc:
            failure = str(exc)
        finally:
            measurement = Measurement(
                test=test.name,
                source=self.source or "",
                destination=job.host,
                start_ns=start_ns,
                end_ns=time.time_ns(),
                protocol=test.protocol,
                outcome=outcome,
                failure=failure,
                key_source=str(keys.name if keys else KeySourceKind.NONE),
            )
            self._finished(job, measurement)

    def _finished(self, job: Job, measurement: Measurement) -> None:
        problem = measurement.failure or (measurement.outcome and measurement.outcome.problem)
        if problem:
            log.warning("%s to %s: %s", job.test.name, job.target, problem)
        else:
            log.debug("%s to %s: done", job.test.name, job.target)
        self.archive.store(measurement)
        if self.metrics is not None:
            self.metrics.observe(measurement, job.target)
        self.scheduler.finished(job, self.clock(), ok=measurement.failure is None)
