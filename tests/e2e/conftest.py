"""Shared helpers for the end-to-end tests: the ``otwamp`` CLI as real processes.

Fixtures
--------
``twamp_server``
    Function scope. Starts ``otwamp server`` on 127.0.0.1 (or the host given by
    indirect parametrization, e.g. ``@pytest.mark.parametrize("twamp_server",
    ["::1"], indirect=True)``) with a free control port and a free test-port
    range, waits for its "listening for TWAMP-Control on HOST:PORT" log line and
    yields a :class:`TwampServer`, which unpacks as ``(host, port, test_ports)``.
    On teardown the server gets SIGTERM, then SIGKILL if it lingers.
``twamp_server_factory``
    Session scope. The context manager :func:`running_twamp_server` itself, for
    fixtures of a wider scope: ``with twamp_server_factory("::1") as server: ...``.
``tcpdump_capture``
    Session scope. The context manager :func:`capturing`: ``with
    tcpdump_capture(path, "tcp port 862") as pcap: ...`` runs tcpdump on ``lo``
    writing ``path``, waits for "listening on", and on exit lets the last packets
    in, stops tcpdump with SIGINT and waits for it. Needs tcpdump and the right to
    capture (root or CAP_NET_RAW).
``run_ping``
    Session scope. ``run_ping(args, timeout=20.0) -> CompletedProcess[str]`` runs
    ``otwamp ping *args`` as a separate process and captures its output as text.
``owamp_server``
    Function scope. Like ``twamp_server`` but serving OWAMP too: starts ``otwamp
    server`` with free ports for both protocols (:func:`running_server`), waits
    for both "listening" lines and yields an :class:`OwampServer`, whose
    ``target`` is the OWAMP-Control endpoint.
``owamp_server_factory``
    Session scope. The context manager :func:`running_server` itself.
``run_owping``
    Session scope. ``run_owping(args, timeout=20.0) -> CompletedProcess[str]``
    runs ``otwamp owping *args`` as a separate process.
"""

import contextlib
import random
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.processes import bindable, endpoint, otwamp_command, run_cli, stop_process

LISTENING = "listening for TWAMP-Control on"
OWAMP_LISTENING = "listening for OWAMP-Control on"
TEST_PORT_COUNT = 10
STARTUP_TIMEOUT = 10.0


def _unprivileged_span() -> tuple[int, int]:
    """Ports below the kernel's ephemeral range, so no client socket takes them meanwhile."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (20000, low - 1) if low > 21000 + TEST_PORT_COUNT else (10000, 19999)


def free_ports(host: str, count: int = TEST_PORT_COUNT) -> tuple[int, tuple[int, int]]:
    """A free TCP control port and a range of ``count`` free UDP test ports on ``host``."""
    first, last = _unprivileged_span()
    for _ in range(200):
        control = random.randint(first, last)
        low = random.randint(first, last - count + 1)
        high = low + count - 1
        if low <= control <= high or not bindable(host, control, socket.SOCK_STREAM):
            continue
        if all(bindable(host, port, socket.SOCK_DGRAM) for port in range(low, high + 1)):
            return control, (low, high)
    raise RuntimeError(f"no free ports on {host}")


def wait_for_text(
    path: Path, text: str, process: subprocess.Popen[bytes], timeout: float = STARTUP_TIMEOUT
) -> None:
    """Poll the log file ``path`` until it contains ``text``; fail if the process dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise RuntimeError(
                f"process {process.args!r} exited with {process.returncode} before "
                f"logging {text!r}:\n{path.read_text(errors='replace')}"
            )
        time.sleep(0.02)
    raise RuntimeError(
        f"process {process.args!r} logged no {text!r} within {timeout:g} s:\n"
        f"{path.read_text(errors='replace')}"
    )


@dataclass
class TwampServer:
    """A running ``otwamp server``; unpacks as ``(host, port, test_ports)``."""

    host: str
    port: int
    test_ports: tuple[int, int]
    process: subprocess.Popen[bytes]
    log_path: Path

    def __iter__(self) -> Iterator[object]:
        return iter((self.host, self.port, self.test_ports))

    @property
    def target(self) -> str:
        """The ``HOST:PORT`` argument for ``otwamp ping``."""
        return endpoint(self.host, self.port)

    def log(self) -> str:
        """What the server has written to stderr so far."""
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_twamp_server(
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
    attempts: int = 3,
    extra_args: Sequence[str] = (),
) -> Iterator[TwampServer]:
    """Run ``otwamp server *extra_args`` on ``host`` with free ports until the block ends."""
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otwamp-")))
        for attempt in range(attempts):
            port, test_ports = free_ports(host)
            log_path = log_dir / f"server-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *otwamp_command(),
                        "server",
                        "--listen",
                        endpoint(host, port),
                        "--test-ports",
                        f"{test_ports[0]}-{test_ports[1]}",
                        "--owamp-listen",
                        "off",
                        *extra_args,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            stack.callback(stop_process, process)
            try:
                wait_for_text(log_path, f"{LISTENING} {endpoint(host, port)}", process)
            except RuntimeError:
                stop_process(process)
                if attempt + 1 < attempts and "in use" in log_path.read_text(errors="replace"):
                    continue  # lost a race for the port: pick others
                raise
            break
        yield TwampServer(host, port, test_ports, process, log_path)


