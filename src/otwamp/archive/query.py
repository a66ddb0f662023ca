"""Reading the archive: sessions by time, test and target, one session, per-pair summaries.

The same SQL runs on both engines; what SQL cannot do alike on both (types
of sums, booleans) is finished in Python.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otwamp.archive import packets
from otwamp.archive.engines import ArchiveError, Engine, open_engine
from otwamp.archive.rows import typed
from otwamp.archive.schema import COLUMNS
from otwamp.archive.versions import check_readable

SELECT_SESSIONS = f"SELECT id, {', '.join(column.name for column in COLUMNS)} FROM sessions"
SELECT_RECORDS = "SELECT data FROM records WHERE session_id = ?"

# One line per pair and direction, in the spirit of owstats: the delay is the
# round trip for TWAMP and the one-way delay for OWAMP; its mean is weighted
# by the packets each session received.
_DELAY = "CASE WHEN protocol = 'twamp' THEN rtt_{0} ELSE fwd_delay_{0} END"
SELECT_SUMMARY = f"""SELECT source, destination, protocol, direction,
  COUNT(*), COUNT(failure), MIN(start_ns), MAX(end_ns),
  SUM(packets_sent), SUM(packets_received), SUM(packets_lost), SUM(packets_discarded),
  SUM(packets_duplicates), SUM(packets_reordered),
  MIN({_DELAY.format("min")}), SUM({_DELAY.format("mean")} * packets_received),
  SUM(CASE WHEN {_DELAY.format("mean")} IS NULL THEN 0 ELSE packets_received END),
  MAX({_DELAY.format("p95")}), MAX({_DELAY.format("max")}), AVG(fwd_ipdv_jitter),
  COUNT(CASE WHEN fwd_sync THEN 1 END), COUNT(fwd_delay_min)
FROM sessions"""
_PAIR = "source, destination, protocol, direction"
SUMMARY_ORDER = f" GROUP BY {_PAIR} ORDER BY {_PAIR}"


@dataclass(frozen=True, slots=True)
class Filter:
    """Which sessions: started in [since, until) (ns since the epoch), of a test, to a target."""

    since_ns: int | None = None
    until_ns: int | None = None
    test: str | None = None
    target: str | None = None  # the destination
    limit: int | None = None

    def where(self) -> tuple[str, list[Any]]:
        """The WHERE clause and its parameters."""
        conditions: list[tuple[str, Any]] = [
            (condition, value)
            for condition, value in (
                ("start_ns >= ?", self.since_ns),
                ("start_ns < ?", self.until_ns),
                ("test = ?", self.test),
                ("destination = ?", self.target),
            )
            if value is not None
        ]
        if not conditions:
            return "", []
        return " WHERE " + " AND ".join(c for c, _ in conditions), [v for _, v in conditions]


@dataclass(frozen=True, slots=True)
class PairSummary:
    """A pair's sessions over a time range, owstats-like."""

    source: str
    destination: str
    protocol: str
    direction: str | None
    sessions: int
    failed: int
    first_ns: int
    last_ns: int
    sent: int
    received: int
    lost: int
    discarded: int
    duplicates: int
    reordered: int
    delay_min: float | None
    delay_mean: float | None
    delay_p95_max: float | None
    delay_max: float | None
    jitter_mean: float | None
    synchronized: int  # sessions whose one-way (forward) delays were all synchronized
    with_delays: int  # sessions with any one-way (forward) delay

    @property
    def loss(self) -> float | None:
        """Lost packets over those whose fate is known (sent less discarded)."""
        measured = self.sent - self.discarded
        return self.lost / measured if measured else None


class Reader:
    """Read-only access to an archive at the schema version this otwamp writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    async def open(cls, location: str) -> "Reader":
        """A reader for an existing archive; ArchiveError (one line) if it is not one."""
        engine = open_engine(location, create=False)
        try:
            await check_readable(engine)
        except BaseException:
            await engine.close()
            raise
        return cls(engine)

    async def sessions(self, selection: Filter) -> list[tuple[int, dict[str, Any]]]:
        """(id, {column: value}) of the selected sessions, oldest first."""
        where, params = selection.where()
        sql = SELECT_SESSIONS + where + " ORDER BY start_ns, id"
        if selection.limit is not None:
            sql += " LIMIT ?"
            params.append(selection.limit)
        return [(row[0], typed(COLUMNS, row[1:])) for row in await self.engine.query(sql, params)]

    async def session(self, session_id: int) -> dict[str, Any]:
        """One session's {column: value}; ArchiveError if there is none with that id."""
        rows = await self.engine.query(SELECT_SESSIONS + " WHERE id = ?", (session_id,))
        if not rows:
            raise ArchiveError(f"{self.engine.name}: no session {session_id}")
        return typed(COLUMNS, rows[0][1:])

    async def records(self, session_id: int) -> packets.SessionRecord:
        """One session's per-packet records; ArchiveError if they were not kept."""
        values = await self.session(session_id)
        rows = await self.engine.query(SELECT_RECORDS, (session_id,))
        if not rows or values["sid"] is None:
            raise ArchiveError(f"{self.engine.name}: session {session_id} has no records kept")
        return packets.decode(
            bytes(rows[0][0]),
            sid=bytes.fromhex(values["sid"]),
            mode=values["mode"],
            key_source=values["key_source"],
            direction=values["direction"],
        )

    async def summary(self, selection: Filter) -> list[PairSummary]:
        """One PairSummary per source, destination, protocol and direction."""
        where, params = selection.where()
        rows = await self.engine.query(SELECT_SUMMARY + where + SUMMARY_ORDER, params)
        return [_pair(row) for row in rows]

    async def close(self) -> None:
        """Close the connection."""
        await self.engine.close()


def _number(value: Any, kind: type[int] | type[float]) -> Any:
    """SUMs come back as Decimal from PostgreSQL and int or float from SQLite."""
    return None if value is None else kind(value)


def _pair(row: Sequence[Any]) -> PairSummary:
    source, destination, protocol, direction, sessions, failed, first, last = row[:8]
    sent, received, lost, discarded, duplicates, reordered = (
        _number(value, int) or 0 for value in row[8:14]
    )
    delay_min, weighted, weight, p95_max, delay_max, jitter, synchronized, with_delays = row[14:]
    return PairSummary(
        source=source,
        destination=destination,
        protocol=protocol,
        direction=direction,
        sessions=int(sessions),
        failed=int(failed),
        first_ns=int(first),
        last_ns=int(last),
        sent=sent,
        received=received,
        lost=lost,
        discarded=discarded,
        duplicates=duplicates,
        reordered=reordered,
        delay_min=_number(delay_min, float),
        delay_mean=float(weighted) / int(weight) if weighted is not None and weight else None,
        delay_p95_max=_number(p95_max, float),
        delay_max=_number(delay_max, float),
        jitter_mean=_number(jitter, float),
        synchronized=int(synchronized),
        with_delays=int(with_delays),
    )
