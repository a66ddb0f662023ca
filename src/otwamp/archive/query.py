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


# --- the dashboard's reads (otwamp web, docs/WEB.md) ----------------------------------

# Per time bucket of one pair: the figures its charts draw. Within a bucket the
# minimum is the minimum, p95 the worst session's, the median and jitter the
# mean of the sessions' (a median of medians cannot be had from summaries);
# a bucket of one session holds exactly that session's values.
BUCKET_FIGURES: tuple[tuple[str, str, type[int] | type[float]], ...] = (
    ("sessions", "COUNT(*)", int),
    ("failed", "COUNT(failure)", int),
    ("first_ns", "MIN(start_ns)", int),
    ("rtt_min", "MIN(rtt_min)", float),
    ("rtt_median", "AVG(rtt_median)", float),
    ("rtt_p95", "MAX(rtt_p95)", float),
    *(
        figure
        for way in ("fwd", "bwd")
        for figure in (
            (f"{way}_delay_min", f"MIN({way}_delay_min)", float),
            (f"{way}_delay_median", f"AVG({way}_delay_median)", float),
            (f"{way}_delay_p95", f"MAX({way}_delay_p95)", float),
            (f"{way}_jitter", f"AVG({way}_ipdv_jitter)", float),
            (f"{way}_unsync", f"COUNT(CASE WHEN NOT {way}_sync THEN 1 END)", int),
        )
    ),
    ("lost", "SUM(packets_lost)", int),
    ("measured", "SUM(packets_sent - packets_discarded)", int),
)
_PAIR_WHERE = (
    " WHERE source = ? AND destination = ? AND protocol = ? AND start_ns >= ? AND start_ns < ?"
)
# A whole number below a non-negative value (SQLite's CAST truncates, PostgreSQL's rounds).
_FLOOR = {"sqlite": "CAST({} AS BIGINT)", "postgresql": "CAST(FLOOR({}) AS BIGINT)"}
# The delay a pair's histogram counts: the round trip (TWAMP), the one-way delay (OWAMP).
_HISTOGRAM_DELAY = "CASE WHEN protocol = 'twamp' THEN rtt_median ELSE fwd_delay_median END"
_LATEST = f"""SELECT s.id, {", ".join("s." + column.name for column in COLUMNS)}
FROM sessions s JOIN (
  SELECT source, destination, protocol, COALESCE(direction, '') AS way, MAX(start_ns) AS last
  FROM sessions WHERE start_ns >= ? GROUP BY source, destination, protocol, direction
) l ON s.source = l.source AND s.destination = l.destination AND s.protocol = l.protocol
  AND COALESCE(s.direction, '') = l.way AND s.start_ns = l.last
ORDER BY s.source, s.destination, s.protocol, s.direction, s.id"""


@dataclass(frozen=True, slots=True)
class Pair:
    """One measured path: the host that measured, the host measured, the protocol."""

    source: str
    destination: str
    protocol: str  # "twamp" or "owamp"

    def where(self, since_ns: int, until_ns: int) -> tuple[str, list[Any]]:
        """The WHERE clause of its sessions started in [since, until), and its parameters."""
        return _PAIR_WHERE, [self.source, self.destination, self.protocol, since_ns, until_ns]


@dataclass(frozen=True, slots=True)
class Histogram:
    """Sessions counted by their delay (seconds) in ``len(counts)`` equal bins from low to high."""

    low: float
    high: float
    counts: dict[str | None, list[int]]  # per direction (None: TWAMP's round trip)


async def latest(reader: Reader, since_ns: int) -> list[tuple[int, dict[str, Any]]]:
    """The newest session started since ``since_ns`` of each pair and direction."""
    rows = await reader.engine.query(_LATEST, (since_ns,))
    return [(row[0], typed(COLUMNS, row[1:])) for row in rows]


async def buckets(
    reader: Reader, pair: Pair, since_ns: int, until_ns: int, width_ns: int
) -> list[dict[str, Any]]:
    """A pair's sessions in [since, until) by time bucket of ``width_ns`` and direction.

    Each {figure: value} of BUCKET_FIGURES has also its ``bucket`` (0 from
    ``since_ns``) and ``direction``; oldest first.
    """
    where, params = pair.where(since_ns, until_ns)
    figures = ", ".join(sql for _, sql, _ in BUCKET_FIGURES)
    sql = (
        f"SELECT (start_ns - ?) / ? AS bucket, direction, {figures} FROM sessions{where}"
        " GROUP BY bucket, direction ORDER BY bucket, direction"
    )
    rows = await reader.engine.query(sql, [since_ns, width_ns, *params])
    kinds = [(name, kind) for name, _, kind in BUCKET_FIGURES]
    return [
        {"bucket": int(row[0]), "direction": row[1]}
        | {name: _number(value, kind) for (name, kind), value in zip(kinds, row[2:], strict=True)}
        for row in rows
    ]


async def delay_histogram(
    reader: Reader, pair: Pair, since_ns: int, until_ns: int, bins: int
) -> Histogram | None:
    """The sessions' median delays in [since, until) counted in ``bins`` bins; None if none."""
    where, params = pair.where(since_ns, until_ns)
    low, high = (
        await reader.engine.query(
            f"SELECT MIN({_HISTOGRAM_DELAY}), MAX({_HISTOGRAM_DELAY}) FROM sessions{where}", params
        )
    )[0]
    if low is None:
        return None
    low, high = float(low), float(high)
    scale = bins / (high - low) if high > low else 0.0
    index = _FLOOR[reader.engine.dialect].format(f"({_HISTOGRAM_DELAY} - ?) * ?")
    rows = await reader.engine.query(
        f"SELECT direction, {index} AS bin, COUNT(*) FROM sessions{where}"
        f" AND {_HISTOGRAM_DELAY} IS NOT NULL GROUP BY direction, bin",
        [low, scale, *params],
    )
    counts: dict[str | None, list[int]] = {}
    for direction, position, count in rows:
        counts.setdefault(direction, [0] * bins)[min(int(position), bins - 1)] += int(count)
    return Histogram(low, high, counts)


async def pair_sessions(
    reader: Reader, pair: Pair, since_ns: int, until_ns: int, limit: int, offset: int = 0
) -> tuple[int, list[tuple[int, dict[str, Any], bool]]]:
    """How many sessions of a pair started in [since, until), and (id, values, records kept)
    of ``limit`` of them, newest first, after skipping ``offset``."""
    where, params = pair.where(since_ns, until_ns)
    ((total,),) = await reader.engine.query(f"SELECT COUNT(*) FROM sessions{where}", params)
    columns = ", ".join("s." + column.name for column in COLUMNS)
    rows = await reader.engine.query(
        f"SELECT s.id, {columns}, r.session_id FROM sessions s"
        f" LEFT JOIN records r ON r.session_id = s.id{where}"
        " ORDER BY s.start_ns DESC, s.id DESC LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return int(total), [(row[0], typed(COLUMNS, row[1:-1]), row[-1] is not None) for row in rows]
