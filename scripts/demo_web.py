"""make demo, last part: a short local mesh and its dashboard.

Three ``otwamp server`` processes listen on 127.0.0.1, 127.0.0.2 and
127.0.0.3. This program measures every ordered pair among them with real
TWAMP sessions (from the source's own address) and two pairs with OWAMP, a
round every few seconds, stores each run in a SQLite archive through the
archive API, then starts ``otwamp web`` on that archive and prints its URL.
On a terminal the mesh keeps measuring (the grid updates itself) until Enter
is pressed; otherwise it checks that the dashboard answers and stops. Every
process it started is stopped on the way out.

Usage: python scripts/demo_web.py [ROUNDS]; KEEP=1 keeps the archive's directory.
"""

import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

from otwamp.archive.rows import Measurement
from otwamp.archive.store import Archive
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.owamp_client import owping
from otwamp.drivers.twamp_client import ping
from otwamp.errors import OtwampError

OTWAMP = str(Path(sys.executable).with_name("otwamp"))
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")
OWAMP_PAIRS = (("127.0.0.1", "127.0.0.2"), ("127.0.0.3", "127.0.0.1"))
LISTENING = re.compile(rb"listening for (TWAMP|OWAMP)-Control on \S+:(\d+)")
DASHBOARD = re.compile(rb"dashboard on (http://\S+/)")
SPACING = 2.0  # seconds between rounds


async def _started(command: list[str], pattern: re.Pattern[bytes], count: int):
    """Start ``command``; the process and the first ``count`` matches of its stderr lines."""
    process = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    found = []
    while len(found) < count:
        line = await asyncio.wait_for(process.stderr.readline(), 20)
        if not line:
            raise SystemExit(f"{command[1]} exited: {await process.wait()}")
        if match := pattern.search(line):
            found.append(match)
    asyncio.get_running_loop().create_task(_drain(process.stderr))
    return process, found


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(4096):
        pass


@contextlib.asynccontextmanager
async def _processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    try:
        yield started
    finally:
        for process in started:
            if process.returncode is None:
                process.terminate()
                await process.wait()


async def _run(archive: Archive, run, settings: PingSettings, source: str) -> None:
    start = time.time_ns()
    protocol = "twamp" if run is ping else "owamp"
    try:
        outcome, failure = await run(settings), None
    except (OtwampError, OSError) as exc:
        outcome, failure = None, str(exc)
    end = time.time_ns()
    archive.store(
        Measurement(
            "demo", source, settings.host, start, end, protocol, outcome, failure, mode="open"
        )
    )


async def _round(archive: Archive, ports: dict[str, dict[str, int]]) -> None:
    quick = {"count": 20, "interval": 0.01, "wait": 0.3}
    for source in HOSTS:
        for destination in HOSTS:
            if source != destination:
                settings = PingSettings(
                    destination, ports[destination]["TWAMP"], source=source, **quick
                )
                await _run(archive, ping, settings, source)
    for source, destination in OWAMP_PAIRS:
        settings = PingSettings(destination, ports[destination]["OWAMP"], source=source, **quick)
        await _run(archive, owping, settings, source)


async def main(work: Path, rounds: int) -> None:
    location = str(work / "archive.db")
    archive = Archive.at(location, keep_records=True)
    async with _processes() as started:
        ports: dict[str, dict[str, int]] = {}
        for host in HOSTS:
            command = [OTWAMP, "server", "--listen", f"{host}:0", "--owamp-listen", f"{host}:0"]
            process, found = await _started(command, LISTENING, 2)
            started.append(process)
            ports[host] = {m.group(1).decode(): int(m.group(2)) for m in found}
        print(f"== a mesh of three otwamp servers on {', '.join(HOSTS)}: {rounds} rounds")
        for number in range(rounds):
            await _round(archive, ports)
            print(f"   round {number + 1}: {archive.stored + archive.spooled} sessions archived")
            await asyncio.sleep(SPACING)
        await archive.flush(10)
        command = [OTWAMP, "web", "--archive", location, "--listen", "127.0.0.1:0"]
        process, (found,) = await _started(command, DASHBOARD, 1)
        started.append(process)
        url = found.group(1).decode()
        print(f"== otwamp web --archive {location}\n\n   the dashboard: {url}\n")
        if sys.stdin.isatty():
            print("   (the mesh keeps measuring; press Enter to stop)")
            waiting = asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            while not waiting.done():
                await _round(archive, ports)
                await asyncio.wait([waiting], timeout=SPACING)
        else:
            with urllib.request.urlopen(url + "api/grid", timeout=10) as response:
                grids = len(response.read())
            print(f"   (it answers: /api/grid is {grids} octets; not a terminal, so stopping)")
    await archive.close()


if __name__ == "__main__":
    directory = Path(tempfile.mkdtemp(prefix="otwamp-demo-"))
    try:
        asyncio.run(main(directory, int(sys.argv[1]) if len(sys.argv) > 1 else 3))
    finally:
        if os.environ.get("KEEP"):
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
