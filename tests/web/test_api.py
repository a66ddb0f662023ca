"""The dashboard's HTTP API over archives of real sessions, on SQLite and on PostgreSQL:
every endpoint, the grid's states, series and histograms against the archive, CSV, bad
parameters (400 with a message), an unreadable archive (503), and nothing writable (405)."""

import asyncio
import contextlib
import csv
import io
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from otwamp.archive.query import Reader
from otwamp.archive.rows import session_document
from otwamp.results import owamp, report
from otwamp.web import app
from tests.web.conftest import (
    FAILING,
    HOSTS,
    OWAMP_PAIRS,
    ROUNDS,
    STALE,
    expected_twamp_states,
    pair_sessions,
)

ENGINES = ["sqlite", "postgresql"]
PAIR = {"source": "127.0.0.1", "destination": "127.0.0.2", "protocol": "twamp", "since": "1h"}
ENDPOINTS = [
    "/",
    "/pair",
    "/api/grid",
    "/api/series",
    "/api/series.csv",
    "/api/histogram",
    "/api/sessions",
    "/api/sessions.csv",
    "/api/sessions/1",
    "/api/sessions/1/packets",
    "/api/sessions/1/packets.txt",
    "/static/web.css",
    "/static/vendor/uPlot.iife.min.js",
]


@contextlib.asynccontextmanager
async def client(location, settings):
    async with TestClient(TestServer(app(location, settings))) as opened:
        yield opened


def served(mesh, engine, work):
    """Run ``await work(client, reader)`` against the dashboard over one engine's archive."""

    async def run():
        reader = await Reader.open(mesh.location(engine))
        try:
            async with client(mesh.location(engine), mesh.settings) as opened:
                return await work(opened, reader)
        finally:
            await reader.close()

    return asyncio.run(run())


async def get_json(http, path, params=None, status=200):
    response = await http.get(path, params=params)
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


@pytest.mark.parametrize("engine", ENGINES)
def test_grid_states_follow_the_archive_and_thresholds(mesh, engine):
    async def work(http, reader):
        grid = await get_json(http, "/api/grid")
        twamp, owamp_ = grid["grids"]
        assert (twamp["protocol"], owamp_["protocol"]) == ("twamp", "owamp")
        assert twamp["sources"] == list(HOSTS) and twamp["destinations"] == list(HOSTS)
        states = {
            (c["source"], c["destination"]): tuple(h["state"] for h in c["halves"])
            for c in twamp["cells"]
        }
        expected = await expected_twamp_states(reader)
        assert states == expected
        failed = next(c for c in twamp["cells"] if (c["source"], c["destination"]) == FAILING)
        assert "last session failed: " in failed["halves"][0]["reason"]
        failure = mesh.measurements[-1].failure  # connection refused, for real
        assert failed["halves"][0]["reason"].startswith(f"last session failed: {failure}")
        stale = next(c for c in twamp["cells"] if (c["source"], c["destination"]) == STALE)
        assert stale["halves"][1]["reason"].startswith("stale: last session ended 7")
        owamp_states = {
            (c["source"], c["destination"]): [(h["name"], h["state"]) for h in c["halves"]]
            for c in owamp_["cells"]
        }
        amber, ok = [("to", "warn"), ("from", "warn")], [("to", "ok"), ("from", "ok")]
        assert owamp_states == {OWAMP_PAIRS[0]: amber, OWAMP_PAIRS[1]: ok}
        assert grid["thresholds"]["loss_amber_pct"] == pytest.approx(0.1)
        assert grid["thresholds"]["loss_red_pct"] == pytest.approx(1.0)

    served(mesh, engine, work)


