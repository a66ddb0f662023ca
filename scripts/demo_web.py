"""make demo, last part: three agents on loopback addresses and their dashboard.

Three ``otwamp agent`` processes, on 127.0.0.1, 127.0.0.2 and 127.0.0.3, share
one mesh file and one SQLite archive; each measures the other two with TWAMP
every 3 s and OWAMP every 5 s, and the first serves the dashboard ([web]).
This program prints the dashboard's URL. On a terminal the mesh keeps
measuring (the grid updates itself) until Enter is pressed; otherwise it
waits until every pair has a result, checks that the dashboard shows them,
and stops. Every process it started is stopped on the way out.

Usage: python scripts/demo_web.py; KEEP=1 keeps the directory (configs, logs, archive).
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

OTWAMP = str(Path(sys.executable).with_name("otwamp"))
HOSTS = {"a": "127.0.0.1", "b": "127.0.0.2", "c": "127.0.0.3"}
DASHBOARD = re.compile(r"dashboard on (http://\S+/)")
TESTS = """
[agent.server]
modes = "open"

[[test]]
name = "rtt"
protocol = "twamp"
targets = "mesh"
packets = 20
interval = 0.05
every = "3s"

[[test]]
name = "owd"
protocol = "owamp"
targets = "mesh"
packets = 20
interval = 0.05
wait = 1.0
every = "5s"
"""
PAIRS = len(HOSTS) * (len(HOSTS) - 1)


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_configs(directory: Path) -> None:
    """mesh.toml and one NAME.toml per agent; agent a also serves the dashboard."""
    members = []
    for name, host in HOSTS.items():
        ports = {key: free_port(host) for key in ("twamp_port", "owamp_port")}
        members += ["[[members]]", f'name = "{name}"', f'address = "{host}"']
        members += [f"{key} = {port}" for key, port in ports.items()] + [""]
    (directory / "mesh.toml").write_text("\n".join(members))
    for name in HOSTS:
        head = f'[agent]\nname = "{name}"\nmesh = "mesh.toml"\narchive = "mesh.db"\n'
        head += 'metrics = "off"\n'
        web = '\n[web]\nlisten = "127.0.0.1:0"\nrefresh = 3\n' if name == "a" else ""
        (directory / f"{name}.toml").write_text(head + TESTS + web)


@contextlib.contextmanager
def agents(directory: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The three agents, logging to NAME.log; SIGTERM (then SIGKILL) at the end."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name in HOSTS:
            with (directory / f"{name}.log").open("wb") as log:
                command = [OTWAMP, "agent", "--config", str(directory / f"{name}.toml")]
                processes.append(subprocess.Popen(command, stdout=log, stderr=log))
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


def dashboard_url(log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = DASHBOARD.search(log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"demo: agent a did not start its dashboard:\n{log.read_text()}")


def measured_pairs(url: str) -> int:
    """How many TWAMP cells of the grid have a result (0 while there is no archive)."""
    try:
        with urllib.request.urlopen(url + "api/grid", timeout=5) as answer:
            grid = json.load(answer)
    except urllib.error.HTTPError:
        return 0
    cells = next(g for g in grid["grids"] if g["protocol"] == "twamp")["cells"]
    return sum(cell["source"] != cell["destination"] for cell in cells)


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="otwamp-demo-"))
    try:
        write_configs(directory)
        with agents(directory) as processes:
            url = dashboard_url(directory / "a.log", processes[0])
            print(f"three agents measure each other; the dashboard: {url}", flush=True)
            if sys.stdin.isatty():
                input("press Enter to stop the mesh ")
                return
            deadline = time.monotonic() + 60
            while measured_pairs(url) < PAIRS:
                if time.monotonic() > deadline:
                    raise SystemExit(f"demo: the grid has {measured_pairs(url)} of {PAIRS} pairs")
                time.sleep(0.5)
            print(f"the grid shows all {PAIRS} pairs; stopping the mesh")
    finally:
        if os.environ.get("KEEP"):
            print(f"kept {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
