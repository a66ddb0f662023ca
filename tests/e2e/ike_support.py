"""Helpers for the RFC 7717 end-to-end tests (issue 6): certificates, IKE configurations, our
``otwamp`` processes, an ``otwamp ike`` running in a thread of the test, and a raw control
client for checking what goes over the wire.

Import as ``from tests.e2e.ike_support import ...`` (the suite runs with
``--import-mode=importlib``). Nothing here prints or logs key material.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from otwamp.control.security import client_setup
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.sa import IkeSa
from otwamp.ike.service import IkeService
from otwamp.keys.source import Credentials
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart
from tests.e2e.processes import bindable, endpoint, family, otwamp_command, stop_process
from tests.ike.certs import Authority

SERVER_ID, CLIENT_ID = "server.ippm.test", "client.ippm.test"
TIMEOUT = 15.0
TEST_PORT_COUNT = 20
IDENTITY, PASSPHRASE = "alice", b"a legacy pass-phrase"


# --- ports, processes ---------------------------------------------------------------------


def ike_command() -> list[str]:
    """``otwamp ike``."""
    return [*otwamp_command(), "ike"]


_TAKEN: set[int] = set()  # ports handed out by this process (never twice)


def free_port(host: str, kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port below the ephemeral range that ``host`` can bind now (TCP or UDP)."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port not in _TAKEN and bindable(host, port, kind):
            _TAKEN.add(port)
            return port
    raise RuntimeError(f"no free port on {host}")


def free_span(host: str, count: int = TEST_PORT_COUNT) -> tuple[int, int]:
    """``count`` consecutive free UDP ports on ``host``."""
    for _ in range(200):
        low = random.randint(20000, 32000 - count)
        ports = range(low, low + count)
        if _TAKEN.isdisjoint(ports) and all(bindable(host, p, socket.SOCK_DGRAM) for p in ports):
            _TAKEN.update(ports)
            return low, low + count - 1
    raise RuntimeError(f"no free port range on {host}")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``condition`` until true; AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Logged:
    """A process whose stdout and stderr go to a file."""

    def __init__(self, args: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(args),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def log(self) -> str:
        """What the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        """Wait until ``text`` was logged ``count`` times; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            assert self.process.poll() is None, f"{self.process.args!r} exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} logged:\n{self.log()}"
            time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stop the process (SIGKILL if it lingers) and return its exit status."""
        return stop_process(self.process, sig)


