"""The asyncio TWAMP server: control connections and their reflectors (RFC 5357 §3-4)."""

import asyncio
import logging
import socket
from dataclasses import dataclass, field

from otwamp.control.events import (
    SessionRequested,
    StartRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.twamp_server import TwampServerConnection
from otwamp.drivers.control_server import (
    Connection,
    ControlServer,
    Endpoint,
    ServerSettings,
    TestPorts,
    fmt,
    ip_version,
    new_sid,
)
from otwamp.drivers.reflector import ReflectorEndpoint
from otwamp.session.protection import protects, session_protection
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.timestamp import ntp_to_duration
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, type_p_dscp
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, sender_size

__all__ = ["TWAMP_PORT", "ServerSettings", "TwampServer"]

log = logging.getLogger("otwamp.server")

TWAMP_PORT = 862  # RFC 5357 §3.1 (IANA twamp-control)
MAX_STOP_TIMEOUT = 60.0  # cap on how long a stopped session keeps reflecting


@dataclass(slots=True)
class _TwampConnection(Connection):
    """A TWAMP-Control connection and its reflectors."""

    endpoints: list[ReflectorEndpoint] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    stopped: bool = False


class TwampServer(ControlServer):
    """Serves TWAMP-Control and reflects the sessions it accepts."""

    NAME = "TWAMP"
    SECURITY_BITS = int(
        TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED | TwampMode.MIXED
    )
    IKEV2_BIT = int(TwampMode.IKEV2_DERIVED)  # D3: TWAMP-Modes bit 7 (RFC 7717 §7)

    def __init__(self, settings: ServerSettings, ports: TestPorts | None = None) -> None:
        super().__init__(settings, settings.listen, ports or TestPorts(settings.test_ports))

    def connection(
        self, peer: Endpoint, local: Endpoint, writer: asyncio.StreamWriter
    ) -> _TwampConnection:
        """A new TWAMP-Control connection."""
        return _TwampConnection(peer, local, writer, TwampServerConnection())

    def handle(self, conn: Connection, event: object) -> bytes:
        """Octets answering a TWAMP-Control command (RFC 5357 §3.5-3.8)."""
        assert isinstance(conn, _TwampConnection)
        machine = conn.machine
        assert isinstance(machine, TwampServerConnection)
        if isinstance(event, SessionRequested):
            return machine.accept_session(self._open_session(conn, event.request))
        if isinstance(event, StartRequested):
            for endpoint in conn.endpoints:
                endpoint.start()
            return machine.start_ack(Accept.OK)
        if isinstance(event, StopRequested):
            conn.stopped = True
            for endpoint, timeout in zip(conn.endpoints, conn.timeouts, strict=True):
                endpoint.stop_after(timeout)
            return b""
        if isinstance(event, UnsupportedCommand):
            log.warning(
                "TWAMP-Control connection from %s: unknown Command Number %d, sent Accept 3",
                fmt(*conn.peer),
                event.command,
            )
            return machine.refusal_for_unsupported()
        raise AssertionError(f"unhandled event {event!r}")

    def testing(self, conn: Connection) -> bool:
        """Whether any reflector of the connection is still open (REFWAIT closes idle ones)."""
        assert isinstance(conn, _TwampConnection)
        return any(endpoint.started and not endpoint.closed for endpoint in conn.endpoints)

    def release(self, conn: Connection) -> None:
        """A closed connection ends its sessions, but stopped ones finish their Timeout."""
        assert isinstance(conn, _TwampConnection)
        if not conn.stopped:
            for endpoint in conn.endpoints:
                endpoint.close()

    def _open_session(self, conn: _TwampConnection, request: RequestTwSession) -> AcceptSession:
        refusal = self._refusal(conn, request)
        if refusal is not None:
            return AcceptSession(self.refused(conn, *refusal))
        sender = (
            conn.peer[0] if request.sender_address.is_unspecified else str(request.sender_address),
            request.sender_port,
        )
        local = (
            conn.local[0]
            if request.receiver_address.is_unspecified
            else str(request.receiver_address)
        )
        sock = self.bind(conn, local, request.receiver_port, type_p_dscp(request.type_p) or 0)
        if not isinstance(sock, socket.socket):
            return AcceptSession(sock)
        sid = new_sid(conn.local[0])
        protection = session_protection(conn.mode, sid, conn.keys)
        endpoint = ReflectorEndpoint(
            sock, sender, sid, self.clock, self.settings.refwait, self._closed, protection
        )
        conn.endpoints.append(endpoint)
        conn.timeouts.append(min(ntp_to_duration(request.timeout), MAX_STOP_TIMEOUT))
        log.info("session %s: reflecting for %s on port %d", sid.hex(), fmt(*sender), endpoint.port)
        return AcceptSession(Accept.OK, endpoint.port, sid)

    def _refusal(self, conn: Connection, request: RequestTwSession) -> tuple[Accept, str] | None:
        """Why a request cannot be honoured, with its Accept value (RFC 4656 §3.3)."""
        if request.conf_sender or request.conf_receiver:
            return Accept.NOT_SUPPORTED, "Conf-Sender/Conf-Receiver must be 0 (RFC 5357 §3.5)"
        if request.num_slots or request.num_packets:
            return (
                Accept.NOT_SUPPORTED,
                "Number of Schedule Slots/Packets must be 0 (RFC 5357 §3.5)",
            )
        if request.ipvn != ip_version(conn.local[0]):
            return (
                Accept.NOT_SUPPORTED,
                f"IPv{request.ipvn} session on an IPv{ip_version(conn.local[0])} connection",
            )
        if (
            not request.sender_address.is_unspecified
            and str(request.sender_address) != conn.peer[0]
        ):
            return (
                Accept.NOT_SUPPORTED,
                "Sender Address is not the control client's (no third-party reflection)",
            )
        secured = protects(conn.mode, conn.keys)
        if sender_size(secured, request.padding_length) > MAX_UDP_PAYLOAD:
            return (
                Accept.NOT_SUPPORTED,
                f"Padding Length {request.padding_length} exceeds a UDP datagram",
            )
        if type_p_dscp(request.type_p) is None:
            return Accept.NOT_SUPPORTED, f"Type-P Descriptor {request.type_p:#010x} is not a DSCP"
        return None

    def _closed(self, endpoint: ReflectorEndpoint) -> None:
        self.ports.release(endpoint.port)
        c = endpoint.engine.counters
        log.info(
            "session %s: closed; reflected %d; dropped %d wrong-source, %d short, %d failed HMAC",
            endpoint.sid.hex(),
            c.reflected,
            c.wrong_source,
            c.truncated,
            c.auth_failures,
        )
