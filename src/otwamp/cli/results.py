"""``otwamp results``: list, show and summarize the sessions in an archive."""

import asyncio
import csv
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

import click

from otwamp.archive import DEFAULT_ARCHIVE
from otwamp.archive.query import Filter, PairSummary, Reader
from otwamp.archive.rows import JsonObject, dotted_pairs, iso_time, session_document
from otwamp.archive.timespec import parse_time
from otwamp.cli.errors import one_line_errors
from otwamp.results import owamp, report
from otwamp.results.records import OwampSessionRecord

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _selection_options(command: F) -> F:
    options = [
        click.option(
            "--archive",
            "location",
            default=DEFAULT_ARCHIVE,
            show_default=True,
            envvar="OTWAMP_ARCHIVE",
            metavar="PATH|URL",
            help="The archive: a SQLite file or a postgresql:// URL (env OTWAMP_ARCHIVE).",
        ),
        click.option(
            "--since",
            metavar="WHEN",
            help="Sessions started at or after WHEN: a duration ago (2h, 7d) or ISO 8601 (UTC).",
        ),
        click.option("--until", metavar="WHEN", help="Sessions started before WHEN (as --since)."),
        click.option("--test", help="Sessions of this test only."),
        click.option("--target", help="Sessions to this destination only."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _format_options(command: F) -> F:
    command = click.option("--csv", "as_csv", is_flag=True, help="Print CSV with a header.")(
        command
    )
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def _filter(options: dict[str, Any], limit: int | None = None) -> Filter:
    now = time.time_ns()
    since, until = (
        None if options[key] is None else parse_time(options[key], now)
        for key in ("since", "until")
    )
    return Filter(since, until, options["test"], options["target"], limit)


def _with_reader(location: str, work: Callable[[Reader], Awaitable[T]]) -> T:
    async def run() -> T:
        reader = await Reader.open(location)
        try:
            return await work(reader)
        finally:
            await reader.close()

    return asyncio.run(run())


@click.group(name="results")
def results() -> None:
    """List, show and summarize archived sessions (SQLite or PostgreSQL)."""


@results.command(name="list")
@_selection_options
@_format_options
@click.option("--limit", type=click.IntRange(min=1), help="At most this many sessions.")
@one_line_errors
def list_command(as_json: bool, as_csv: bool, limit: int | None, **options: Any) -> None:
    """One line per session, oldest first."""
    selection = _filter(options, limit)
    rows = _with_reader(options["location"], lambda reader: reader.sessions(selection))
    documents = [session_document(session_id, values) for session_id, values in rows]
    _print_sessions(documents, as_json, as_csv, _session_line)


@results.command(name="show")
@click.argument("ids", metavar="ID...", nargs=-1, required=True, type=int)
@click.option("--archive", "location", default=DEFAULT_ARCHIVE, envvar="OTWAMP_ARCHIVE")
@_format_options
@click.option("--raw", is_flag=True, help="Print the kept per-packet records, one line each.")
@one_line_errors
def show_command(ids: Sequence[int], location: str, as_json: bool, as_csv: bool, raw: bool) -> None:
    """Everything archived about the sessions ID... (ids as `results list` prints them)."""

    async def read(reader: Reader) -> list[Any]:
        if raw:
            return [await reader.records(session_id) for session_id in ids]
        return [session_document(i, await reader.session(i)) for i in ids]

    found = _with_reader(location, read)
    if raw:
        for record in found:
            module = owamp if isinstance(record, OwampSessionRecord) else report
            for line in module.raw_lines(record, json_lines=as_json):
                click.echo(line)
        return
    _print_sessions(found, as_json, as_csv, _session_block)


@results.command(name="summary")
@_selection_options
@_format_options
@one_line_errors
def summary_command(as_json: bool, as_csv: bool, **options: Any) -> None:
    """One line per source, destination and direction, in the spirit of owstats.

    The delay is the round trip for TWAMP and the one-way delay for OWAMP;
    its mean is weighted by packets received, p95 is the worst session's.
    """
    selection = _filter(options)
    pairs = _with_reader(options["location"], lambda reader: reader.summary(selection))
    objects = [_pair_object(pair) for pair in pairs]
    if as_json:
        click.echo(json.dumps(objects, indent=2))
    elif as_csv:
        _write_csv(objects)
    elif not pairs:
        click.echo("no sessions")
    else:
        for pair in pairs:
            click.echo(_pair_line(pair))


# --- output -------------------------------------------------------------------


def _print_sessions(
    documents: list[JsonObject],
    as_json: bool,
    as_csv: bool,
    text: Callable[[JsonObject], str],
) -> None:
    if as_json:
        click.echo(json.dumps(documents, indent=2))
    elif as_csv:
        _write_csv([dict(dotted_pairs(document)) for document in documents])
    elif not documents:
        click.echo("no sessions")
    else:
        for document in documents:
            click.echo(text(document))


def _write_csv(objects: list[JsonObject]) -> None:
    """CSV with the union of the objects' keys as header, in order of first appearance."""
    header = list(dict.fromkeys(key for obj in objects for key in obj))
    writer = csv.DictWriter(sys.stdout, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(objects)


def _kind(protocol: str, direction: str | None) -> str:
    """ "twamp", or "owamp/to" and "owamp/from"."""
    return protocol if direction is None else f"{protocol}/{direction}"


def _delay(document: JsonObject) -> str:
    """The median round trip (TWAMP) or one-way delay (OWAMP) of a session, as text."""
    stats = document.get("rtt") if document["protocol"] == "twamp" else document.get("delay")
    if stats is None or stats["median"] is None:
        return "-"
    return report.format_times([float(stats["median"])])


def _session_line(document: JsonObject) -> str:
    packets = document.get("packets")
    counts = "-" if packets is None else f"{packets['sent']} sent {packets['lost']} lost"
    failure = "" if document["failure"] is None else f"  failed: {document['failure']}"
    kind = _kind(document["protocol"], document["direction"])
    return (
        f"{document['id']:>6} {document['start'][:19]}Z {document['test']} {kind} "
        f"{document['source']} -> {document['destination']} {document['mode']}  "
        f"{counts}  median {_delay(document)}{failure}"
    )


def _session_block(document: JsonObject) -> str:
    return "\n".join(f"{key}: {value}" for key, value in dotted_pairs(document)) + "\n"


def _pair_object(pair: PairSummary) -> JsonObject:
    return asdict(pair) | {
        "first": iso_time(pair.first_ns),
        "last": iso_time(pair.last_ns),
        "loss": pair.loss,
    }


def _times(label: str, values: Sequence[float | None]) -> str:
    """ ", label a/b/c unit" when every value is known, else nothing."""
    known = [value for value in values if value is not None]
    return f", {label} {report.format_times(known)}" if known and len(known) == len(values) else ""


def _pair_line(pair: PairSummary) -> str:
    kind = _kind(pair.protocol, pair.direction)
    span = f"{iso_time(pair.first_ns)[:19]}Z..{iso_time(pair.last_ns)[:19]}Z"
    loss = report.percent(pair.lost, pair.sent - pair.discarded)
    return (
        f"{pair.source} -> {pair.destination} {kind}: {pair.sessions} sessions "
        f"({pair.failed} failed) {span}, {pair.sent} sent, {pair.lost} lost ({loss}), "
        f"{pair.duplicates} duplicates, {pair.reordered} reordered"
        + _times("delay min/mean/max =", [pair.delay_min, pair.delay_mean, pair.delay_max])
        + _times("worst p95", [pair.delay_p95_max])
        + _times("jitter", [pair.jitter_mean])
        + f", synchronized {pair.synchronized}/{pair.with_delays}"
    )