@dataclass
class OwampServer(TwampServer):
    """A running ``otwamp server`` serving OWAMP and TWAMP; ``port`` is OWAMP's."""

    twamp_port: int = 0

    @property
    def twamp_target(self) -> str:
        """The ``HOST:PORT`` argument for ``otwamp ping``."""
        return endpoint(self.host, self.twamp_port)


@contextlib.contextmanager
def running_server(
    host: str = "127.0.0.1",
    log_dir: Path | None = None,
    attempts: int = 3,
    extra_args: Sequence[str] = (),
    twamp: bool = True,
) -> Iterator[OwampServer]:
    """Run ``otwamp server *extra_args`` with OWAMP (and TWAMP) on ``host``'s free ports.

    With ``twamp=False`` the server gets ``--listen off`` and serves OWAMP only.
    """
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="otwamp-")))
        for attempt in range(attempts):
            port, test_ports = free_ports(host)
            twamp_port = port
            while twamp_port == port or test_ports[0] <= twamp_port <= test_ports[1]:
                twamp_port, _ = free_ports(host, 1)
            log_path = log_dir / f"server-{port}.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [
                        *otwamp_command(),
                        "server",
                        "--listen",
                        endpoint(host, twamp_port) if twamp else "off",
                        "--owamp-listen",
                        endpoint(host, port),
                        "--test-ports",
                        f"{test_ports[0]}-{test_ports[1]}",
                        *extra_args,
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            stack.callback(stop_process, process)
            try:
                wait_for_text(log_path, f"{OWAMP_LISTENING} {endpoint(host, port)}", process)
                if twamp:
                    wait_for_text(log_path, f"{LISTENING} {endpoint(host, twamp_port)}", process)
            except RuntimeError:
                stop_process(process)
                if attempt + 1 < attempts and "in use" in log_path.read_text(errors="replace"):
                    continue  # lost a race for a port: pick others
                raise
            break
        yield OwampServer(host, port, test_ports, process, log_path, twamp_port)


@contextlib.contextmanager
def capturing(
    path: Path, bpf_filter: str, interface: str = "lo", netns: str | None = None
) -> Iterator[Path]:
    """Capture ``interface`` (in network namespace ``netns``) to the pcap file ``path`` with
    tcpdump until the block ends."""
    log_path = path.with_suffix(".tcpdump.log")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(["ip", "netns", "exec", netns] if netns else []),
                "tcpdump",
                "-i",
                interface,
                "-n",
                "--immediate-mode",
                "-U",
                "-w",
                str(path),
                bpf_filter,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_text(log_path, "listening on", process)
        yield path
        time.sleep(0.5)  # let the last packets through the capture ring
    finally:
        stop_process(process, signal.SIGINT)
    if process.returncode != 0:
        raise RuntimeError(f"tcpdump exited with {process.returncode}:\n{log_path.read_text()}")


def _run_ping(args: Sequence[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``otwamp ping *args`` as a separate process; never raises on a non-zero exit."""
    return run_cli("ping", *args, timeout=timeout)


def _run_owping(args: Sequence[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ``otwamp owping *args`` as a separate process; never raises on a non-zero exit."""
    return run_cli("owping", *args, timeout=timeout)


@pytest.fixture
def twamp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TwampServer]:
    """``otwamp server`` on 127.0.0.1, or on the indirectly parametrized host."""
    host = getattr(request, "param", "127.0.0.1")
    with running_twamp_server(host, tmp_path) as server:
        yield server


@pytest.fixture(scope="session")
def twamp_server_factory() -> Callable[..., contextlib.AbstractContextManager[TwampServer]]:
    """:func:`running_twamp_server`, for fixtures wider than function scope."""
    return running_twamp_server


@pytest.fixture(scope="session")
def tcpdump_capture() -> Callable[..., contextlib.AbstractContextManager[Path]]:
    """:func:`capturing`: tcpdump on ``lo`` into a pcap file while the block runs."""
    return capturing


@pytest.fixture(scope="session")
def run_ping() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_ping(args, timeout=20.0) -> CompletedProcess[str]``: ``otwamp ping *args``."""
    return _run_ping


@pytest.fixture
def owamp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OwampServer]:
    """``otwamp server`` serving OWAMP and TWAMP on 127.0.0.1 or the parametrized host."""
    host = getattr(request, "param", "127.0.0.1")
    with running_server(host, tmp_path) as server:
        yield server


@pytest.fixture
def udp(owamp_server: OwampServer) -> Iterator[socket.socket]:
    """A UDP test socket of the client written from the RFCs, on the server's address family."""
    family = socket.AF_INET6 if ":" in owamp_server.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((owamp_server.host, 0))
        sock.settimeout(5.0)
        yield sock


@pytest.fixture(scope="session")
def owamp_server_factory() -> Callable[..., contextlib.AbstractContextManager[OwampServer]]:
    """:func:`running_server`, for fixtures wider than function scope."""
    return running_server


@pytest.fixture(scope="session")
def run_owping() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_owping(args, timeout=20.0) -> CompletedProcess[str]``: ``otwamp owping *args``."""
    return _run_owping
