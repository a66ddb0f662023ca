"""The processes a benchmark talks to: ``otwamp server`` and the baseline echo.

Each runs as a subprocess of its own, started before and stopped after the
measurements, so that process start-up never counts toward a figure.
"""

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench.machine import ROOT

_LISTENING = re.compile(r"listening for (TWAMP|OWAMP)-Control on (\S+):(\d+)")
START_TIMEOUT = 15.0  # seconds for a subprocess to report its port
ALL_MODES = "open,authenticated,encrypted,mixed"
IDENTITY = "bench"  # the KeyID of the benchmark's pass-phrase
PBKDF2_COUNT = 2048  # the Server-Greeting's Count: the targets assume it


class BenchError(Exception):
    """A benchmark could not run (not: ran and missed its target)."""


def otwamp_command() -> list[str]:
    """How to run the ``otwamp`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("otwamp")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from otwamp.cli.main import main; sys.exit(main())"]


def _stop(process: "subprocess.Popen[bytes]") -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass(frozen=True, slots=True)
class Secrets:
    """A pass-phrase file with one identity, and a server config that sets the Count."""

    identity: str
    passphrase: bytes = field(repr=False)
    keyfile: Path
    config: Path
    count: int


@contextmanager
def bench_secrets(count: int = PBKDF2_COUNT) -> Iterator[Secrets]:
    """A temporary pfs file (``identity<TAB>hex``, a random pass-phrase) and config file."""
    with tempfile.TemporaryDirectory(prefix="otwamp-bench-") as directory:
        keyfile = Path(directory, "keys.pfs")
        descriptor = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        passphrase = os.urandom(16).hex().encode()
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(f"{IDENTITY}\t{passphrase.hex()}\n")
        config = Path(directory, "server.toml")
        config.write_text(f"[server]\ncount = {count}\n", encoding="ascii")
        yield Secrets(IDENTITY, passphrase, keyfile, config, count)


def security_arguments(mode: str, secrets: Secrets | None) -> list[str]:
    """``otwamp ping`` flags for ``mode``: ``-A MODE -u ID -k FILE`` (nothing for open)."""
    if mode == "open":
        return []
    if secrets is None:
        raise BenchError(f"mode {mode} needs the benchmark's key file")
    return ["-A", mode, "-u", secrets.identity, "-k", str(secrets.keyfile)]


@contextmanager
def otwamp_server(
    secrets: Secrets | None = None,
    *,
    protocol: str = "TWAMP",
    host: str = "127.0.0.1",
    modes: str = ALL_MODES,
    extra: Sequence[str] = (),
) -> Iterator[int]:
    """``otwamp server`` on ``host`` and a free port; yields the ``protocol``-Control port.

    TWAMP (the default) or OWAMP: the other one is not served. With
    ``secrets`` it offers ``modes`` (by default every one: open,
    authenticated, encrypted, mixed) with their key file and PBKDF2 Count;
    without, open mode only. ``extra`` goes to the command line as it is.
    """
    command = [*otwamp_command(), "server"]
    if protocol == "TWAMP":
        command += ["--listen", f"{host}:0", "--owamp-listen", "off"]
    else:
        command += ["--listen", "off", "--owamp-listen", f"{host}:0"]
    if secrets is not None:
        command += ["--modes", modes, "--keyfile", str(secrets.keyfile)]
        command += ["--config", str(secrets.config)]
    command += extra
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
        )
        try:
            yield _await_listening(process, log, protocol)
        finally:
            _stop(process)


def _await_listening(process: "subprocess.Popen[bytes]", log: IO[bytes], protocol: str) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read().decode(errors="replace")
        for match in _LISTENING.finditer(text):
            if match.group(1) == protocol:
                return int(match.group(3))
        if process.poll() is not None:
            raise BenchError(f"otwamp server exited ({process.returncode}): {text.strip()}")
        time.sleep(0.02)
    raise BenchError("otwamp server did not report its listening port in time")


@contextmanager
def echo_server(mode: str) -> Iterator[int]:
    """The baseline echo (``python -m bench.echo MODE``); yields its UDP port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.echo", mode],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode().strip()  # the echo prints it at once
        if not line.isdigit():
            raise BenchError(f"the {mode} echo did not start (said {line!r})")
        yield int(line)
    finally:
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()
