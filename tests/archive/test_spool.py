"""The spool: results survive an archive that goes away, within a stated bound."""

import asyncio
import itertools
import time

from otwamp.archive.store import Archive, Backoff
from tests.archive.builders import START_NS, measurement, ping_outcome

FAST = Backoff(first=0.05, most=0.4)


def _batch(first: int, count: int):
    return [measurement(ping_outcome(), start_ns=START_NS + i) for i in range(first, first + count)]


async def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def test_nothing_is_lost_when_postgresql_restarts_mid_run(postgres):
    url = postgres.create_database()

    async def scenario():
        archive = Archive.at(url, keep_records=True, backoff=FAST)
        for item in _batch(0, 30):
            archive.store(item)
        assert await archive.flush(20)
        await asyncio.to_thread(postgres.stop, "fast")
        try:
            for item in _batch(30, 30):
                archive.store(item)
                await asyncio.sleep(0.005)  # stored while the server is down, spread out
            await _wait_for(lambda: archive.retries >= 3)  # it kept trying, backing off
            assert archive.spooled == 30 and not await archive.flush(0.2)
        finally:
            await asyncio.to_thread(postgres.start)
        for item in _batch(60, 10):  # and after it is back
            archive.store(item)
        assert await archive.flush(20)
        rows = await archive.engine.query(
            "SELECT start_ns, COUNT(DISTINCT uid) FROM sessions GROUP BY start_ns ORDER BY start_ns"
        )
        records = await archive.engine.query("SELECT COUNT(*) FROM records")
        await archive.close()
        return archive, rows, records[0][0]

    archive, rows, records = asyncio.run(scenario())
    assert [(start, count) for start, count in rows] == [(START_NS + i, 1) for i in range(70)]
    assert records == 70
    assert (archive.stored, archive.lost, archive.spooled) == (70, 0, 0)


def _nowhere(tmp_path) -> str:
    """A PostgreSQL URL whose socket directory has no server: never reachable."""
    return f"postgresql://otwamp@/db?host={tmp_path}&port=5432"


def test_the_spool_keeps_the_newest_within_its_bound(tmp_path):
    async def scenario():
        archive = Archive.at(_nowhere(tmp_path), spool_sessions=5, backoff=FAST)
        for item in _batch(0, 8):
            archive.store(item)
        await _wait_for(lambda: archive.retries >= 1)
        spooled = [row.values[10] for row in archive._spool]
        await archive.close(timeout=0.1)
        return archive, spooled

    archive, spooled = asyncio.run(scenario())
    assert (archive.lost, archive.stored) == (3, 0)
    assert spooled == [START_NS + i for i in range(3, 8)]


def test_records_go_first_when_the_spool_is_short_of_octets(tmp_path):
    async def scenario():
        archive = Archive.at(_nowhere(tmp_path), keep_records=True, spool_records=1_000)
        for item in _batch(0, 6):
            archive.store(item)
        kept = [row.records is not None for row in archive._spool]
        await archive.close(timeout=0.1)
        return archive, kept

    archive, kept = asyncio.run(scenario())
    assert archive.lost == 0 and archive.records_lost == kept.count(False) > 0
    assert kept == sorted(kept)  # the oldest lost theirs


def test_back_off_doubles_up_to_its_ceiling():
    delays = Backoff(first=0.5, most=4.0, jitter=0.0).delays()
    assert list(itertools.islice(delays, 6)) == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittered = list(itertools.islice(Backoff(first=1.0, most=1.0).delays(), 50))
    assert all(0.9 <= delay <= 1.1 for delay in jittered) and len(set(jittered)) > 1
