"""What the STAMP end-to-end tests share: a real ``otwamp server`` reflecting STAMP.

Import as ``from tests.stamp.stamp_support import ...``.
"""

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.processes import endpoint, family, otwamp_command, stop_process

READY = "STAMP reflector ("
ALL_TLVS = "location,timestamp,cos,direct,access,follow-up"  # every --tlv name


def free_udp_port(host: str) -> int:
    """A UDP port free on ``host`` now (the kernel's choice)."""
    with socket.socket(family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class Reflector:
    """A running ``otwamp server`` with a STAMP reflector on ``host``:``port``."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def target(self) -> str:
        return endpoint(self.host, self.port)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_for(path: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(f"otwamp server exited:\n{path.read_text(errors='replace')}")
        time.sleep(0.02)
    raise RuntimeError(f"no {text!r} within {timeout} s:\n{path.read_text(errors='replace')}")


@contextlib.contextmanager
def running_reflector(
    host: str = "127.0.0.1", extra: Sequence[str] = (), port: int | None = None
) -> Iterator[Reflector]:
    """``otwamp server`` serving STAMP only on a free UDP port of ``host``, stopped after.

    With ``port`` given, ``extra`` says where to listen (e.g. in a config file).
    """
    with tempfile.TemporaryDirectory(prefix="stp-") as tmp:
        listen: list[str] = []
        if port is None:
            port = free_udp_port(host)
            listen = ["--stamp-listen", endpoint(host, port)]
        log_path = Path(tmp) / "server.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *otwamp_command(),
                    "server",
                    "--listen",
                    "off",
                    "--owamp-listen",
                    "off",
                    *listen,
                    *extra,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(log_path, READY, process, 10.0)
            yield Reflector(host, port, process, log_path)
        finally:
            stop_process(process)
