"""``python -m bench.web``: how long the dashboard's pair page takes to render a week of sessions.

A SQLite archive gets 7 days of one pair's TWAMP sessions every 10 s
(60,480 rows) through the archive API (``Archive.store``): the outcomes are
those of real ``ping`` sessions against a real ``otwamp server`` on
127.0.0.1, each stored many times at its own time of the week. A real
``otwamp web`` process serves it; Debian's headless Chromium (over the
DevTools protocol, tests/web/chromium.py) loads the pair page for the last
7 days, cold each time (a new page load), and the figure is the page's own
``performance.now()`` when its charts, histogram and session table are drawn:
navigation start to pixels ready, the server's queries (downsampling in SQL)
included. Target: under 1 s. The API's own times are measured beside it.

Prints one JSON object; exit status 0 when the target is met, 1 when not, 2
when the benchmark could not run. Progress goes to stderr.
"""

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp

from bench.machine import load_average, machine_facts
from bench.procs import BenchError, otwamp_command, otwamp_server
from bench.stats import median
from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.twamp_client import ping
from tests.web.chromium import BrowserError, launched

DAYS = 7
INTERVAL_S = 10
ROWS = DAYS * 86_400 // INTERVAL_S  # 60,480
REAL_SESSIONS = 20
TARGET_MS = 1000.0
SOURCE, DESTINATION = "127.0.0.1", "127.0.0.1"
_URL = re.compile(rb"dashboard on (http://\S+/)")


def log(message: str) -> None:
    print(f"bench.web: {message}", file=sys.stderr, flush=True)


async def _fill(location: str, port: int, rows: int) -> tuple[float, int, int]:
    """Store ``rows`` sessions 10 s apart ending now: seconds it took, the week's bounds (ns)."""
    settings = PingSettings(DESTINATION, port, count=100, interval=0.001, wait=0.2)
    outcomes = [await ping(settings) for _ in range(REAL_SESSIONS)]
    began = time.perf_counter()
    archive = Archive.at(location, spool_sessions=rows)  # the week at once, none dropped
    now = time.time_ns()
    first = now - rows * INTERVAL_S * 10**9
    for i in range(rows):
        start = first + i * INTERVAL_S * 10**9
        outcome = outcomes[i % len(outcomes)]
        archive.store(
            Measurement("bench", SOURCE, DESTINATION, start, start + 10**8, "twamp", outcome)
        )
        if i % 2000 == 0:
            await asyncio.sleep(0)  # let the writer run
    if not await archive.flush(300):
        raise BenchError("the archive did not take the sessions within 300 s")
    await archive.close()
    return time.perf_counter() - began, first, now


@contextlib.contextmanager
def _otwamp_web(location: str) -> Iterator[str]:
    """A real `otwamp web` on a free loopback port; its base URL."""
    command = [*otwamp_command(), "web", "--archive", location, "--listen", "127.0.0.1:0"]
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=output)
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                output.seek(0)
                found = _URL.search(output.read())
                if found:
                    yield found.group(1).decode()
                    break
                if process.poll() is not None:
                    raise BenchError(f"otwamp web exited with {process.returncode}")
                time.sleep(0.05)
            else:
                raise BenchError("otwamp web did not say where it listens")
        finally:
            process.terminate()
            process.wait(10)


async def _api_ms(base: str, query: dict[str, str], runs: int) -> dict[str, Any]:
    """The median time of each API request the page makes."""
    times: dict[str, list[float]] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(runs):
            for path in ("api/series", "api/histogram", "api/sessions"):
                began = time.perf_counter()
                params = query | ({"points": "1272"} if path == "api/series" else {})
                async with session.get(base + path, params=params) as response:
                    await response.read()
                    if response.status != 200:
                        raise BenchError(f"{path}: HTTP {response.status}")
                times.setdefault(path, []).append((time.perf_counter() - began) * 1000)
    return {path: round(median(values) or 0.0, 1) for path, values in times.items()}


async def _render_ms(
    base: str, url: str, runs: int, log_dir: Path, screenshot: Path | None
) -> list[float]:
    """performance.now() when the page has drawn everything, per cold load."""
    found = []
    async with launched(log_dir) as page:
        for run in range(runs + 1):
            await page.navigate(base + "static/index.html")  # leave the page: cold load next
            await page.navigate(url)
            await page.wait_for("window.otwampLoads >= 1", timeout=60)
            loaded = await page.evaluate("window.otwampLoaded")
            if loaded["sessions"] != ROWS:
                raise BenchError(f"the page shows {loaded['sessions']} sessions, not {ROWS}")
            rendered = await page.evaluate("window.otwampRenderedAt")
            if run:  # the first load warms the server and the browser's caches
                found.append(round(rendered, 1))
                log(f"render {run}: {rendered:.0f} ms")
        if screenshot is not None:
            await page.screenshot(screenshot, height=1240)  # the charts
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="page loads measured (5)")
    parser.add_argument("--screenshot", type=Path, help="save a PNG of the page here")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"bench": "web", "machine": machine_facts(), "rows": ROWS}
    status = 0
    try:
        with tempfile.TemporaryDirectory(prefix="bench-web-") as work:
            location = str(Path(work) / "archive.db")
            with otwamp_server() as port:
                log(f"{REAL_SESSIONS} real TWAMP sessions, then {ROWS} rows stored")
                took, first, last = asyncio.run(_fill(location, port, ROWS))
                result["fill_s"] = round(took, 1)
            result["archive_mb"] = round(Path(location).stat().st_size / 2**20, 1)
            with _otwamp_web(location) as base:
                # the week exactly (the page's "7 d" is the same span from a later now)
                week = {"since": str(first / 10**9), "until": str(last / 10**9 + 1)}
                pair = {"source": SOURCE, "destination": DESTINATION, "protocol": "twamp"} | week
                url = f"{base}pair?{urlencode(pair)}"
                renders = asyncio.run(_render_ms(base, url, args.runs, Path(work), args.screenshot))
                api = asyncio.run(_api_ms(base, pair, args.runs))
        measured = median(renders)
        result["pair_page_7d"] = {
            "render_ms": renders,
            "median_ms": measured,
            "max_ms": max(renders),
            "api_median_ms": api,
            "target": f"< {TARGET_MS:g} ms (median of {args.runs} cold loads)",
            "pass": measured is not None and measured < TARGET_MS,
        }
        result["pass"] = result["pair_page_7d"]["pass"]
        status = 0 if result["pass"] else 1
    except (BenchError, BrowserError) as exc:
        result["error"], result["pass"], status = str(exc), False, 2
    result["machine"]["loadavg_at_end"] = load_average()
    print(json.dumps(result, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