@pytest.mark.parametrize("engine", ENGINES)
def test_series_are_the_archived_sessions_when_buckets_hold_one(mesh, engine):
    async def work(http, reader):
        sessions = await pair_sessions(reader, "127.0.0.1", "127.0.0.2")
        since, until = sessions[0][1]["start_ns"] / 1e9, sessions[-1][1]["start_ns"] / 1e9
        span = PAIR | {"since": str(since - 1e-3), "until": str(until + 1e-3), "points": "5000"}
        series = await get_json(http, "/api/series", span)
        assert series["bucket_s"] < 0.01  # far less than the time between two sessions
        assert len(sessions) == ROUNDS == series["sessions"]
        columns = series["columns"]
        assert columns["t"] == [v["start_ns"] / 10**9 for _, v in sessions]
        for name, column in (
            ("rtt_min", "rtt_min"),
            ("rtt_median", "rtt_median"),
            ("rtt_p95", "rtt_p95"),
            ("forward_delay_median", "fwd_delay_median"),
            ("backward_delay_p95", "bwd_delay_p95"),
            ("forward_jitter", "fwd_ipdv_jitter"),
        ):
            assert columns[name] == pytest.approx([v[column] for _, v in sessions]), name
        assert columns["loss_pct"] == [
            100 * v["packets_lost"] / (v["packets_sent"] - v["packets_discarded"])
            for _, v in sessions
        ]
        assert columns["forward_unsync"] == [int(v["fwd_sync"] is False) for _, v in sessions]
        # One bucket for the lot: extremes of the extremes, the mean of the medians.
        one = await get_json(http, "/api/series", PAIR | {"points": "1"})
        assert one["columns"]["rtt_min"] == [min(v["rtt_min"] for _, v in sessions)]
        assert one["columns"]["rtt_p95"] == [max(v["rtt_p95"] for _, v in sessions)]
        mean = sum(v["rtt_median"] for _, v in sessions) / len(sessions)
        assert one["columns"]["rtt_median"] == [pytest.approx(mean)]
        # OWAMP: the directions are separate sessions, in one point each.
        source, destination = OWAMP_PAIRS[0]
        ow = await get_json(
            http, "/api/series", PAIR | {"destination": destination, "protocol": "owamp"}
        )
        by_direction = {
            v["direction"]: v for _, v in await pair_sessions(reader, source, destination, "owamp")
        }
        for way in ("to", "from"):
            assert ow["columns"][f"{way}_delay_median"] == [by_direction[way]["fwd_delay_median"]]
        assert "rtt_median" not in ow["columns"] and ow["sessions"] == 2

    served(mesh, engine, work)


@pytest.mark.parametrize("engine", ENGINES)
def test_csv_downloads_hold_what_the_json_does(mesh, engine):
    async def work(http, reader):
        # One fixed window for both: buckets relative to "now" may split the sessions
        # differently from one request to the next.
        now = time.time()
        window = PAIR | {"since": str(now - 3600), "until": str(now)}
        series = await get_json(http, "/api/series", window)
        response = await http.get("/api/series.csv", params=window)
        assert response.status == 200 and response.content_type == "text/csv"
        assert "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert [float(row["rtt_median"]) for row in rows] == series["columns"]["rtt_median"]
        assert rows[0]["time"].endswith("+00:00")
        table = await get_json(http, "/api/sessions", PAIR)
        response = await http.get("/api/sessions.csv", params=PAIR)
        flat = list(csv.DictReader(io.StringIO(await response.text())))
        assert [int(row["id"]) for row in flat] == [s["id"] for s in table["sessions"]]
        assert [float(row["rtt.median"]) for row in flat] == [
            s["rtt"]["median"] for s in table["sessions"]
        ]

    served(mesh, engine, work)


@pytest.mark.parametrize("engine", ENGINES)
def test_histogram_counts_every_session_of_the_range(mesh, engine):
    async def work(http, reader):
        histogram = await get_json(http, "/api/histogram", PAIR | {"bins": "7"})
        sessions = await pair_sessions(reader, "127.0.0.1", "127.0.0.2")
        medians = [v["rtt_median"] for _, v in sessions]
        edges = histogram["edges"]
        assert len(edges) == 8 and edges[0] == min(medians)
        assert edges[-1] == pytest.approx(max(medians))
        counts = histogram["counts"]["round trip"]
        assert sum(counts) == len(medians) and counts[0] >= 1 and counts[-1] >= 1
        source, destination = OWAMP_PAIRS[1]
        ow = await get_json(
            http,
            "/api/histogram",
            {"source": source, "destination": destination, "protocol": "owamp", "since": "1h"},
        )
        assert {name: sum(c) for name, c in ow["counts"].items()} == {"to": 1, "from": 1}
        empty = await get_json(http, "/api/histogram", PAIR | {"since": "2h", "until": "90m"})
        assert empty["edges"] == [] and empty["counts"] == {}

    served(mesh, engine, work)


