"""``otwamp results`` end to end: real sessions against a real ``otwamp server``, archived,
read back by the CLI as a separate process, on SQLite and on PostgreSQL."""

import asyncio
import csv
import io
import json
import sqlite3
import time

import pytest

from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from otwamp.cli.report import ike_sa_json
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.owamp_client import owping
from otwamp.drivers.twamp_client import ping
from otwamp.results import owamp, report
from otwamp.results.metrics import summarize_twamp
from tests.archive.builders import measurement
from tests.e2e.conftest import running_server
from tests.e2e.processes import run_cli

COUNT = 20


PING_ONLY = {"timestamps", "twamp_extensions", "dscp_ecn"}


def _keys(document, prefix=""):
    """Every key path of a JSON object."""
    for key, value in document.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from _keys(value, f"{prefix}{key}.")


@pytest.fixture(scope="module")
def measured():
    """A real TWAMP and OWAMP run against a real server, and ping's own --json of another."""
    with running_server() as server:

        async def measure():
            twamp = PingSettings("127.0.0.1", server.twamp_port, count=COUNT, interval=0.01)
            owamp_ = PingSettings("127.0.0.1", server.port, count=COUNT, interval=0.01)
            runs = []
            for run, settings, protocol in ((ping, twamp, "twamp"), (owping, owamp_, "owamp")):
                start = time.time_ns()
                outcome = await run(settings)
                runs.append(
                    Measurement(
                        "e2e", "127.0.0.1", "127.0.0.1", start, time.time_ns(), protocol, outcome
                    )
                )
            return runs

        runs = asyncio.run(measure())
        printed = run_cli("ping", server.twamp_target, "-c", "3", "-i", "0.01", "--json")
        printed_ow = run_cli("owping", server.target, "-c", "3", "-i", "0.01", "--json")
    assert printed.returncode == 0 and printed_ow.returncode == 0, printed.stderr
    return runs, json.loads(printed.stdout), json.loads(printed_ow.stdout)


def _archive(location, runs):
    async def store():
        archive = Archive.at(location, keep_records=True)
        for run in runs:
            archive.store(run)
        assert await archive.flush(20)
        await archive.close()

    asyncio.run(store())


def _results(location, *args):
    result = run_cli("results", *args, "--archive", location)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_archived_sessions_read_back_as_ping_and_owping_printed_them(location, measured):
    (twamp, owamp_run), cli_ping, cli_owping = measured
    _archive(location, [twamp, owamp_run])
    stored = json.loads(_results(location, "list", "--json"))
    assert [(d["protocol"], d["direction"]) for d in stored] == [
        ("twamp", None),
        ("owamp", "to"),
        ("owamp", "from"),
    ]
    ping_json = report.to_json(summarize_twamp(twamp.outcome.record)) | ike_sa_json(None)
    assert {key: stored[0][key] for key in ping_json} == ping_json
    assert ping_json["packets"]["sent"] == COUNT and ping_json["packets"]["received"] == COUNT
    outcome = owamp_run.outcome
    owping_json = owamp.to_json(
        owamp.summarize_owamp(outcome.to),
        owamp.summarize_owamp(outcome.from_),
        outcome.mode,
        outcome.key_source,
    )
    for document in stored[1:]:
        direction = owping_json[document["direction"]]
        assert {key: document[key] for key in direction} == direction
        assert direction["packets"]["received"] == COUNT
    # Every figure today's CLI prints has its place in the archive; how the session was
    # measured (T1's clock, TWAMP extensions, DS field changes) is ping's alone (ARCHIVE.md).
    figures = {key: value for key, value in cli_ping.items() if key not in PING_ONLY}
    assert set(_keys(figures)) <= set(_keys(stored[0]))
    for name in ("to", "from"):
        assert set(_keys(cli_owping[name])) <= set(_keys(stored[1]))


def test_raw_records_read_back_as_ping_printed_them(location, measured):
    (twamp, owamp_run), _, _ = measured
    _archive(location, [twamp, owamp_run])
    raw = _results(location, "show", "1", "--raw", "--json").splitlines()
    assert raw == list(report.raw_lines(twamp.outcome.record, json_lines=True))
    raw_to = _results(location, "show", "2", "--raw").splitlines()
    assert raw_to == list(owamp.raw_lines(owamp_run.outcome.to, json_lines=False))


def test_list_csv_summary_and_filters(location, measured):
    (twamp, owamp_run), _, _ = measured
    failed = measurement(failure="connection refused", destination="192.0.2.9", test="other")
    _archive(location, [twamp, owamp_run, failed])
    rows = list(csv.DictReader(io.StringIO(_results(location, "list", "--csv"))))
    assert [row["id"] for row in rows] == ["4", "1", "2", "3"]  # oldest first: 4 is from 2023
    assert rows[1]["packets.sent"] == str(COUNT) and rows[0]["failure"] == "connection refused"
    text = _results(location, "list", "--test", "other").splitlines()
    assert len(text) == 1 and "failed: connection refused" in text[0]
    assert _results(location, "list", "--target", "nowhere") == "no sessions\n"
    recent = json.loads(_results(location, "list", "--json", "--since", "1h"))
    assert [d["test"] for d in recent] == ["e2e"] * 3
    old = json.loads(_results(location, "list", "--json", "--until", "1h"))  # from 2023
    assert [d["test"] for d in old] == ["other"]
    pairs = json.loads(_results(location, "summary", "--json", "--test", "e2e"))
    assert [(p["protocol"], p["direction"], p["sent"], p["lost"]) for p in pairs] == [
        ("owamp", "from", COUNT, 0),
        ("owamp", "to", COUNT, 0),
        ("twamp", None, COUNT, 0),
    ]
    assert pairs[2]["delay_min"] == twamp_min(twamp)
    summary = _results(location, "summary").splitlines()
    assert len(summary) == 4 and "1 sessions (1 failed)" in summary[-1]


def twamp_min(run: Measurement) -> float:
    return summarize_twamp(run.outcome.record).rtt.delay.min


def _not_an_archive(tmp_path) -> str:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    path.write_bytes(b"")
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (x)")
    return str(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: str(tmp / "missing.db"), "no such archive"),
        (str, "not a file"),
        (lambda tmp: "/etc/hostname", "not an otwamp archive"),
        (_not_an_archive, "not an otwamp archive"),
        (lambda tmp: "mysql://db/x", "unknown archive scheme 'mysql'"),
        (lambda tmp: f"postgresql://u:secret@/x?host={tmp}", "No such file or directory"),
    ],
)
def test_a_bad_archive_is_one_line(tmp_path, make, message):
    result = run_cli("results", "list", "--archive", make(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("otwamp: ") and result.stderr.count("\n") == 1
    assert message in result.stderr and "secret" not in result.stderr


def test_an_empty_postgresql_database_is_not_an_archive(postgres):
    result = run_cli("results", "summary", "--archive", postgres.create_database())
    assert result.returncode == 1 and "not an otwamp archive" in result.stderr


def test_a_bad_since_or_id_is_one_line(location):
    _archive(location, [measurement()])
    for args in (["list", "--since", "yesterday"], ["show", "7"], ["show", "1", "--raw"]):
        result = run_cli("results", *args, "--archive", location)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("otwamp: ")
