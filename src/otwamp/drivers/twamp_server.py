"""The asyncio TWAMP server: control connections and their reflectors (RFC 5357 §3-4).

A thin driver: the TWAMP-Control state machine decides what is valid, this
module moves octets, applies the server's policy to session requests and
owns the test sockets. A failure on one connection closes only that one.
"""

import asyncio
import errno
import ipaddress
import logging
import os
import socket
import struct
from dataclasses import dataclass, field

from otwamp.control.events import (
    NEED_DATA,
    ServerEvent,
    SessionRequested,
    SetUpReceived,
    StartRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.security import security_mode, server_setup
from otwamp.control.twamp_server import TwampServerConnection
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.reflector import ReflectorEndpoint
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import AuthenticationError, OtwampError, ProtocolError
from otwamp.keys.source import KeySource
from otwamp.security.sessionkeys import SessionKeys
from otwamp.session.protection import session_protection
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.timestamp import ntp_to_duration
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, type_p_dscp
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, sender_size

log = logging.getLogger("otwamp.server")

TWAMP_PORT = 862  # RFC 5357 §3.1 (IANA twamp-control)
SERVWAIT = 900.0  # RFC 5357 §3.1: default control inactivity timeout
REFWAIT = 900.0  # RFC 5357 §4.2: default test inactivity timeout
MAX_STOP_TIMEOUT = 60.0  # cap on how long a stopped session keeps reflecting
PBKDF2_COUNT = 2048  # RFC 4656 §3.1: a power of 2, at least 1024
KEY_SOURCE_BITS = int(TwampMode.IKEV2_DERIVED)  # Mode bits that select the key source (D3)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What an operator configures for ``otwamp server``."""

    listen: tuple[tuple[str, int], ...] = (("0.0.0.0", TWAMP_PORT), ("::", TWAMP_PORT))
    test_ports: tuple[int, int] | None = None  # None: any free port
    max_control_sessions: int = 64
    control_timeout: float = SERVWAIT
    refwait: float = REFWAIT
    modes: TwampMode = TwampMode.UNAUTHENTICATED
    count: int = PBKDF2_COUNT
    key_sources: tuple[KeySource, ...] = ()  # by the Mode bits they add (D3)

    @property
    def offered(self) -> int:
        """The Modes word of the Server-Greeting: security modes plus key-source bits."""
        secured = self.modes & ~TwampMode.UNAUTHENTICATED
        extra = 0
        for source in self.key_sources if secured else ():
            extra |= source.mode_bits
        return int(self.modes) | extra


@dataclass(slots=True)
class _Connection:
    """The state one control connection owns."""

    peer: tuple[str, int]
    local: tuple[str, int]
    machine: TwampServerConnection = field(default_factory=TwampServerConnection)
    mode: int = 0
    keys: SessionKeys | None = field(default=None, repr=False)
    endpoints: list[ReflectorEndpoint] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    stopped: bool = False


class TwampServer:
    """Serves TWAMP-Control on the configured addresses."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.start_time = now_ntp()  # RFC 4656 §3.1: Start-Time of this instantiation
        self.clock: ClockState = clock_state()
        self._servers: list[asyncio.Server] = []
        self._active = 0
        self._ports_in_use: set[int] = set()

    async def start(self) -> list[tuple[str, int]]:
        """Listen on every configured address; return the bound (host, port) pairs."""
        if not self.clock.synchronized:
            log.warning("the clock is not synchronized: one-way delays will be flagged unsync")
        bound: list[tuple[str, int]] = []
        for host, port in self.settings.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = await asyncio.start_server(
                self._serve, host, port, family=family, reuse_address=True
            )
            self._servers.append(server)
            for sock in server.sockets:
                name = sock.getsockname()
                bound.append((name[0], name[1]))
                log.info("listening for TWAMP-Control on %s", _fmt(name[0], name[1]))
        return bound

    async def close(self) -> None:
        """Stop listening and wait for the listeners to close."""
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        conn = _Connection((peer[0], peer[1]), (local[0], local[1]))
        full = self._active >= self.settings.max_control_sessions
        self._active += 1
        try:
            await self._converse(conn, reader, writer, refuse=full)
        except ProtocolError as exc:
            log.warning("control connection from %s closed: %s", _fmt(*conn.peer), exc)
        except TimeoutError:
            log.warning(
                "control connection from %s closed: idle for %.0f s",
                _fmt(*conn.peer),
                self.settings.control_timeout,
            )
        except (ConnectionError, asyncio.IncompleteReadError):
            log.info("control connection from %s closed by the peer", _fmt(*conn.peer))
        except OtwampError as exc:
            log.warning("control connection from %s closed: %s", _fmt(*conn.peer), exc)
        except Exception:  # a bug of ours: log it, keep serving everyone else
            log.exception("control connection from %s closed: internal error", _fmt(*conn.peer))
        finally:
            self._active -= 1
            self._release(conn)
            writer.close()

    async def _converse(
        self,
        conn: _Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        refuse: bool,
    ) -> None:
        greeting = ServerGreeting(
            0 if refuse else int(self.settings.modes),
            os.urandom(16),
            os.urandom(16),
            self.settings.count,
        )
        writer.write(conn.machine.greet(greeting))
        await writer.drain()
        if refuse:
            log.warning(
                "refused %s: %d control connections already",
                _fmt(*conn.peer),
                self.settings.max_control_sessions,
            )
            return
        while True:
            event = conn.machine.next_event()
            if event is NEED_DATA:
                data = await asyncio.wait_for(reader.read(65536), self.settings.control_timeout)
                if not data:
                    return
                conn.machine.receive_data(data)
                continue
            reply = self._handle(conn, event)
            if reply:
                writer.write(reply)
                await writer.drain()
            if conn.machine.state.value == "closed":
                return

    def _handle(self, conn: _Connection, event: ServerEvent) -> bytes:
        machine = conn.machine
        if isinstance(event, SetUpReceived):
            return self._set_up(conn, event.response)
        if isinstance(event, SessionRequested):
            return machine.accept_session(self._open_session(conn, event.request))
        if isinstance(event, StartRequested):
            for endpoint in conn.endpoints:
                endpoint.start()
            return machine.start_ack(Accept.OK)
        if isinstance(event, StopRequested):
            self._stop(conn)
            return b""
        if isinstance(event, UnsupportedCommand):
            log.warning(
                "control connection from %s: unknown Command Number %d, sent Accept 3",
                _fmt(*conn.peer),
                event.command,
            )
            return machine.refusal_for_unsupported()
        raise AssertionError(f"unhandled event {event!r}")

    def _set_up(self, conn: _Connection, response: SetUpResponse) -> bytes:
        """Answer Set-Up-Response with Server-Start (RFC 4656 §3.1), authenticating if secured."""
        machine, peer = conn.machine, _fmt(*conn.peer)
        security = security_mode(response.mode)
        if security is None or response.mode & ~self.settings.offered:
            log.warning(
                "control connection from %s: Mode %#x was not offered (offered %#x)",
                peer,
                response.mode,
                self.settings.offered,
            )
            return machine.start(ServerStart(Accept.NOT_SUPPORTED))
        if security is TwampMode.UNAUTHENTICATED:
            conn.mode = response.mode
            return machine.start(ServerStart(Accept.OK, bytes(16), self.start_time))
        source = self._key_source(response.mode)
        credentials = (
            None if source is None else source.server_secret(response.key_id, conn.peer[0])
        )
        if source is None or credentials is None:
            log.warning(
                "authentication failed from %s: unknown KeyID %s",
                peer,
                _key_id_text(response.key_id),
            )
            return machine.start(ServerStart(Accept.FAILURE))
        assert machine.greeting is not None
        server_iv = os.urandom(16)
        try:
            channels, rx = server_setup(machine.greeting, response, credentials, server_iv)
        except AuthenticationError:
            log.warning(
                "authentication failed from %s: KeyID %r, wrong shared secret (Token Challenge "
                "mismatch)",
                peer,
                credentials.label,
            )
            return machine.start(ServerStart(Accept.FAILURE))
        log.info(
            "authenticated KeyID %r (%s) from %s, mode %s",
            credentials.label,
            credentials.source,
            peer,
            MODE_NAMES[security],
        )
        conn.mode, conn.keys = response.mode, channels.keys
        return machine.start(ServerStart(Accept.OK, server_iv, self.start_time), channels.tx, rx)

    def _key_source(self, mode: int) -> KeySource | None:
        """The key source whose Mode bits the client chose (none set: the pass-phrase file)."""
        for source in self.settings.key_sources:
            if mode & KEY_SOURCE_BITS == source.mode_bits:
                return source
        return None

    def _open_session(self, conn: _Connection, request: RequestTwSession) -> AcceptSession:
        refusal = self._refusal(conn, request)
        if refusal is not None:
            log.warning(
                "session request from %s refused (Accept %d): %s",
                _fmt(*conn.peer),
                refusal[0],
                refusal[1],
            )
            return AcceptSession(refusal[0])
        sender = (
            conn.peer[0] if request.sender_address.is_unspecified else str(request.sender_address),
            request.sender_port,
        )
        local = (
            conn.local[0]
            if request.receiver_address.is_unspecified
            else str(request.receiver_address)
        )
        dscp = type_p_dscp(request.type_p) or 0
        try:
            sock = self._bind(local, request.receiver_port, dscp)
        except OSError as exc:
            accept = (
                Accept.NOT_SUPPORTED
                if exc.errno == errno.EADDRNOTAVAIL
                else Accept.TEMPORARY_RESOURCE_LIMITATION
            )
            log.warning(
                "session request from %s refused (Accept %d): cannot bind %s: %s",
                _fmt(*conn.peer),
                accept,
                local,
                exc.strerror,
            )
            return AcceptSession(accept)
        sid = self._sid(conn.local[0])
        protection = session_protection(conn.mode, sid, conn.keys)
        endpoint = ReflectorEndpoint(
            sock, sender, sid, self.clock, self.settings.refwait, self._closed, protection
        )
        self._ports_in_use.add(endpoint.port)
        conn.endpoints.append(endpoint)
        conn.timeouts.append(min(ntp_to_duration(request.timeout), MAX_STOP_TIMEOUT))
        log.info(
            "session %s: reflecting for %s on port %d", sid.hex(), _fmt(*sender), endpoint.port
        )
        return AcceptSession(Accept.OK, endpoint.port, sid)

    def _refusal(self, conn: _Connection, request: RequestTwSession) -> tuple[Accept, str] | None:
        """Why a request cannot be honoured, with its Accept value (RFC 4656 §3.3)."""
        if request.conf_sender or request.conf_receiver:
            return Accept.NOT_SUPPORTED, "Conf-Sender/Conf-Receiver must be 0 (RFC 5357 §3.5)"
        if request.num_slots or request.num_packets:
            return (
                Accept.NOT_SUPPORTED,
                "Number of Schedule Slots/Packets must be 0 (RFC 5357 §3.5)",
            )
        if request.ipvn != ipaddress.ip_address(conn.local[0].split("%")[0]).version:
            return (
                Accept.NOT_SUPPORTED,
                f"IPv{request.ipvn} session on an IPv{6 if ':' in conn.local[0] else 4} connection",
            )
        if (
            not request.sender_address.is_unspecified
            and str(request.sender_address) != conn.peer[0]
        ):
            return (
                Accept.NOT_SUPPORTED,
                "Sender Address is not the control client's (no third-party reflection)",
            )
        secured = session_protection(conn.mode, bytes(16), conn.keys) is not None
        if sender_size(secured, request.padding_length) > MAX_UDP_PAYLOAD:
            return (
                Accept.NOT_SUPPORTED,
                f"Padding Length {request.padding_length} exceeds a UDP datagram",
            )
        if type_p_dscp(request.type_p) is None:
            return Accept.NOT_SUPPORTED, f"Type-P Descriptor {request.type_p:#010x} is not a DSCP"
        if conn.machine.state.value == "testing":
            return Accept.NOT_SUPPORTED, "sessions already started"
        return None

    def _bind(self, host: str, requested: int, dscp: int) -> socket.socket:
        """A test socket on the requested port if allowed and free, else another (RFC 5357 §3.5)."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidate_ports(requested):
            try:
                return open_test_socket(host, port, family, dscp)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
        raise OSError(errno.EADDRINUSE, "no free port in the test port range")

    def _candidate_ports(self, requested: int) -> list[int]:
        span = self.settings.test_ports
        if span is None:
            return ([requested] if requested >= 1024 else []) + [0]
        low, high = span
        ports = [p for p in range(low, high + 1) if p not in self._ports_in_use]
        if low <= requested <= high and requested in ports:
            ports.remove(requested)
            ports.insert(0, requested)
        return ports

    def _sid(self, local: str) -> bytes:
        """SID: 4 octets of the receiver's address, a timestamp, 4 random octets (RFC 4656 §3.5)."""
        address = ipaddress.ip_address(local.split("%", maxsplit=1)[0])
        return address.packed[-4:] + struct.pack("!Q", now_ntp()) + os.urandom(4)

    def _stop(self, conn: _Connection) -> None:
        conn.stopped = True
        for endpoint, timeout in zip(conn.endpoints, conn.timeouts, strict=True):
            endpoint.stop_after(timeout)

    def _release(self, conn: _Connection) -> None:
        """A closed control connection ends its sessions, but stopped ones finish their Timeout."""
        if not conn.stopped:
            for endpoint in conn.endpoints:
                endpoint.close()

    def _closed(self, endpoint: ReflectorEndpoint) -> None:
        self._ports_in_use.discard(endpoint.port)
        c = endpoint.engine.counters
        log.info(
            "session %s: closed; reflected %d; dropped %d wrong-source, %d short, %d failed HMAC",
            endpoint.sid.hex(),
            c.reflected,
            c.wrong_source,
            c.truncated,
            c.auth_failures,
        )


def _key_id_text(key_id: bytes) -> str:
    """A KeyID for a log line: the identity if it is text, else hex (no key material)."""
    raw = key_id.rstrip(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return repr(text) if text.isprintable() else raw.hex()


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
