"""Fixtures of the dashboard tests: archives filled by real sessions among three loopback hosts.

Fixtures
--------
``mesh``
    Session scope. Runs a real ``otwamp server`` (TWAMP and OWAMP) on each of
    127.0.0.1, 127.0.0.2 and 127.0.0.3, measures every ordered pair with real
    TWAMP sessions from the source's address and some with OWAMP, and stores
    them through the archive API (``Archive.store``, records kept) into a
    SQLite file and into a database of a throwaway PostgreSQL cluster. What
    the grid should show is made to vary with real outcomes: 127.0.0.3 ->
    127.0.0.1's last run fails for real (nothing listens on the port it is
    pointed at); 127.0.0.2 -> 127.0.0.1's sessions are archived as if they had
    run two hours ago (stale); the thresholds (``mesh.settings``) set a tiny
    per-pair delay limit on 127.0.0.1 -> 127.0.0.3 (red) and on 127.0.0.1 ->
    127.0.0.2 (amber). Yields a :class:`Mesh`.

Helpers: ``pair_sessions(reader, source, destination, protocol)`` reads a
pair's sessions with the archive's own ``Reader.sessions``;
``expected_twamp_states(reader)`` is what the TWAMP grid should show, from them.
"""

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from otwamp.archive.query import Filter, Reader
from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.owamp_client import owping
from otwamp.drivers.twamp_client import ping
from otwamp.errors import OtwampError
from otwamp.web.settings import DelayThresholds, Thresholds, WebSettings
from tests.archive.postgres import running_cluster
from tests.e2e.conftest import free_ports, running_server

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
ROUNDS = 3  # TWAMP sessions per ordered pair
OWAMP_PAIRS = (("127.0.0.1", "127.0.0.2"), ("127.0.0.2", "127.0.0.3"))
FAILING = ("127.0.0.3", "127.0.0.1")  # its last TWAMP run fails
STALE = ("127.0.0.2", "127.0.0.1")  # archived two hours back
RED = ("127.0.0.1", "127.0.0.3")
AMBER = ("127.0.0.1", "127.0.0.2")
QUICK = {"count": 10, "interval": 0.005, "wait": 0.2}
STALE_SHIFT_NS = 2 * 3600 * 1_000_000_000
SETTINGS = WebSettings(
    listen=("127.0.0.1", 0),
    thresholds=Thresholds(
        pairs={RED: DelayThresholds(red=1e-9), AMBER: DelayThresholds(amber=1e-9)}
    ),
)


@dataclass
class Mesh:
    """Where the archives are and what went into them."""

    sqlite: str
    postgresql: str
    settings: WebSettings = SETTINGS
    measurements: list[Measurement] = field(default_factory=list)

    def location(self, engine: str) -> str:
        return self.sqlite if engine == "sqlite" else self.postgresql


async def _run(run, settings: PingSettings, source: str, destination: str, shift: int = 0):
    protocol = "twamp" if run is ping else "owamp"
    start = time.time_ns()
    try:
        outcome, failure = await run(settings), None
    except (OtwampError, OSError) as exc:
        outcome, failure = None, str(exc) or type(exc).__name__
    return Measurement(
        "mesh",
        source,
        destination,
        start - shift,
        time.time_ns() - shift,
        protocol,
        outcome,
        failure=failure,
        mode=None if outcome else "open",
    )


async def _measure(servers) -> list[Measurement]:
    runs = []
    for _ in range(ROUNDS):
        for source in HOSTS:
            for destination in HOSTS:
                if source == destination:
                    continue
                port = servers[destination].twamp_port
                settings = PingSettings(destination, port, source=source, **QUICK)
                shift = STALE_SHIFT_NS if (source, destination) == STALE else 0
                runs.append(await _run(ping, settings, source, destination, shift))
    for source, destination in OWAMP_PAIRS:
        port = servers[destination].port
        settings = PingSettings(destination, port, source=source, **QUICK)
        runs.append(await _run(owping, settings, source, destination))
    closed, _ = free_ports(FAILING[1], 1)  # nothing listens there: connection refused
    settings = PingSettings(FAILING[1], closed, count=10, source=FAILING[0])
    runs.append(await _run(ping, settings, *FAILING))
    return runs


async def _store(location: str, runs: list[Measurement]) -> None:
    archive = Archive.at(location, keep_records=True)
    for run in runs:
        archive.store(run)
    assert await archive.flush(30)
    await archive.close()


@pytest.fixture(scope="session")
def mesh(tmp_path_factory) -> Iterator[Mesh]:
    with contextlib.ExitStack() as stack:
        servers = {host: stack.enter_context(running_server(host)) for host in HOSTS}
        runs = asyncio.run(_measure(servers))
    assert sum(run.failure is not None for run in runs) == 1, [r.failure for r in runs]
    with running_cluster() as cluster:
        mesh = Mesh(
            str(Path(tmp_path_factory.mktemp("web")) / "archive.db"),
            cluster.create_database(),
            measurements=runs,
        )
        for location in (mesh.sqlite, mesh.postgresql):
            asyncio.run(_store(location, runs))
        yield mesh


async def pair_sessions(reader: Reader, source: str, destination: str, protocol: str = "twamp"):
    """A pair's (id, values), oldest first, as the archive's `results list` query reads them."""
    rows = await reader.sessions(Filter(target=destination))
    return [(i, v) for i, v in rows if v["source"] == source and v["protocol"] == protocol]


async def expected_twamp_states(reader: Reader) -> dict[tuple[str, str], tuple[str, str]]:
    """(RTT half, loss half) per TWAMP pair, from the archive and the mesh's thresholds."""
    expected = {}
    for source in HOSTS:
        for destination in HOSTS:
            if source != destination:
                values = (await pair_sessions(reader, source, destination))[-1][1]
                loss = "ok" if values["packets_lost"] == 0 else "not ok"
                rtt = {RED: "bad", AMBER: "warn"}.get((source, destination), "ok")
                expected[source, destination] = (rtt, loss)
    return expected | {FAILING: ("failed", "failed"), STALE: ("stale", "stale")}
