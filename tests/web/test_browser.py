"""The dashboard in a real headless Chromium, served by a real ``otwamp web`` process over an
archive of real sessions: the grid's cells against the archive, its live update, keyboard
moves, a click through to a pair, the charts' series against the archive, a custom range,
a zoom that zooms every chart, and a phone-sized screen. Screenshots go to the test's
tmp_path (printed at the end; run with -s to see where)."""

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from otwamp.archive.query import Reader
from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from tests.e2e.conftest import free_ports, wait_for_text
from tests.e2e.processes import otwamp_command, stop_process
from tests.web.chromium import chromium_binary, launched
from tests.web.conftest import (
    AMBER,
    HOSTS,
    RED,
    expected_twamp_states,
    pair_sessions,
)

pytestmark = pytest.mark.skipif(chromium_binary() is None, reason="needs Debian's chromium")

CONFIG = f"""[web]
refresh = 1
[[web.pairs]]
source = "{RED[0]}"
destination = "{RED[1]}"
delay_red = 0.000001
[[web.pairs]]
source = "{AMBER[0]}"
destination = "{AMBER[1]}"
delay_amber = 0.000001
"""
CELLS = """Array.from(document.querySelectorAll('table.grid[data-protocol="twamp"] a.cell'))
  .map(a => [a.dataset.key, Array.from(a.querySelectorAll('.half'))
  .map(h => [h.dataset.state, h.title])])"""
NEWLY_FAILED = ("127.0.0.2", "127.0.0.3")


@contextlib.contextmanager
def otwamp_web(location: str, log_dir: Path):
    """A real `otwamp web` process on a free loopback port; its base URL."""
    config = log_dir / "web.toml"
    config.write_text(CONFIG)
    port, _ = free_ports("127.0.0.1", 1)
    log_path = log_dir / "web.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *otwamp_command(),
                "web",
                "--archive",
                location,
                "--listen",
                f"127.0.0.1:{port}",
                "--config",
                str(config),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_text(log_path, f"dashboard on http://127.0.0.1:{port}/", process)
        yield f"http://127.0.0.1:{port}/"
    finally:
        assert stop_process(process) == 0, log_path.read_text()


