"""What the end-to-end helpers share: the ``otwamp`` command, endpoints, ports and stopping.

Used by ``conftest.py`` and ``ike_support.py``; import as ``from tests.e2e.processes import ...``.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

STOP_TIMEOUT = 5.0


def otwamp_command() -> list[str]:
    """The ``otwamp`` console script of the interpreter running the tests."""
    script = Path(sys.executable).with_name("otwamp")
    if script.exists():
        return [str(script)]
    found = shutil.which("otwamp")
    if found:
        return [found]
    return [sys.executable, "-c", "from otwamp.cli.main import main; main()"]


def endpoint(host: str, port: int) -> str:
    """``HOST:PORT`` as the CLI takes it (IPv6 in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    """Whether a ``kind`` socket can bind ``host``:``port`` now."""
    with socket.socket(family(host), kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    """Send ``sig``, wait a while, then SIGKILL; always reaps the process."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def run_cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``otwamp *args`` as a separate process; never raises on a non-zero exit."""
    return subprocess.run(
        [*otwamp_command(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
