"""Finished measurements as archive rows, and archive rows as JSON documents again.

A row holds exactly the ``--json`` summary ``otwamp ping`` or ``owping``
prints (results/report.py, results/owamp.py), flattened into the columns of
``schema.SUMMARY``, plus what the measurement's context adds: test name,
source, destination, times, the IKE SA's SPIs, the failure. Reading a row
back gives the same summary object, so stored and printed results compare
equal key for key.

A TWAMP run is one row. An OWAMP run is one row per direction measured
(each is its own session with its own SID): ``direction`` "to" or "from" the
destination, its path figures in the ``fwd_`` columns. A run that produced
no session at all (refused, unreachable) is one row with its failure.
"""

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from otwamp.archive import packets
from otwamp.archive.schema import SUMMARY, Column
from otwamp.cli.report import ike_sa_json
from otwamp.drivers.owamp_client import OwpingOutcome
from otwamp.drivers.twamp_client import PingOutcome
from otwamp.results import owamp, report
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import OwampSessionRecord
from otwamp.results.stats import NS_PER_S

JsonObject = dict[str, Any]
Path = tuple[str, ...]
OPTIONAL_OBJECTS = ("ttl", "hops")  # null in the JSON when nothing was observed


@dataclass(frozen=True, slots=True)
class Measurement:
    """One run of a test, as the agent saw it: the outcome and what it leaves out.

    ``outcome`` is None when no session took place; ``failure`` then says
    why. A partial outcome's ``problem`` is archived as its failure.
    ``protocol``, ``mode`` and ``key_source`` describe a run without an
    outcome; an outcome's own take precedence.
    """

    test: str
    source: str
    destination: str
    start_ns: int
    end_ns: int
    protocol: str  # "twamp" or "owamp"
    outcome: PingOutcome | OwpingOutcome | None = None
    failure: str | None = None
    mode: str | None = None
    key_source: str | None = None


@dataclass(frozen=True, slots=True)
class ArchiveRow:
    """One sessions row (values in ``COLUMNS`` order) and its optional records blob."""

    values: tuple[Any, ...]
    records: bytes | None = None

    @property
    def uid(self) -> str:
        """The writer's unique id of the row."""
        value: str = self.values[0]
        return value


def owamp_path(path: Path) -> Path | None:
    """Where an OWAMP direction's object (owamp.session_json) keeps a TWAMP summary column."""
    if path[0] in ("sid", "completed", "incomplete", "packets"):
        return path
    if path[0] == "forward" and path[1] in owamp.PATH_KEYS:
        return path[1:]
    return None  # round trip, backward, processing, per-direction loss: TWAMP only


def twamp_path(path: Path) -> Path | None:
    """Where the TWAMP summary (report.to_json) keeps a column: everywhere but "incomplete"."""
    return None if path == ("incomplete",) else path


PATHS = {
    "twamp": {column.name: twamp_path(column.path) for column in SUMMARY},
    "owamp": {column.name: owamp_path(column.path) for column in SUMMARY},
}


def _lookup(document: Mapping[str, Any] | None, path: Path) -> Any:
    for key in path:
        if document is None:
            return None
        document = document[key]
    return document


def flatten(document: JsonObject | None, protocol: str) -> list[Any]:
    """The ``SUMMARY`` column values of a summary object (None: no session)."""
    paths = PATHS[protocol]
    values = []
    for column in SUMMARY:
        path = paths[column.name]
        values.append(None if path is None or document is None else _lookup(document, path))
    return values


def unflatten(values: Mapping[str, Any], protocol: str) -> JsonObject:
    """The summary object of a row's ``SUMMARY`` columns, as report.to_json made it."""
    document: JsonObject = {}
    for column in SUMMARY:
        path = PATHS[protocol][column.name]
        if path is None:
            continue
        node = document
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = values[column.name]
    _null_empty(document)
    return document


def _null_empty(node: JsonObject) -> None:
    """TTL and hop ranges that hold nothing are null, as report.range_json writes them."""
    for key, value in node.items():
        if isinstance(value, dict):
            if key in OPTIONAL_OBJECTS and all(item is None for item in value.values()):
                node[key] = None
            else:
                _null_empty(value)


