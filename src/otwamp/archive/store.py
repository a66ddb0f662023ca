"""The writer: ``archive.store(measurement)`` queues, one task writes, a spool rides out outages.

``store`` never waits for the database: it turns the measurement into rows
and appends them to a bounded in-memory spool, and one background task
writes the spool in batches, one transaction each. When the archive cannot
be reached (PostgreSQL restarting, a SQLite file locked) the task retries
with exponential back-off (0.5 s doubling to 60 s, with jitter) while the
spool keeps filling. Rows carry a unique id chosen here and are inserted
with ON CONFLICT DO NOTHING, so a batch whose commit succeeded but whose
acknowledgement was lost is not stored twice when retried.

The spool's bound: ``spool_sessions`` rows (10,000 by default, about 40
minutes of an agent measuring 15 peers with TWAMP and two-way OWAMP every
10 s) and ``spool_records`` octets of per-packet blobs (64 MiB). Past the
bound the oldest records are given up first, then the oldest rows, each
counted and logged. The spool is in memory: an agent that stops while the
archive is down loses what it holds (docs/ARCHIVE.md).
"""

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import islice

from otwamp.archive.engines import ArchiveError, ArchiveUnavailable, Engine, open_engine
from otwamp.archive.packets import FORMAT as RECORDS_FORMAT
from otwamp.archive.rows import ArchiveRow, Measurement, archive_rows
from otwamp.archive.schema import COLUMNS
from otwamp.archive.versions import migrate

log = logging.getLogger("otwamp.archive")

SPOOL_SESSIONS = 10_000
SPOOL_RECORDS = 64 * 1024 * 1024
BATCH = 200  # rows per transaction