def _copy(source: str, target: Path) -> str:
    """A copy of a SQLite archive this test may write to (the backup API: WAL included)."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)
    return str(target)


async def _fail_now(location: str) -> None:
    """Archive a real failed run of NEWLY_FAILED: nothing listens where it connects."""
    from otwamp.drivers.control_client import PingSettings
    from otwamp.drivers.twamp_client import ping

    closed, _ = free_ports(NEWLY_FAILED[1], 1)
    start = time.time_ns()
    with pytest.raises(OSError) as failure:
        await ping(PingSettings(NEWLY_FAILED[1], closed, source=NEWLY_FAILED[0]))
    archive = Archive.at(location)
    archive.store(
        Measurement(
            "mesh", *NEWLY_FAILED, start, time.time_ns(), "twamp", failure=str(failure.value)
        )
    )
    assert await archive.flush(10)
    await archive.close()


async def _archive(location: str):
    reader = await Reader.open(location)
    try:
        states = await expected_twamp_states(reader)
        sessions = await pair_sessions(reader, *AMBER)
    finally:
        await reader.close()
    return states, sessions


def _ms(values):
    return [None if v is None else pytest.approx(v * 1e3, rel=1e-9) for v in values]


def test_grid_pair_and_zoom_in_a_real_browser(mesh, tmp_path):
    location = _copy(mesh.sqlite, tmp_path / "archive.db")
    states, sessions = asyncio.run(_archive(location))
    shots = []
    with otwamp_web(location, tmp_path) as base:

        async def run():
            async with launched(tmp_path) as page:
                # --- the grid: every cell's halves as the archive and thresholds say
                await page.navigate(base)
                await page.wait_for("window.otwampGridLoads >= 1")
                cells = {tuple(k.split()[1:]): v for k, v in await page.evaluate(CELLS)}
                assert {pair: tuple(s for s, _ in h) for pair, h in cells.items()} == states
                assert set(cells) == {(s, d) for s in HOSTS for d in HOSTS if s != d}
                assert "(red)" in cells[RED][0][1] and "(amber)" in cells[AMBER][0][1]
                shots.append(await page.screenshot(tmp_path / "grid.png"))
                # --- it updates itself: a real failure archived now shows without a reload
                await page.evaluate("window.notReloaded = true")
                await _fail_now(location)
                key = json.dumps(f"twamp {' '.join(NEWLY_FAILED)}")
                await page.wait_for(
                    f"document.querySelector('a.cell[data-key={key}] .half')"
                    ".dataset.state === 'failed'"
                )
                assert await page.evaluate("window.notReloaded === true")
                # --- keyboard: arrows move between cells
                first = await page.evaluate(
                    "(() => { const a = document.querySelector('a.cell'); a.focus();"
                    " return a.dataset.key; })()"
                )
                await page.key("ArrowRight")
                moved = await page.evaluate("document.activeElement.dataset.key")
                assert first == "twamp 127.0.0.1 127.0.0.2" and moved == "twamp 127.0.0.1 127.0.0.3"
                await page.key("ArrowDown")
                assert await page.evaluate("document.activeElement.dataset.key") == (
                    "twamp 127.0.0.2 127.0.0.3"
                )
                # --- click the amber pair: its page, 24 h
                x, y = await page.centre(f'a.cell[data-key="twamp {" ".join(AMBER)}"]')
                loaded = page.event("Page.loadEventFired")
                await page.click(x, y)
                await asyncio.wait_for(loaded, 15)
                assert await page.evaluate("location.pathname") == "/pair"
                await page.wait_for("window.otwampLoads >= 1")
                loaded_range = await page.evaluate("window.otwampLoaded")
                assert loaded_range["sessions"] == len(sessions)
                assert loaded_range["until"] - loaded_range["since"] == pytest.approx(86400, 1)
                rtt = await page.evaluate("otwampCharts.rtt.data")
                assert min(rtt[1]) == pytest.approx(min(v["rtt_min"] for _, v in sessions) * 1e3)
                assert max(rtt[3]) == pytest.approx(max(v["rtt_p95"] for _, v in sessions) * 1e3)
                ids = await page.evaluate(
                    "Array.from(document.querySelectorAll('#sessions tbody tr'))"
                    ".map(r => Number(r.dataset.id))"
                )
                assert ids == [i for i, _ in reversed(sessions)]
                links = await page.evaluate(
                    "document.querySelectorAll('#sessions a[href$=\"/packets\"]').length"
                )
                assert links == len(sessions)  # records kept for each
                shots.append(await page.screenshot(tmp_path / "pair.png"))
                # --- a custom range around the sessions: one point per session
                first_s = sessions[0][1]["start_ns"] / 1e9
                last_s = sessions[-1][1]["start_ns"] / 1e9
                since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first_s - 1))
                until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(last_s + 2))
                await page.evaluate(
                    f"document.getElementById('since').value = '{since}';"
                    f"document.getElementById('until').value = '{until}'"
                )
                loads = await page.evaluate("window.otwampLoads")
                await page.click(*(await page.centre("#range button[type=submit]")))
                await page.wait_for(f"window.otwampLoads > {loads}")
                charts = await page.evaluate(
                    "Object.fromEntries(Object.entries(otwampCharts).map(([k, u]) => [k, u.data]))"
                )
                values = [v for _, v in sessions]
                assert charts["rtt"][0] == pytest.approx([v["start_ns"] / 1e9 for v in values])
                for i, column in enumerate(("rtt_min", "rtt_median", "rtt_p95"), 1):
                    assert charts["rtt"][i] == _ms(v[column] for v in values)
                assert charts["delay"][1] == _ms(v["fwd_delay_median"] for v in values)
                assert charts["delay"][3] == _ms(v["bwd_delay_median"] for v in values)
                unsync = [v["fwd_delay_median"] if v["fwd_sync"] is False else None for v in values]
                assert charts["delay"][2] == _ms(unsync)  # unsynchronized samples marked
                assert charts["loss"][1] == [0] * len(values)
                assert charts["jitter"][1] == _ms(v["fwd_ipdv_jitter"] for v in values)
                assert sum(charts["hist"][1]) == len(values)
                # --- zoom: drag across the first session only, every chart follows
                left, right = await page.evaluate(
                    "(() => { const u = otwampCharts.rtt;"
                    " const r = u.over.getBoundingClientRect();"
                    f" return [r.left + u.valToPos({first_s - 0.5}, 'x'),"
                    f" r.left + u.valToPos({(first_s + sessions[1][1]['start_ns'] / 1e9) / 2},"
                    " 'x')]; })()"
                )
                top = await page.evaluate(
                    "(() => { const r = otwampCharts.rtt.over.getBoundingClientRect();"
                    " return r.top + r.height / 2; })()"
                )
                loads = await page.evaluate("window.otwampLoads")
                await page.drag(left, right, top)
                await page.wait_for(f"window.otwampLoads > {loads}")
                scales = await page.evaluate(
                    "['rtt', 'delay', 'loss', 'jitter'].map(k =>"
                    " [otwampCharts[k].scales.x.min, otwampCharts[k].scales.x.max])"
                )
                assert all(scale == scales[0] for scale in scales)
                zoomed = await page.evaluate("window.otwampLoaded")
                assert scales[0] == pytest.approx([zoomed["since"], zoomed["until"]])
                assert zoomed["since"] < first_s < zoomed["until"] < last_s
                assert zoomed["sessions"] == 1
                rows = await page.evaluate("document.querySelectorAll('#sessions tbody tr').length")
                assert rows == 1
                assert "since=" in await page.evaluate("location.search")
                shots.append(await page.screenshot(tmp_path / "pair-zoomed.png"))
                # --- a phone-sized screen: nothing wider than it, the grid scrolls inside
                await page.viewport(390, 844, mobile=True)
                await page.navigate(base)
                await page.wait_for("window.otwampGridLoads >= 1")
                assert await page.evaluate("document.documentElement.scrollWidth") <= 390
                shots.append(await page.screenshot(tmp_path / "grid-phone.png"))
                await page.navigate(base + f"pair?source={AMBER[0]}&destination={AMBER[1]}")
                await page.wait_for("window.otwampLoads >= 1")
                assert await page.evaluate("otwampCharts.rtt.width") <= 390
                assert await page.evaluate("document.documentElement.scrollWidth") <= 390
                shots.append(await page.screenshot(tmp_path / "pair-phone.png"))

        asyncio.run(run())
    for shot in shots:
        assert shot.stat().st_size > 10_000
        print(f"screenshot: {shot}")