# --- measurements to rows -------------------------------------------------------


def _row(
    measurement: Measurement,
    *,
    direction: str | None,
    mode: str | None,
    key_source: str | None,
    spis: tuple[str, str] | None,
    failure: str | None,
    summary: JsonObject | None,
    records: bytes | None,
) -> ArchiveRow:
    identity = [
        secrets.token_hex(16),
        measurement.test,
        measurement.source,
        measurement.destination,
        measurement.protocol,
        direction,
        mode,
        key_source,
        None if spis is None else spis[0],
        None if spis is None else spis[1],
        measurement.start_ns,
        measurement.end_ns,
        failure,
    ]
    return ArchiveRow((*identity, *flatten(summary, measurement.protocol)), records)


def archive_rows(measurement: Measurement, *, keep_records: bool) -> list[ArchiveRow]:
    """The rows a finished measurement makes: its sessions' summaries (and records)."""
    outcome = measurement.outcome
    if isinstance(outcome, PingOutcome):
        document = report.to_json(summarize_twamp(outcome.record))
        return [
            _row(
                measurement,
                direction=None,
                mode=document["mode"],
                key_source=document["key_source"],
                spis=outcome.ike_spis,
                failure=outcome.problem,
                summary=document,
                records=packets.encode(outcome.record) if keep_records else None,
            )
        ]
    if isinstance(outcome, OwpingOutcome):
        sessions = [record for record in (outcome.to, outcome.from_) if record is not None]
        if sessions:
            return [_owamp_row(measurement, outcome, record, keep_records) for record in sessions]
    return [
        _row(
            measurement,
            direction=None,
            mode=measurement.mode if outcome is None else outcome.mode,
            key_source=measurement.key_source if outcome is None else outcome.key_source,
            spis=None if outcome is None else outcome.ike_spis,
            failure=measurement.failure if outcome is None else outcome.problem,
            summary=None,
            records=None,
        )
    ]


def _owamp_row(
    measurement: Measurement,
    outcome: OwpingOutcome,
    record: OwampSessionRecord,
    keep_records: bool,
) -> ArchiveRow:
    return _row(
        measurement,
        direction=record.direction,
        mode=outcome.mode,
        key_source=outcome.key_source,
        spis=outcome.ike_spis,
        failure=outcome.problem,
        summary=owamp.session_json(owamp.summarize_owamp(record)),
        records=packets.encode(record) if keep_records else None,
    )


# --- rows to documents ------------------------------------------------------------


def typed(columns: tuple[Column, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    """A row read from either engine as {column: value}, booleans as bool (SQLite has 0/1)."""
    return {
        column.name: bool(value) if column.kind == "bool" and value is not None else value
        for column, value in zip(columns, row, strict=True)
    }


def dotted_pairs(document: JsonObject, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A nested document as (dotted.key, value) pairs: CSV columns, ``show`` lines."""
    for key, value in document.items():
        if isinstance(value, dict):
            yield from dotted_pairs(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def iso_time(ns: int) -> str:
    """Nanoseconds since the epoch as ISO 8601 UTC with microseconds."""
    return datetime.fromtimestamp(ns / NS_PER_S, UTC).isoformat(timespec="microseconds")


def session_document(session_id: int, values: Mapping[str, Any]) -> JsonObject:
    """A stored session as JSON: its context, then its summary as ping/owping printed it.

    TWAMP: the summary's keys are those of ``otwamp ping --json``; OWAMP: those
    of the direction's object in ``otwamp owping --json`` (its "to" or "from"),
    with the run's protocol, mode, key source and IKE SA beside them.
    """
    spis = None if values["spi_i"] is None else (values["spi_i"], values["spi_r"])
    head: JsonObject = {
        "id": session_id,
        "test": values["test"],
        "source": values["source"],
        "destination": values["destination"],
        "direction": values["direction"],
        "start": iso_time(values["start_ns"]),
        "end": iso_time(values["end_ns"]),
        "failure": values["failure"],
        "protocol": values["protocol"],
        "mode": values["mode"],
        "key_source": values["key_source"],
    } | ike_sa_json(spis)
    if values["sid"] is None:  # no session took place
        return head
    return head | unflatten(values, values["protocol"])
