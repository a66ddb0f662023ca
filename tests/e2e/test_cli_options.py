"""Command-line options as an operator meets them, with real processes.

A server with no address to listen on exits at once with one line; ``-u/-k``
without ``-A`` measures in a secured mode (never silently open); ``-v`` logs.
"""

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import otwamp_command

Runner = Callable[..., subprocess.CompletedProcess[str]]
FAST = ["-c", "5", "-i", "0.01", "--wait", "0.3"]
EXIT_WITHIN = 5.0  # seconds: a server that cannot listen must not linger


def test_server_with_its_only_address_taken_exits_with_one_line() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [*otwamp_command(), "server", "--listen", f"127.0.0.1:{port}", "--owamp-listen", "off"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=EXIT_WITHIN * 2,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"otwamp: cannot listen for TWAMP-Control on 127.0.0.1:{port} (Address already in use)"
    ]
    assert result.stdout == ""
    assert elapsed < EXIT_WITHIN


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pass-phrase file with identity 'alice'."""
    path = tmp_path_factory.mktemp("keys") / "keys.pfs"
    path.write_text("alice\t" + b"correct horse".hex() + "\n")
    path.chmod(0o600)  # a key file as an operator keeps it
    return path


@pytest.fixture(scope="module")
def open_or_authenticated(keyfile: Path, owamp_server_factory: Callable[..., Any]) -> Any:
    """A server offering open and authenticated modes, for TWAMP and OWAMP."""
    with owamp_server_factory(
        "127.0.0.1", extra_args=["--modes", "open,authenticated", "--keyfile", str(keyfile)]
    ) as server:
        yield server


@pytest.mark.parametrize("command", ["ping", "owping"])
def test_key_without_modes_measures_authenticated(
    open_or_authenticated: Any, keyfile: Path, run_ping: Runner, run_owping: Runner, command: str
) -> None:
    server = open_or_authenticated
    run, target = (
        (run_ping, server.twamp_target) if command == "ping" else (run_owping, server.target)
    )
    result = run([target, *FAST, "-u", "alice", "-k", str(keyfile)])
    assert result.returncode == 0, result.stderr
    assert "mode authenticated, key source passphrase" in result.stdout
    assert "mode open" not in result.stdout


def test_verbose_logs_to_stderr(open_or_authenticated: Any, run_owping: Runner) -> None:
    target = open_or_authenticated.target
    quiet = run_owping([target, *FAST])
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    verbose = run_owping([target, *FAST, "-v"])
    assert verbose.returncode == 0, verbose.stderr
    assert f"otwamp INFO OWAMP to 127.0.0.1 port {open_or_authenticated.port}" in verbose.stderr
    assert "DEBUG" not in verbose.stderr
    debug = run_owping([target, *FAST, "-vv"])
    assert "otwamp DEBUG count 5, interval 0.01 s" in debug.stderr
    assert "otwamp INFO" not in verbose.stdout  # the report on stdout stays clean
