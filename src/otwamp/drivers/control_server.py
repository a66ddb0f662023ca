"""What the OWAMP and TWAMP servers share: listening, set-up, test ports, SIDs.

A thin asyncio driver over the sans-I/O control machines. A failure on one
connection closes only that one, with one log line naming the peer.
"""

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from otwamp.control.events import NEED_DATA, SetUpReceived
from otwamp.control.security import security_mode, server_setup
from otwamp.control.server_base import ServerConnectionBase, ServerState
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import AuthenticationError, KeySourceError, OtwampError
from otwamp.keys.source import KeySource
from otwamp.security.sessionkeys import SessionKeys
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse

log = logging.getLogger("otwamp.server")

Endpoint = tuple[str, int]
SERVWAIT = 900.0  # RFC 5357 §3.1: default control inactivity timeout
REFWAIT = 900.0  # RFC 5357 §4.2: default test inactivity timeout
PBKDF2_COUNT = 2048  # RFC 4656 §3.1: a power of 2, at least 1024


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What an operator configures for ``otwamp server``."""

    listen: tuple[Endpoint, ...] = (("0.0.0.0", 862), ("::", 862))  # TWAMP, RFC 5357 §3.1
    owamp_listen: tuple[Endpoint, ...] = (("0.0.0.0", 861), ("::", 861))  # RFC 4656 §3.1
    test_ports: tuple[int, int] | None = None  # None: any free port
    max_control_sessions: int = 64
    control_timeout: float = SERVWAIT
    refwait: float = REFWAIT
    modes: TwampMode = TwampMode.UNAUTHENTICATED
    count: int = PBKDF2_COUNT
    key_sources: tuple[KeySource, ...] = ()
    max_packets: int = 1_000_000  # per OWAMP session
    max_slots: int = 1024  # per OWAMP Request-Session
    ike_config: Path | None = None  # run an embedded ``otwamp ike`` with this configuration
    ike_check_peer: bool = True  # D7: the IKE SA's peer must be the control client


class TestPorts:
    """UDP ports for test sessions, shared by both protocols' servers."""

    def __init__(self, span: tuple[int, int] | None) -> None:
        self.span = span
        self._in_use: set[int] = set()

    def bind(self, host: str, requested: int, dscp: int) -> socket.socket:
        """A test socket on the requested port if allowed and free, else another (RFC 5357 §3.5)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidates(requested):
            try:
                sock = open_test_socket(host, port, family, dscp)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._in_use.add(sock.getsockname()[1])
            return sock
        raise OSError(errno.EADDRINUSE, "no free port in the test port range")

    def release(self, port: int) -> None:
        """Give a port back."""
        self._in_use.discard(port)

    def _candidates(self, requested: int) -> list[int]:
        if self.span is None:
            return ([requested] if requested >= 1024 else []) + [0]
        low, high = self.span
        ports = [p for p in range(low, high + 1) if p not in self._in_use]
        if requested in ports:
            ports.remove(requested)
            ports.insert(0, requested)
        return ports


@dataclass(slots=True)
class Connection:
    """What every control connection owns."""

    peer: Endpoint
    local: Endpoint
    writer: asyncio.StreamWriter
    machine: ServerConnectionBase
    mode: int = 0
    keys: SessionKeys | None = field(default=None, repr=False)


class ControlServer:
    """Serves one protocol's control connections on its addresses."""

    NAME = "OWAMP"
    SECURITY_BITS = int(TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED)
    IKEV2_BIT = 0x10  # D3: OWAMP-Modes bit 4 (RFC 7718 §3.2.4)

    def __init__(
        self, settings: ServerSettings, listen: tuple[Endpoint, ...], ports: TestPorts
    ) -> None:
        self.settings = settings
        self.listen = listen
        self.ports = ports
        self.start_time = now_ntp()  # RFC 4656 §3.1: Start-Time of this instantiation
        self.clock: ClockState = clock_state()
        self._servers: list[asyncio.Server] = []
        self._active = 0

    @property
    def offered(self) -> int:
        """The Modes word of the Server-Greeting: security modes plus key-source bits (D3)."""
        modes = int(self.settings.modes) & self.SECURITY_BITS
        derived = any(source.ikev2_derived for source in self.settings.key_sources)
        secured = modes & ~int(TwampMode.UNAUTHENTICATED)
        return modes | (self.IKEV2_BIT if derived and secured else 0)

    async def start(self) -> list[Endpoint]:
        """Listen on every configured address; return the bound (host, port) pairs."""
        bound: list[Endpoint] = []
        for host, port in self.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = await asyncio.start_server(
                self._serve, host, port, family=family, reuse_address=True
            )
            self._servers.append(server)
            for sock in server.sockets:
                name = sock.getsockname()
                bound.append((name[0], name[1]))
                log.info("listening for %s-Control on %s", self.NAME, fmt(name[0], name[1]))
        return bound

    async def close(self) -> None:
        """Stop listening and wait for the listeners to close."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()

    def connection(
        self, peer: Endpoint, local: Endpoint, writer: asyncio.StreamWriter
    ) -> Connection:
        """The state of a new control connection."""
        raise NotImplementedError

    def handle(self, conn: Connection, event: object) -> bytes:
        """Octets answering a command event."""
        raise NotImplementedError

    def release(self, conn: Connection) -> None:
        """Free what a closed connection held."""
        raise NotImplementedError

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        conn = self.connection((peer[0], peer[1]), (local[0], local[1]), writer)
        full = self._active >= self.settings.max_control_sessions
        self._active += 1
        where = f"{self.NAME}-Control connection from {fmt(*conn.peer)}"
        try:
            await self._converse(conn, reader, refuse=full)
        except TimeoutError:
            log.warning("%s closed: idle for %.0f s", where, self.settings.control_timeout)
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("%s closed by the peer", where)
        except OtwampError as exc:  # ProtocolError, AuthenticationError, ...
            log.warning("%s closed: %s", where, exc)
        except Exception:  # a bug of ours: log it, keep serving everyone else
            log.exception("%s closed: internal error", where)
        finally:
            self._active -= 1
            self.release(conn)
            writer.close()

    async def _converse(self, conn: Connection, reader: asyncio.StreamReader, refuse: bool) -> None:
        modes = 0 if refuse else self.offered
        greeting = ServerGreeting(modes, os.urandom(16), os.urandom(16), self.settings.count)
        conn.writer.write(conn.machine.greet(greeting))
        await conn.writer.drain()
        if refuse:
            log.warning(
                "refused %s: %d control connections already",
                fmt(*conn.peer),
                self.settings.max_control_sessions,
            )
            return
        while conn.machine.state is not ServerState.CLOSED:
            event = conn.machine.next_event()
            if event is NEED_DATA:
                data = await self._read(conn, reader)
                if not data:
                    return
                conn.machine.receive_data(data)
                continue
            if isinstance(event, SetUpReceived):
                reply = self._set_up(conn, event.response)
            else:
                reply = self.handle(conn, event)
            if reply:
                conn.writer.write(reply)
                await conn.writer.drain()

    async def _read(self, conn: Connection, reader: asyncio.StreamReader) -> bytes:
        """Control octets; SERVWAIT counts test packets as activity too (RFC 5357 §3.1)."""
        while True:
            try:
                return await asyncio.wait_for(reader.read(65536), self.settings.control_timeout)
            except TimeoutError:
                if not self.testing(conn):
                    raise

    def testing(self, conn: Connection) -> bool:
        """Whether the connection's test sessions are still active (subclasses say)."""
        return False

    def _set_up(self, conn: Connection, response: SetUpResponse) -> bytes:
        """Answer Set-Up-Response with Server-Start (RFC 4656 §3.1), authenticating if secured."""
        machine, peer = conn.machine, fmt(*conn.peer)
        security = security_mode(response.mode)
        if security is None or response.mode & ~self.offered:
            log.warning(
                "%s: Mode %#x was not offered (offered %#x)", peer, response.mode, self.offered
            )
            return machine.start(ServerStart(Accept.NOT_SUPPORTED))
        if security is TwampMode.UNAUTHENTICATED:
            conn.mode = response.mode
            return machine.start(ServerStart(Accept.OK, bytes(16), self.start_time))
        derived = bool(response.mode & self.IKEV2_BIT)
        # RFC 7717 §5.2: no IKEv2 SA for the KeyID's SPIs is Accept 6; RFC 4656 §3.3: else 1.
        refusal = Accept.NO_IKEV2_SA if derived else Accept.FAILURE
        source = self._key_source(derived)
        try:
            credentials = (
                None if source is None else source.server_secret(response.key_id, conn.peer[0])
            )
        except KeySourceError as exc:
            log.warning("authentication failed from %s: %s", peer, exc)
            return machine.start(ServerStart(refusal))
        if credentials is None:
            if derived:
                what = f"no IKEv2 SA with {_spis(response.key_id)}"
            else:
                what = f"unknown KeyID {key_id_text(response.key_id)}"
            log.warning("authentication failed from %s: %s", peer, what)
            return machine.start(ServerStart(refusal))
        assert machine.greeting is not None
        server_iv = os.urandom(16)
        try:
            channels, rx = server_setup(machine.greeting, response, credentials, server_iv)
        except AuthenticationError:
            log.warning(
                "authentication failed from %s: KeyID %r, wrong shared secret "
                "(Token Challenge mismatch)",
                peer,
                credentials.label,
            )
            return machine.start(ServerStart(Accept.FAILURE))
        log.info(
            "authenticated KeyID %r (%s) from %s, %s mode %s",
            credentials.label,
            credentials.source,
            peer,
            self.NAME,
            MODE_NAMES[security],
        )
        conn.mode, conn.keys = response.mode, channels.keys
        return machine.start(ServerStart(Accept.OK, server_iv, self.start_time), channels.tx, rx)

    def _key_source(self, derived: bool) -> KeySource | None:
        """The key source the Mode's IKEv2-derived bit selects (D3)."""
        for source in self.settings.key_sources:
            if source.ikev2_derived == derived:
                return source
        return None

    def refused(self, conn: Connection, accept: Accept, reason: str) -> Accept:
        """Log why a request is refused and return its Accept value (RFC 4656 §3.3)."""
        log.warning(
            "%s session request from %s refused (Accept %d): %s",
            self.NAME,
            fmt(*conn.peer),
            accept,
            reason,
        )
        return accept

    def bind(self, conn: Connection, host: str, port: int, dscp: int) -> socket.socket | Accept:
        """A test socket, or the Accept value saying why there is none (RFC 4656 §3.3)."""
        try:
            return self.ports.bind(host, port, dscp)
        except OSError as exc:
            accept = (
                Accept.NOT_SUPPORTED
                if exc.errno == errno.EADDRNOTAVAIL
                else Accept.TEMPORARY_RESOURCE_LIMITATION
            )
            return self.refused(conn, accept, f"cannot bind {host}: {exc.strerror}")


def new_sid(local: str) -> bytes:
    """SID: 4 octets of the receiver's address, a timestamp, 4 random octets (RFC 4656 §3.5)."""
    address = ipaddress.ip_address(local.split("%", maxsplit=1)[0])
    return address.packed[-4:] + struct.pack("!Q", now_ntp()) + os.urandom(4)


def ip_version(host: str) -> int:
    """4 or 6."""
    return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).version


def key_id_text(key_id: bytes) -> str:
    """A KeyID for a log line: the identity if it is text, else hex (no key material)."""
    raw = key_id.rstrip(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return repr(text) if text.isprintable() else raw.hex()


def _spis(key_id: bytes) -> str:
    """The SPIs a KeyID names in IKEv2-derived mode (D4), for a log line."""
    return f"SPIi={key_id[:8].hex()} SPIr={key_id[8:16].hex()}"


def fmt(host: str, port: int) -> str:
    """host:port, IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