_NAMES = ", ".join(column.name for column in COLUMNS)
INSERT_SESSION = (
    f"INSERT INTO sessions ({_NAMES}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (uid) DO NOTHING"
)
INSERT_RECORDS = (
    "INSERT INTO records (session_id, format, data) SELECT id, ?, ? FROM sessions "
    "WHERE uid = ? ON CONFLICT (session_id) DO NOTHING"
)
DELETE_RECORDS = (
    "DELETE FROM records WHERE session_id IN (SELECT id FROM sessions WHERE start_ns < ?)"
)
DELETE_SESSIONS = "DELETE FROM sessions WHERE start_ns < ?"
NS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts to reach the archive: first, doubling up to most, ±jitter."""

    first: float = 0.5
    most: float = 60.0
    jitter: float = 0.1  # a fraction of the delay, so that a mesh does not retry in step

    def delays(self) -> Iterator[float]:
        """The delays of one outage, endless."""
        delay = self.first
        while True:
            yield delay * (1 + random.uniform(-self.jitter, self.jitter))
            delay = min(delay * 2, self.most)


@dataclass(frozen=True, slots=True)
class Retention:
    """How many days sessions and their per-packet records are kept (None: forever)."""

    sessions_days: float | None = None
    records_days: float | None = None

    def __post_init__(self) -> None:
        for days in (self.sessions_days, self.records_days):
            if days is not None and days <= 0:
                raise ArchiveError(f"retention of {days} days: must be positive")


class Archive:
    """Where an agent stores its results; see the module docstring for the spool."""

    def __init__(
        self,
        engine: Engine,
        *,
        keep_records: bool = False,
        spool_sessions: int = SPOOL_SESSIONS,
        spool_records: int = SPOOL_RECORDS,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.engine, self.keep_records, self.backoff = engine, keep_records, backoff
        self.spool_sessions, self.spool_records = spool_sessions, spool_records
        self.stored = 0  # rows written
        self.lost = 0  # rows given up: spool full or refused by the archive
        self.records_lost = 0  # records blobs given up to the spool's bound
        self.retries = 0  # failed attempts to write
        self._spool: deque[ArchiveRow] = deque()
        self._records_bytes = 0
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._migrated = False
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def at(cls, location: str, **options: object) -> "Archive":
        """A writer for a location (a SQLite path, created if missing, or a postgresql:// URL)."""
        return cls(open_engine(location, create=True), **options)  # type: ignore[arg-type]

    def start(self) -> None:
        """Start the writing task (in the running event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._write_loop(), name="otwamp-archive")

    def store(self, measurement: Measurement) -> None:
        """Queue a finished measurement's rows; returns at once, never raises for the archive."""
        for row in archive_rows(measurement, keep_records=self.keep_records):
            self._append(row)
        self._empty.clear()
        self._wake.set()
        self.start()

    @property
    def spooled(self) -> int:
        """Rows waiting to be written."""
        return len(self._spool)

    def _append(self, row: ArchiveRow) -> None:
        self._spool.append(row)
        self._records_bytes += len(row.records or b"")
        while len(self._spool) > self.spool_sessions:
            oldest = self._spool.popleft()
            self._records_bytes -= len(oldest.records or b"")
            self.lost += 1
            log.warning(
                "archive spool full (%d sessions): oldest session dropped", self.spool_sessions
            )
        index = 0
        while self._records_bytes > self.spool_records and index < len(self._spool):
            row = self._spool[index]
            if row.records is not None:
                self._spool[index] = replace(row, records=None)
                self._records_bytes -= len(row.records)
                self.records_lost += 1
                log.warning(
                    "archive spool full (%d octets of records): records dropped", self.spool_records
                )
            index += 1

    async def _write_loop(self) -> None:
        delays = self.backoff.delays()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._spool:
                batch = list(islice(self._spool, BATCH))
                try:
                    await self._write(batch)
                except ArchiveUnavailable as exc:
                    self.retries += 1
                    delay = next(delays)
                    log.warning(
                        "archive unavailable (%s): %d sessions spooled, retrying in %.1f s",
                        exc,
                        len(self._spool),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                except ArchiveError as exc:
                    self.lost += len(batch)
                    log.error("archive refused %d sessions, dropped: %s", len(batch), exc)
                except Exception:  # a bug must not stop the writer for good
                    self.lost += len(batch)
                    log.exception("archive: %d sessions dropped", len(batch))
                else:
                    self.stored += len(batch)
                    delays = self.backoff.delays()
                self._remove(batch)
            self._empty.set()

    def _remove(self, batch: list[ArchiveRow]) -> None:
        """Take a written batch off the spool; the bound may have dropped some of it meanwhile."""
        done = {row.uid for row in batch}
        while self._spool and self._spool[0].uid in done:
            row = self._spool.popleft()
            self._records_bytes -= len(row.records or b"")

    async def _migrated_engine(self) -> Engine:
        """The engine, once the archive is at the latest schema version."""
        if not self._migrated:
            await migrate(self.engine)
            self._migrated = True
        return self.engine

    async def _write(self, batch: list[ArchiveRow]) -> None:
        engine = await self._migrated_engine()
        statements: list[tuple[str, tuple[object, ...]]] = []
        for row in batch:
            statements.append((INSERT_SESSION, row.values))
            if row.records is not None:
                statements.append((INSERT_RECORDS, (RECORDS_FORMAT, row.records, row.uid)))
        await engine.transaction(statements)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until the spool is written; False if ``timeout`` seconds pass first."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def purge(self, retention: Retention, now_ns: int) -> None:
        """Delete what is older than the retention: records first, they may go sooner.

        Raises ArchiveUnavailable when the archive cannot be reached: try later.
        """
        cutoffs = [
            None if days is None else now_ns - int(days * NS_PER_DAY)
            for days in (retention.records_days, retention.sessions_days)
        ]
        records, sessions = cutoffs
        if sessions is not None:
            records = sessions if records is None else max(records, sessions)
        statements: list[tuple[str, tuple[object, ...]]] = []
        if records is not None:
            statements.append((DELETE_RECORDS, (records,)))
        if sessions is not None:
            statements.append((DELETE_SESSIONS, (sessions,)))
        if statements:
            await (await self._migrated_engine()).transaction(statements)

    async def close(self, timeout: float = 5.0) -> None:
        """Write what is spooled (for at most ``timeout`` seconds), stop, close the engine."""
        if self._spool and not await self.flush(timeout):
            log.error("archive: %d sessions not written before closing", len(self._spool))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.engine.close()
