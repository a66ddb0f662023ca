"""The asyncio OWAMP server: receives "to" sessions, sends "from" sessions (RFC 4656 §3-4).

A session with Conf-Receiver makes this server the Session-Receiver: its
packets are received on the event loop and kept for Fetch-Session. A
session with Conf-Sender makes it the Session-Sender: a worker thread sends
on the schedule and, when done, the server's Stop-Sessions reports it.
Records are bounded by the packet count and freed with the connection.
"""

import asyncio
import contextlib
import logging
import socket
import threading
import time
from dataclasses import dataclass, field, replace

from otwamp.control.events import StartRequested, UnsupportedCommand
from otwamp.control.owamp_events import (
    FetchRequested,
    OwampSessionRequested,
    SessionsStopped,
    TooManySlots,
)
from otwamp.control.owamp_server import OwampServerConnection
from otwamp.control.server_base import ServerState
from otwamp.drivers.clock import now_ntp
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
from otwamp.drivers.owamp_pacer import Receiving, Sending, collect, run_owamp
from otwamp.results.records import OwampSessionRecord, Stamp
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import protects, session_protection
from otwamp.session.slots import request_send_times
from otwamp.wire.owamp_control import AcceptSession, RequestSession
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession, FetchSession
from otwamp.wire.owamp_stop import SessionDescription, SkipRange, StopSessions
from otwamp.wire.registry import Accept
from otwamp.wire.timestamp import ntp_to_duration
from otwamp.wire.twamp_control import type_p_dscp
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, sender_size

log = logging.getLogger("otwamp.server")

OWAMP_PORT = 861  # RFC 4656 §3.1 (IANA owamp-control)
MIN_INTERVAL = 10e-6  # mean send interval below which a schedule is refused (100,000 pps)
MAX_DURATION = 86_400.0  # longest schedule accepted, seconds
MAX_TIMEOUT = 600.0  # longest Timeout accepted, seconds


@dataclass(slots=True)
class _Session:
    """One accepted OWAMP-Test session of a connection."""

    request: RequestSession
    sid: bytes
    sock: socket.socket
    times: list[int]  # scheduled send timestamps
    receiver: OwampReceiver | None = None  # Conf-Receiver: we receive
    sender: OwampSender | None = None  # Conf-Sender: we send
    done: asyncio.Future[None] | None = None
    started: bool = False  # by a Start-Sessions (each round starts only new sessions)
    stopped: bool = False  # described in a Stop-Sessions already


@dataclass(slots=True)
class _OwampConnection(Connection):
    """An OWAMP-Control connection and its sessions."""

    sessions: list[_Session] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_sent: bool = False
    stopper: asyncio.Future[None] | None = None  # sends our Stop-Sessions once senders finish


