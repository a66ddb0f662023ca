"""Storing and reading back, on SQLite and on a real PostgreSQL (the ``location`` fixture)."""

import asyncio
import json

from otwamp.archive.query import Filter, Reader
from otwamp.archive.rows import session_document
from otwamp.archive.schema import LATEST, MIGRATIONS
from otwamp.archive.store import Archive, Retention
from otwamp.archive.versions import migrate
from otwamp.cli.report import ike_sa_json
from otwamp.results import owamp, report
from otwamp.results.metrics import summarize_twamp
from tests.archive.builders import START_NS, measurement, owping_outcome, ping_outcome

DAY_NS = 86_400 * 1_000_000_000


async def _store_all(location: str, *measurements, keep_records: bool = False) -> Archive:
    archive = Archive.at(location, keep_records=keep_records)
    for item in measurements:
        archive.store(item)
    assert await archive.flush(30)
    await archive.close()
    return archive


async def _read(location: str, selection: Filter | None = None) -> list[dict]:
    reader = await Reader.open(location)
    try:
        rows = await reader.sessions(selection or Filter())
        return [session_document(i, values) for i, values in rows]
    finally:
        await reader.close()


def test_migrations_are_applied_once_and_recorded(location):
    async def scenario():
        archive = Archive.at(location)
        assert await migrate(archive.engine) == LATEST
        assert await migrate(archive.engine) == LATEST  # nothing left to apply
        rows = await archive.engine.query("SELECT version, description FROM schema_version")
        await archive.close()
        return rows

    rows = asyncio.run(scenario())
    assert [tuple(row) for row in rows] == [(m.version, m.description) for m in MIGRATIONS]


def test_a_twamp_session_reads_back_as_ping_printed_it(location):
    outcome = ping_outcome()
    archive = asyncio.run(_store_all(location, measurement(outcome)))
    [document] = asyncio.run(_read(location))
    printed = report.to_json(summarize_twamp(outcome.record)) | ike_sa_json(outcome.ike_spis)
    assert {key: document[key] for key in printed} == printed
    assert json.loads(json.dumps(printed)) == printed  # what --json prints, value for value
    assert document["test"] == "core" and document["destination"] == "192.0.2.2"
    assert document["start"] == "2023-11-14T22:13:20.000000+00:00"
    assert document["failure"] is None and document["direction"] is None
    assert printed["backward"]["ttl"] == {"min": 254, "max": 255}
    assert printed["packets"]["duplicates"] == 1 and printed["packets"]["reordered"] == 1
    assert archive.stored == 1 and archive.lost == 0


def test_owamp_directions_read_back_as_owping_printed_them(location):
    outcome = owping_outcome()
    asyncio.run(_store_all(location, measurement(outcome)))
    documents = asyncio.run(_read(location))
    summaries = [owamp.summarize_owamp(r) for r in (outcome.to, outcome.from_)]
    printed = owamp.to_json(*summaries, outcome.mode, outcome.key_source)
    assert [d["direction"] for d in documents] == ["to", "from"]
    for document in documents:
        direction = printed[document["direction"]]
        assert {key: document[key] for key in direction} == direction
        assert document["protocol"] == "owamp" and document["mode"] == "authenticated"
        assert "rtt" not in document and "backward" not in document
    assert documents[1]["ttl"] is None and documents[1]["incomplete"] == "Stop-Sessions Accept 1"
    assert documents[1]["packets"]["discarded"] == 0 and documents[1]["packets"]["sent"] == 3


def test_a_failed_run_is_archived_with_its_reason(location):
    failed = measurement(failure="connection to 192.0.2.2 refused")
    asyncio.run(_store_all(location, failed))
    [document] = asyncio.run(_read(location))
    assert document["failure"] == "connection to 192.0.2.2 refused"
    assert document["mode"] == "authenticated" and document["key_source"] == "ike"
    assert "packets" not in document


def test_records_round_trip_through_the_archive(location):
    ping, owping = ping_outcome(), owping_outcome()
    asyncio.run(_store_all(location, measurement(ping), measurement(owping), keep_records=True))

    async def records():
        reader = await Reader.open(location)
        try:
            ids = [i for i, _ in await reader.sessions(Filter())]
            return [await reader.records(i) for i in ids]
        finally:
            await reader.close()

    twamp, to, from_ = asyncio.run(records())
    assert list(report.raw_lines(twamp, True)) == list(report.raw_lines(ping.record, True))
    assert twamp == ping.record
    for stored, original in ((to, owping.to), (from_, owping.from_)):
        assert list(owamp.raw_lines(stored, False)) == list(owamp.raw_lines(original, False))


def test_filters_select_by_time_test_and_target(location):
    measurements = [
        measurement(ping_outcome(), start_ns=START_NS + i * DAY_NS, test=test, destination=dest)
        for i, (test, dest) in enumerate(
            [("core", "192.0.2.2"), ("edge", "192.0.2.3"), ("core", "192.0.2.3")]
        )
    ]
    asyncio.run(_store_all(location, *measurements))

    def tests(**selection):
        return [
            (d["test"], d["destination"]) for d in asyncio.run(_read(location, Filter(**selection)))
        ]

    assert tests(since_ns=START_NS + DAY_NS) == [("edge", "192.0.2.3"), ("core", "192.0.2.3")]
    assert tests(until_ns=START_NS + DAY_NS) == [("core", "192.0.2.2")]
    assert tests(test="core", target="192.0.2.3") == [("core", "192.0.2.3")]
    assert tests(limit=1) == [("core", "192.0.2.2")]


def test_the_pair_summary_adds_sessions_up(location):
    sessions = [measurement(ping_outcome(), start_ns=START_NS + i) for i in range(3)]
    failed = measurement(failure="timed out", start_ns=START_NS + 3)
    asyncio.run(_store_all(location, *sessions, failed, measurement(owping_outcome())))

    async def summary():
        reader = await Reader.open(location)
        try:
            return await reader.summary(Filter())
        finally:
            await reader.close()

    pairs = {(p.protocol, p.direction): p for p in asyncio.run(summary())}
    twamp = pairs[("twamp", None)]
    single = summarize_twamp(ping_outcome().record)
    assert (twamp.sessions, twamp.failed) == (4, 1)
    assert (twamp.sent, twamp.lost) == (3 * 7, 3 * single.packets.lost)
    assert twamp.delay_min == single.rtt.delay.min
    assert abs(twamp.delay_mean - single.rtt.delay.mean) < 1e-15
    assert twamp.loss == single.packets.lost / 7
    assert (twamp.synchronized, twamp.with_delays) == (0, 3)  # one T2 was unsynchronized
    from_ = pairs[("owamp", "from")]
    assert (from_.sessions, from_.sent, from_.synchronized) == (1, 3, 0)


def test_retention_deletes_records_sooner_than_summaries(location):
    old = [measurement(ping_outcome(), start_ns=START_NS + i * DAY_NS) for i in range(4)]

    async def scenario():
        archive = Archive.at(location, keep_records=True)
        for item in old:
            archive.store(item)
        assert await archive.flush(30)
        now = START_NS + 4 * DAY_NS
        await archive.purge(Retention(sessions_days=3.5, records_days=1.5), now)
        sessions = await archive.engine.query("SELECT start_ns FROM sessions ORDER BY start_ns")
        records = await archive.engine.query("SELECT COUNT(*) FROM records")
        await archive.close()
        return [row[0] for row in sessions], records[0][0]

    sessions, records = asyncio.run(scenario())
    assert sessions == [START_NS + i * DAY_NS for i in (1, 2, 3)]
    assert records == 1  # only the session a day old keeps its records
