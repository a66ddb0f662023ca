"""What the abuse suite's attackers and probes share (issue 10).

Built on ``tests/e2e/rfc_client.py``, an open-mode client written from the
RFCs; what it lacks for an attacker is here: clients bound to other loopback
addresses, pipelined requests, hand-made Stop-Sessions, dripping and
flooding writes, the control round trip of a legitimate client, the
legitimate ``otwamp`` clients timed, and the server's figures from /proc.
Traffic goes only to 127.0.0.0/8.
"""

import os
import re
import select
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self, TypeVar

from tests.e2e.conftest import OwampServer
from tests.e2e.processes import run_cli
from tests.e2e.rfc_client import (
    DESCRIPTION,
    EXPONENTIAL,
    HMAC,
    SLOT,
    STOP_HEADER,
    WHOLE,
    Accepted,
    ControlClient,
    OwampClient,
    TwampClient,
    ntp,
    ntp_interval,
)

HOST = "127.0.0.1"
TWAMP_REQUEST = 5  # Request-TW-Session (RFC 5357 §3.5)
OWAMP_REQUEST = 1  # Request-Session (RFC 4656 §3.5)
STOP_SESSIONS = 3  # Stop-Sessions (RFC 4656 §3.8)
MODES_OFFSET = 12  # Modes in the Server-Greeting: after 12 octets Unused (RFC 4656 §3.1)
GREETING = 64  # Server-Greeting octets (RFC 4656 §3.1)
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")  # a record's asctime, to the second
COUNTS = re.compile(r"(\d+) sent, (\d+) received, (\d+) lost")

C = TypeVar("C", bound=ControlClient)
ServerFactory = Callable[..., AbstractContextManager[OwampServer]]  # the abuse_server fixture


def sources(count: int, first: int = 2) -> list[str]:
    """``count`` loopback addresses 127.0.0.first..., other than the legitimate client's."""
    return [f"127.0.0.{first + i}" for i in range(count)]


def connected(
    kind: type[C],
    host: str,
    port: int,
    source: str = HOST,
    timeout: float = 5.0,
    rcvbuf: int | None = None,
) -> C:
    """An ``rfc_client`` client of ``kind`` connected from ``source``, with SO_RCVBUF ``rcvbuf``.

    The receive buffer is set before connecting, so that the window offered stays that small.
    """
    assert host.startswith("127.") and source.startswith("127."), (host, source)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect((host, port))
    client = kind.__new__(kind)  # ControlClient.__init__ cannot choose the source address
    client.host, client.writes, client.sock = host, WHOLE, sock
    return client


def greeting_modes(client: ControlClient) -> int:
    """The Modes word of the Server-Greeting; 0 when the server refuses (RFC 4656 §3.1)."""
    return int.from_bytes(client.receive(GREETING)[MODES_OFFSET : MODES_OFFSET + 4], "big")


def request_tw_sessions(client: TwampClient, count: int) -> list[int]:
    """``count`` Request-TW-Sessions written at once; the Accept of each answer (RFC 5357 §3.5)."""
    start = ntp(time.time() + 60)  # never started anyway
    own_port = client.sock.getsockname()[1]
    message = client.request_fixed_part(TWAMP_REQUEST, own_port, 0, start, 1.0) + HMAC
    client.sock.sendall(message * count)
    return [client.accept_session().accept for _ in range(count)]


def request_receive_sessions(
    client: OwampClient, count: int, packets: int, interval: float
) -> list[Accepted]:
    """``count`` Request-Sessions with Conf-Receiver written at once, and their answers.

    One exponential slot of mean ``interval`` (RFC 4656 §3.5), starting in a minute.
    """
    own_port = client.sock.getsockname()[1]
    fixed = client.request_fixed_part(
        OWAMP_REQUEST,
        own_port,
        0,
        ntp(time.time() + 60),
        1.0,
        conf_receiver=1,
        slots=1,
        packets=packets,
    )
    message = fixed + HMAC + SLOT.pack(EXPONENTIAL, ntp_interval(interval)) + HMAC
    client.sock.sendall(message * count)
    return [client.accept_session() for _ in range(count)]


def stop_sessions_prefix(count: int, descriptions: Sequence[tuple[bytes, int, int]] = ()) -> bytes:
    """A Stop-Sessions header and (SID, Next Seqno, Number of Skip Ranges)s (RFC 4656 §3.8)."""
    head = STOP_HEADER.pack(STOP_SESSIONS, 0, count)
    return head + b"".join(DESCRIPTION.pack(*d) for d in descriptions)