class OwampServer(ControlServer):
    """Serves OWAMP-Control, receiving and sending the sessions it accepts."""

    NAME = "OWAMP"

    def __init__(self, settings: ServerSettings, ports: TestPorts | None = None) -> None:
        super().__init__(settings, settings.owamp_listen, ports or TestPorts(settings.test_ports))

    def connection(
        self, peer: Endpoint, local: Endpoint, writer: asyncio.StreamWriter
    ) -> _OwampConnection:
        """A new OWAMP-Control connection."""
        return _OwampConnection(peer, local, writer, OwampServerConnection(self.settings.max_slots))

    def handle(self, conn: Connection, event: object) -> bytes:
        """Octets answering an OWAMP-Control command (RFC 4656 §3.5-3.9)."""
        assert isinstance(conn, _OwampConnection)
        machine = conn.machine
        assert isinstance(machine, OwampServerConnection)
        if isinstance(event, OwampSessionRequested):
            return machine.accept_session(self._open_session(conn, event.request))
        if isinstance(event, StartRequested):
            self._start(conn)
            return machine.start_ack(Accept.OK)
        if isinstance(event, SessionsStopped):
            return self._client_stopped(conn, event.stop)
        if isinstance(event, FetchRequested):
            ack, data = self._fetch(conn, event.fetch)
            return machine.fetch_ack(ack, data)
        if isinstance(event, TooManySlots):
            self.refused(
                conn,
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"{event.count} schedule slots, the limit is {self.settings.max_slots}",
            )
            return machine.refusal(Accept.PERMANENT_RESOURCE_LIMITATION)
        if isinstance(event, UnsupportedCommand):
            log.warning(
                "OWAMP-Control connection from %s: unknown command %d, sent Accept 3",
                fmt(*conn.peer),
                event.command,
            )
            return machine.refusal(Accept.NOT_SUPPORTED)
        raise AssertionError(f"unhandled event {event!r}")

    def testing(self, conn: Connection) -> bool:
        """Whether started sessions may still be sending: until Timeout after their last packet."""
        assert isinstance(conn, _OwampConnection)
        if conn.machine.state is not ServerState.TESTING:
            return False
        ends = [session.times[-1] + session.request.timeout for session in conn.sessions]
        return now_ntp() < max(ends, default=0)

    def release(self, conn: Connection) -> None:
        """Stop a closed connection's senders and free its sockets and records."""
        assert isinstance(conn, _OwampConnection)
        conn.stop.set()
        for session in conn.sessions:
            self._close_session(session)
        conn.sessions.clear()

    def _open_session(self, conn: _OwampConnection, request: RequestSession) -> AcceptSession:
        refusal = self._refusal(conn, request)
        if refusal is not None:
            return AcceptSession(self.refused(conn, *refusal))
        local = conn.local[0]
        port = request.receiver_port if request.conf_receiver else 0
        sock = self.bind(conn, local, port, type_p_dscp(request.type_p) or 0)
        if not isinstance(sock, socket.socket):
            return AcceptSession(sock)
        sid = new_sid(local) if request.conf_receiver else request.sid  # chosen by the receiver
        times = request_send_times(request, sid)
        session = _Session(request, sid, sock, times)
        protection = session_protection(conn.mode, sid, conn.keys)
        if request.conf_receiver:
            record = OwampSessionRecord(sid, "to", "", "", request.num_packets)
            session.receiver = OwampReceiver(record, times, request.timeout, protection)
        else:
            session.sender = OwampSender(bytes(request.padding_length), protection)
        conn.sessions.append(session)
        role = "receiving from" if request.conf_receiver else "sending to"
        log.info(
            "OWAMP session %s: %s %s, %d packets, port %d",
            sid.hex(),
            role,
            fmt(*self._peer_test_address(conn, request)),
            request.num_packets,
            sock.getsockname()[1],
        )
        return AcceptSession(Accept.OK, sock.getsockname()[1], sid)

    def _refusal(self, conn: Connection, request: RequestSession) -> tuple[Accept, str] | None:
        """Why a request cannot be honoured, with its Accept value (RFC 4656 §3.3, §3.5)."""
        if request.conf_sender == request.conf_receiver:
            return Accept.NOT_SUPPORTED, "exactly one of Conf-Sender and Conf-Receiver must be set"
        if request.ipvn != ip_version(conn.local[0]):
            return (
                Accept.NOT_SUPPORTED,
                f"IPv{request.ipvn} session on an IPv{ip_version(conn.local[0])} connection",
            )
        peer_address = request.sender_address if request.conf_receiver else request.receiver_address
        if not peer_address.is_unspecified and str(peer_address) != conn.peer[0]:
            return Accept.NOT_SUPPORTED, "the test peer is not the control client (no third party)"
        own_address = request.receiver_address if request.conf_receiver else request.sender_address
        if not own_address.is_unspecified and str(own_address) != conn.local[0]:
            return Accept.NOT_SUPPORTED, f"{own_address} is not this server's address here"
        if request.conf_sender and (request.receiver_port == 0 or request.sid == bytes(16)):
            return Accept.NOT_SUPPORTED, "a session we send needs the client's port and SID"
        if not 1 <= request.num_packets <= self.settings.max_packets:
            return (
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"{request.num_packets} packets, the limit is {self.settings.max_packets}",
            )
        mean = sum(slot.seconds for slot in request.slots) / len(request.slots)
        if mean < MIN_INTERVAL or mean * request.num_packets > MAX_DURATION:
            return (
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"impossible schedule: mean interval {mean:g} s for {request.num_packets} packets",
            )
        if ntp_to_duration(request.timeout) > MAX_TIMEOUT:
            return Accept.PERMANENT_RESOURCE_LIMITATION, f"Timeout above {MAX_TIMEOUT:g} s"
        secured = protects(conn.mode, conn.keys)
        if sender_size(secured, request.padding_length) > MAX_UDP_PAYLOAD:
            return (
                Accept.NOT_SUPPORTED,
                f"Padding Length {request.padding_length} exceeds a UDP datagram",
            )
        if request.conf_sender and type_p_dscp(request.type_p) is None:
            return Accept.NOT_SUPPORTED, f"Type-P Descriptor {request.type_p:#010x} is not a DSCP"
        return None

    def _start(self, conn: _OwampConnection) -> None:
        """Start-Sessions (RFC 4656 §3.7): new receivers listen, new senders go to threads."""
        loop = asyncio.get_running_loop()
        conn.stop, conn.stop_sent = threading.Event(), False  # a new round of sessions
        fresh = [session for session in conn.sessions if not session.started]
        for session in fresh:
            session.started = True
            if session.receiver is not None:
                receiving = Receiving(
                    session.sock, self._peer_test_address(conn, session.request), session.receiver
                )
                session.sock.setblocking(False)
                loop.add_reader(session.sock, collect, receiving, self.clock)
            elif session.sender is not None:
                sending = Sending(
                    session.sock,
                    self._peer_test_address(conn, session.request),
                    session.sender,
                    session.times,
                    session.request.timeout,
                )
                # RFC 4656 §3.8: Stop-Sessions only after Timeout past the last packet.
                end = session.times[-1] + session.request.timeout
                session.done = asyncio.ensure_future(
                    asyncio.to_thread(run_owamp, sending, None, end, self.clock, conn.stop)
                )
        senders = [s.done for s in fresh if s.done is not None]
        if senders:
            conn.stopper = asyncio.ensure_future(self._stop_when_sent(conn, senders, conn.stop))

    async def _stop_when_sent(
        self, conn: _OwampConnection, senders: list[asyncio.Future[None]], round_: threading.Event
    ) -> None:
        """Once this round's send sessions are done, send our Stop-Sessions (RFC 4656 §3.8)."""
        await asyncio.gather(*senders, return_exceptions=True)
        if conn.stop is round_ and not round_.is_set() and not conn.stop_sent:
            conn.writer.write(self._our_stop(conn))

    def _our_stop(self, conn: _OwampConnection) -> bytes:
        conn.stop_sent = True
        descriptions = []
        for session in conn.sessions:
            if session.sender is not None and session.started and not session.stopped:
                session.stopped = True
                next_seqno, skips = session.sender.stop_description()
                descriptions.append(SessionDescription(session.sid, next_seqno, skips))
        machine = conn.machine
        assert isinstance(machine, OwampServerConnection)
        return machine.stop_sessions(StopSessions(Accept.OK, tuple(descriptions)))

    def _client_stopped(self, conn: _OwampConnection, stop: StopSessions) -> bytes:
        """The client's Stop-Sessions: finish its sessions, answer with ours (RFC 4656 §3.8)."""
        stopped = Stamp(time.time_ns(), self.clock.synchronized, self.clock.error)
        described = {d.sid: d for d in stop.sessions}
        for session in conn.sessions:
            if session.receiver is not None and session.started and not session.receiver.finished:
                asyncio.get_running_loop().remove_reader(session.sock)
                description = described.get(session.sid)
                if description is None:
                    session.receiver.abandon(stopped)
                else:
                    session.receiver.finish(
                        description.next_seqno, description.skip_ranges, stopped
                    )
        conn.stop.set()  # our senders stop too
        return b"" if conn.stop_sent else self._our_stop(conn)

    def _fetch(
        self, conn: _OwampConnection, fetch: FetchSession
    ) -> tuple[FetchAck, FetchedSession | None]:
        """Fetch-Ack and data for a finished session we received (RFC 4656 §3.9)."""
        session = next((s for s in conn.sessions if s.sid == fetch.sid and s.receiver), None)
        if session is None or session.receiver is None:
            self.refused(conn, Accept.FAILURE, f"Fetch-Session for unknown SID {fetch.sid.hex()}")
            return FetchAck(Accept.FAILURE, False, 0, 0, 0), None
        if not session.receiver.finished:
            self.refused(
                conn,
                Accept.TEMPORARY_RESOURCE_LIMITATION,
                f"Fetch-Session for unfinished {fetch.sid.hex()}",
            )
            return FetchAck(Accept.TEMPORARY_RESOURCE_LIMITATION, False, 0, 0, 0), None
        records = tuple(session.receiver.fetch_records(fetch.begin_seq, fetch.end_seq))
        record = session.receiver.record
        skips = tuple(SkipRange(first, last) for first, last in record.skipped)
        request = _reproduction(session)
        ack = FetchAck(Accept.OK, True, record.next_seqno or 0, len(skips), len(records))
        return ack, FetchedSession(request, skips, records)

    @staticmethod
    def _peer_test_address(conn: Connection, request: RequestSession) -> Endpoint:
        port = request.sender_port if request.conf_receiver else request.receiver_port
        return conn.peer[0], port

    def _close_session(self, session: _Session) -> None:
        if session.receiver is not None:
            with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown
                asyncio.get_running_loop().remove_reader(session.sock)
        self.ports.release(session.sock.getsockname()[1])
        session.sock.close()


def _reproduction(session: _Session) -> RequestSession:
    """The Request-Session as Fetch returns it: the ports used and the SID (RFC 4656 §3.9)."""
    return replace(session.request, receiver_port=session.sock.getsockname()[1], sid=session.sid)