@pytest.mark.parametrize("engine", ENGINES)
def test_sessions_and_their_packets_read_as_results_show_prints_them(mesh, engine):
    async def work(http, reader):
        table = await get_json(http, "/api/sessions", PAIR | {"limit": "2"})
        sessions = await pair_sessions(reader, "127.0.0.1", "127.0.0.2")
        assert table["total"] == ROUNDS and len(table["sessions"]) == 2
        newest_first = [session_document(i, v) for i, v in reversed(sessions)]
        assert table["sessions"] == [d | {"records": True} for d in newest_first[:2]]
        rest = await get_json(http, "/api/sessions", PAIR | {"limit": "2", "offset": "2"})
        assert [s["id"] for s in rest["sessions"]] == [newest_first[2]["id"]]
        session_id = newest_first[0]["id"]
        assert await get_json(http, f"/api/sessions/{session_id}") == newest_first[0]
        record = await reader.records(session_id)
        packets = await get_json(http, f"/api/sessions/{session_id}/packets")
        assert packets == [json.loads(line) for line in report.raw_lines(record, json_lines=True)]
        assert len(packets) == 10
        text = await (await http.get(f"/api/sessions/{session_id}/packets.txt")).text()
        assert text.splitlines() == list(report.raw_lines(record, json_lines=False))
        ow_id = (await pair_sessions(reader, *OWAMP_PAIRS[0], "owamp"))[0][0]
        ow_record = await reader.records(ow_id)
        ow_packets = await get_json(http, f"/api/sessions/{ow_id}/packets")
        assert ow_packets == [
            json.loads(line) for line in owamp.raw_lines(ow_record, json_lines=True)
        ]
        failed = await get_json(
            http, "/api/sessions", {"source": FAILING[0], "destination": FAILING[1]}
        )
        assert failed["sessions"][0]["records"] is False and failed["sessions"][0]["failure"]
        missing = await get_json(
            http, f"/api/sessions/{failed['sessions'][0]['id']}/packets", status=404
        )
        assert "no records kept" in missing["error"]
        assert (
            "no session 999999"
            in (await get_json(http, "/api/sessions/999999", status=404))["error"]
        )

    served(mesh, engine, work)


BAD = [
    ("/api/series", {"destination": "x"}, "missing parameter 'source'"),
    ("/api/series", {"source": "x"}, "missing parameter 'destination'"),
    ("/api/series", {"source": "a", "destination": "b", "protocol": "stamp"}, "protocol must be"),
    ("/api/series", PAIR | {"since": "yesterday"}, "neither a duration"),
    ("/api/series", PAIR | {"since": "1h", "until": "2h"}, "since must be before until"),
    ("/api/series", PAIR | {"points": "0"}, "points must be a whole number from 1 to 5000"),
    ("/api/series", PAIR | {"points": "many"}, "points must be"),
    ("/api/series.csv", PAIR | {"colour": "red"}, "unknown parameter 'colour'"),
    ("/api/histogram", PAIR | {"bins": "1000"}, "bins must be a whole number from 1 to 200"),
    ("/api/sessions", PAIR | {"limit": "-1"}, "limit must be"),
    ("/api/sessions", PAIR | {"offset": "x"}, "offset must be"),
    ("/api/sessions/abc", {}, "a session id is a number, not 'abc'"),
    ("/api/grid", {"since": "1h"}, "unknown parameter 'since'"),
    ("/pair", {"source": "a"}, "missing parameter 'destination'"),
    ("/", {"x": "1"}, "unknown parameter 'x'"),
]


@pytest.mark.parametrize(("path", "params", "message"), BAD)
def test_bad_parameters_get_400_with_a_message(mesh, path, params, message):
    async def work(http, reader):
        body = await get_json(http, path, params, status=400)
        assert message in body["error"]

    served(mesh, "sqlite", work)


def test_nothing_is_writable_and_pages_and_vendored_files_are_served(mesh):
    async def work(http, reader):
        for path in ENDPOINTS:
            for method in ("POST", "PUT", "DELETE", "PATCH"):
                response = await http.request(method, path, params=PAIR if "pair" in path else None)
                assert response.status == 405, (method, path, response.status)
        for path in ("/", "/pair"):
            response = await http.get(path, params=PAIR if path == "/pair" else None)
            assert response.status == 200 and response.content_type == "text/html"
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        for path, kind in (
            ("/static/vendor/uPlot.iife.min.js", "javascript"),
            ("/static/vendor/uPlot.min.css", "text/css"),
            ("/static/vendor/uPlot.LICENSE", ""),
            ("/static/grid.js", "javascript"),
        ):
            response = await http.get(path)
            assert response.status == 200 and kind in response.content_type, path
        licence = await (await http.get("/static/vendor/uPlot.LICENSE")).text()
        assert "MIT License" in licence and "Leon Sorokin" in licence
        assert (await http.get("/static/../app.py")).status in (403, 404)
        assert (await http.get("/api/nothing")).status == 404

    served(mesh, "sqlite", work)


def test_an_unreadable_archive_is_503_with_the_reason(tmp_path, mesh):
    async def run():
        async with client(str(tmp_path / "none.db"), mesh.settings) as http:
            body = await get_json(http, "/api/grid", status=503)
            assert body["error"] == f"archive: {tmp_path / 'none.db'}: no such archive"
            assert (await http.get("/")).status == 200  # the page itself loads

    asyncio.run(run())