def flood(sock: socket.socket, limit: int, chunk: int = 1 << 16) -> int:
    """Write zeros until the server stops taking them or ``limit`` octets; how many it took."""
    sent = 0
    data = bytes(chunk)
    try:
        while sent < limit:
            sent += sock.send(data)
    except OSError:  # reset, broken pipe, or the socket's timeout: the server stopped reading
        pass
    return sent


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server ends the connection (EOF or reset) within ``seconds``, reading all."""
    deadline = time.monotonic() + seconds
    while select.select([sock], [], [], max(deadline - time.monotonic(), 0.0))[0]:
        try:
            if not sock.recv(1 << 16):
                return True
        except OSError:
            return True
    return False


def drip(sock: socket.socket, message: bytes, every: float, limit: float) -> float | None:
    """Write ``message`` one octet every ``every`` s; seconds until the server ended the
    connection, or None if it had not within ``limit`` s."""
    began = time.monotonic()
    for octet in message:
        if time.monotonic() - began > limit:
            return None
        try:
            sock.sendall(bytes([octet]))
        except OSError:
            return time.monotonic() - began
        if closed_within(sock, every):
            return time.monotonic() - began
    return None


@dataclass
class Legit:
    """A legitimate ``otwamp`` client's run: exit status, wall time, its counts lines."""

    returncode: int
    seconds: float
    counts: list[tuple[int, int, int]]  # (sent, received, lost) for each direction reported
    output: str

    def served(self, count: int) -> bool:
        """Exit 0 and every direction sent ``count`` packets and lost none."""
        return (
            self.returncode == 0
            and bool(self.counts)
            and all(sent == count and lost == 0 for sent, _, lost in self.counts)
        )


def legit(*args: str, timeout: float = 30.0) -> Legit:
    """Run ``otwamp *args`` (ping or owping) and time it."""
    began = time.monotonic()
    done = run_cli(*args, timeout=timeout)
    seconds = time.monotonic() - began
    counts = [(int(s), int(r), int(lost)) for s, r, lost in COUNTS.findall(done.stdout)]
    return Legit(done.returncode, seconds, counts, done.stdout + done.stderr)


def excerpt(log: str, lines: int = 40) -> str:
    """The start of a log, for an assertion message that must stay readable."""
    kept = log.splitlines()[:lines]
    return "\n".join(kept) + f"\n... ({len(log.splitlines())} lines in all)"


def busiest_second(log: str) -> int:
    """The most log lines written in one second; a traceback's lines count with its record."""
    per_second: Counter[str] = Counter()
    second = ""
    for line in log.splitlines():
        if STAMP.match(line):
            second = line[:19]
        per_second[second] += 1
    return max(per_second.values(), default=0)


def rss_mib(pid: int) -> float:
    """The resident set size of process ``pid`` (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


class Background:
    """Runs ``_run`` in a daemon thread for the ``with`` block; ``_stop`` ends it."""

    _stop: threading.Event
    _thread: threading.Thread

    def __enter__(self) -> Self:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        raise NotImplementedError


@dataclass
class Sampler(Background):
    """Samples a process's RSS and fds in a thread; kills it past ``kill_above_mib``.

    The kill keeps a regression from taking the test machine's memory.
    """

    pid: int
    kill_above_mib: float = 2048.0
    every: float = 0.02
    rss: list[float] = field(default_factory=list, init=False)
    fds: list[int] = field(default_factory=list, init=False)
    killed: bool = field(default=False, init=False)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                rss, fds = rss_mib(self.pid), open_fds(self.pid)
            except (OSError, RuntimeError):  # the process ended
                return
            self.rss.append(rss)
            self.fds.append(fds)
            if rss > self.kill_above_mib:
                self.killed = True
                os.kill(self.pid, 9)
                return


@dataclass
class RoundTrips(Background):
    """A legitimate raw TWAMP client timing Request-TW-Session to Accept-Session, in a thread.

    It opens a new connection every ``per_connection`` requests, so that its
    own sessions stay within the per-connection quota.
    """

    port: int
    every: float = 0.02
    per_connection: int = 32
    samples: list[float] = field(default_factory=list, init=False)
    accepts: list[int] = field(default_factory=list, init=False)
    error: str | None = field(default=None, init=False)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._one_connection()
        except OSError as exc:  # ConnectionError included: reported, the test asserts
            self.error = f"{type(exc).__name__}: {exc}"

    def _one_connection(self) -> None:
        with connected(TwampClient, HOST, self.port) as client:
            client.set_up()
            start = ntp(time.time() + 60)
            for _ in range(self.per_connection):
                if self._stop.wait(self.every):
                    return
                began = time.perf_counter()
                accepted = client.request_tw_session(client.sock.getsockname()[1], start, 1.0)
                self.samples.append(time.perf_counter() - began)
                self.accepts.append(accepted.accept)

    def p99(self) -> float:
        """The 99th percentile of the round trips, seconds."""
        ordered = sorted(self.samples)
        return ordered[round(0.99 * (len(ordered) - 1))]

    def summary(self) -> str:
        """Median, p99 and maximum in milliseconds, and the number of samples."""
        if not self.samples:
            return "no samples"
        return (
            f"{len(self.samples)} samples, median {1000 * statistics.median(self.samples):.1f} "
            f"ms, p99 {1000 * self.p99():.1f} ms, max {1000 * max(self.samples):.1f} ms"
        )