@contextlib.contextmanager
def background_cli(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``otwamp *args`` in the background for the block, output piped (use ``communicate``);
    killed and reaped at the end if still running."""
    process = subprocess.Popen(
        [*otwamp_command(), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


# --- certificates and configurations ------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throwaway CA and ECDSA P-256 certificates for the server and the client, as files."""

    directory: Path

    def certificate(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.directory / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"


def make_pki(directory: Path) -> Pki:
    """Write ``ca.pem`` and ``NAME.pem``/``NAME.key`` for the server's and client's IDs."""
    directory.mkdir(parents=True, exist_ok=True)
    authority = Authority()
    pki = Pki(directory)
    pki.ca.write_bytes(authority.certificate.public_bytes(Encoding.PEM))
    for name in (SERVER_ID, CLIENT_ID):
        credentials = authority.issue(name, "p256", name)
        pki.certificate(name).write_bytes(credentials.certificate.public_bytes(Encoding.PEM))
        pki.key(name).write_bytes(
            credentials.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        os.chmod(pki.key(name), 0o600)
    return pki


@dataclass(frozen=True)
class IkePeer:
    """A ``[[peers]]`` table."""

    id: str
    address: str | None = None
    port: int | None = None
    psk: str | None = None
    initiate: bool = False


def write_ike_config(
    path: Path,
    *,
    address: str,
    port: int,
    local_id: str,
    peers: Sequence[IkePeer],
    pki: Pki | None = None,
    broker: Path | None = None,
    extra: str = "",
) -> Path:
    """An ``otwamp ike`` TOML file (docs/IKE.md): certificates from ``pki`` or PSK peers."""
    lines = [
        "[local]",
        f'address = "{address}"',
        f"port = {port}",
        f'id = "fqdn:{local_id}"',
        f'broker = "{broker or path.with_suffix(".sock")}"',
    ]
    if pki is not None:
        lines += [
            f'certificate = "{pki.certificate(local_id)}"',
            f'key = "{pki.key(local_id)}"',
            f'ca = ["{pki.ca}"]',
        ]
    lines.append(extra)
    for peer in peers:
        lines += ["", "[[peers]]", f'id = "fqdn:{peer.id}"']
        if peer.address is not None:
            lines.append(f'address = "{peer.address}"')
        if peer.port is not None:
            lines.append(f"port = {peer.port}")
        if peer.psk is not None:
            lines.append(f'psk = "{peer.psk}"')
        lines.append(f"initiate = {str(peer.initiate).lower()}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ike_pair(
    directory: Path, pki: Pki, server_host: str, client_host: str, responder: str | None = None
) -> tuple[Path, Path, int]:
    """``resp.toml`` and ``init.toml`` in ``directory``: the server's responder on ``responder``
    (default: ``server_host``) and a client on ``client_host`` that knows it, each on a free UDP
    port. Returns both paths and the responder's port."""
    responder = responder or server_host
    resp_port = free_port(responder, socket.SOCK_DGRAM)
    init_port = free_port(client_host, socket.SOCK_DGRAM)
    resp = write_ike_config(
        directory / "resp.toml",
        address=responder,
        port=resp_port,
        local_id=SERVER_ID,
        pki=pki,
        peers=[IkePeer(CLIENT_ID, client_host, init_port)],
    )
    init = write_ike_config(
        directory / "init.toml",
        address=client_host,
        port=init_port,
        local_id=CLIENT_ID,
        pki=pki,
        peers=[IkePeer(SERVER_ID, server_host, resp_port)],
    )
    return resp, init, resp_port


def write_keyfile(path: Path) -> Path:
    """A pass-phrase file (identity<TAB>hex) with the legacy client's identity."""
    path.write_text(f"{IDENTITY}\t{PASSPHRASE.hex()}\n")
    path.chmod(0o600)  # a key file as an operator keeps it
    os.chmod(path, 0o600)
    return path


# --- otwamp server --------------------------------------------------------------------------


@dataclass
class Server:
    """A running ``otwamp server`` with TWAMP and OWAMP on ``host``."""

    host: str
    twamp_port: int
    owamp_port: int
    ike_port: int | None
    process: Logged

    @property
    def twamp(self) -> str:
        return endpoint(self.host, self.twamp_port)

    @property
    def owamp(self) -> str:
        return endpoint(self.host, self.owamp_port)

    def log(self) -> str:
        return self.process.log()

    def target(self, protocol: str) -> str:
        return self.twamp if protocol == "twamp" else self.owamp


@contextlib.contextmanager
def running_server(
    host: str,
    directory: Path,
    *extra: str,
    modes: str = "open,authenticated,encrypted,mixed",
    ike_port: int | None = None,
) -> Iterator[Server]:
    """``otwamp server *extra`` on ``host`` with free ports; stopped when the block ends."""
    twamp_port, owamp_port = free_port(host), free_port(host)
    low, high = free_span(host)
    log_path = directory / f"server-{twamp_port}.log"
    process = Logged(
        [
            *otwamp_command(),
            "server",
            *("--listen", endpoint(host, twamp_port)),
            *("--owamp-listen", endpoint(host, owamp_port)),
            *("--test-ports", f"{low}-{high}"),
            *("--modes", modes),
            *extra,
        ],
        log_path,
    )
    try:
        process.wait_for(f"listening for TWAMP-Control on {endpoint(host, twamp_port)}")
        process.wait_for(f"listening for OWAMP-Control on {endpoint(host, owamp_port)}")
        yield Server(host, twamp_port, owamp_port, ike_port, process)
    finally:
        process.stop()


# --- otwamp ike in a thread of the test -----------------------------------------------------


class ThreadedIke:
    """An ``IkeService`` (our ``otwamp ike``, with its key broker) on a loop in a thread.

    The test drives it: ``initiate``, ``rekey`` and ``delete`` run on the daemon's loop.
    """

    def __init__(self, config: Path) -> None:
        self.config = load_ike_config(config)
        assert self.config.broker is not None
        self.broker: Path = self.config.broker
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.service = IkeService(self.config)
        try:
            self.call(self.service.start())
        except BaseException:
            self._stop_loop()
            raise

    def call(self, coroutine: Any, timeout: float = TIMEOUT) -> Any:
        """Run ``coroutine`` on the daemon's loop and return its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def sas(self) -> tuple[IkeSa, ...]:
        async def listing() -> tuple[IkeSa, ...]:
            return self.service.daemon.database.all()

        result: tuple[IkeSa, ...] = self.call(listing())
        return result

    def initiate(self, host: str) -> IkeSa:
        sa: IkeSa = self.call(self.service.initiate(host))
        return sa

    def rekey(self, sa: IkeSa) -> IkeSa:
        new: IkeSa = self.call(self.service.daemon.rekey(sa, timeout=5.0))
        return new

    def delete(self, sa: IkeSa) -> None:
        self.call(self.service.daemon.delete(sa, timeout=5.0))

    def close(self) -> None:
        """Delete the SAs (telling the peers), close the sockets and stop the loop."""
        try:
            self.call(self.service.stop(0.5))
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@contextlib.contextmanager
def threaded_ike(config: Path) -> Iterator[ThreadedIke]:
    """A :class:`ThreadedIke` for the block."""
    ike = ThreadedIke(config)
    try:
        yield ike
    finally:
        ike.close()


# --- a raw control client -------------------------------------------------------------------


@dataclass
class SetUpResult:
    """What the server answered a Set-Up-Response with."""

    greeting: ServerGreeting
    start: ServerStart
    sent: bytes = field(repr=False)


def raw_set_up(
    server: tuple[str, int],
    credentials: Credentials,
    mode: TwampMode,
    bits: int,
    source: str | None = None,
) -> SetUpResult:
    """One control connection: read the greeting, send a Set-Up-Response keyed by
    ``credentials`` with ``mode | bits`` whatever the greeting offers, return the
    Server-Start (the socket is then closed).

    Written from the codecs rather than with our client machine, which would
    refuse to send a Mode the server did not offer. ``source`` binds the
    client's end to that address first.
    """
    with socket.socket(family(server[0]), socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        if source is not None:
            sock.bind((source, 0))
        sock.connect(server)
        greeting = ServerGreeting.decode(_receive(sock, ServerGreeting.SIZE))
        response, _ = client_setup(greeting, mode, credentials, os.urandom, bits)
        sent = response.encode()
        sock.sendall(sent)
        start = _receive(sock, ServerStart.SIZE)
        clear = ServerStart.CLEAR_SIZE  # the rest is encrypted when Accept is 0
        return SetUpResult(greeting, ServerStart.decode(start[:clear] + bytes(16)), sent)


def _receive(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def report(stdout: str) -> dict[str, Any]:
    """The ``--json`` report of ping or owping."""
    document: dict[str, Any] = json.loads(stdout)
    return document
