"""The OWAMP-Control server as a sans-I/O state machine (RFC 4656 §3).

Anything malformed or out of order raises ``ProtocolError``, after which the
driver closes the connection.
"""

import itertools
from collections.abc import Iterable, Iterator

from otwamp.control.events import NEED_DATA, StartRequested, UnsupportedCommand
from otwamp.control.owamp_events import (
    FetchRequested,
    OwampSessionRequested,
    SessionsStopped,
    TooManySlots,
)
from otwamp.control.server_base import ServerConnectionBase, ServerState
from otwamp.errors import ProtocolError
from otwamp.wire.owamp_control import AcceptSession, RequestSession, Slot, StartSessions
from otwamp.wire.owamp_fetch import (
    FetchAck,
    FetchedSession,
    FetchSession,
    PacketRecord,
    encode_record_part,
)
from otwamp.wire.owamp_stop import StopSessions
from otwamp.wire.registry import Accept, OwampCommand

MAX_SLOTS = 1024  # default limit on Schedule Slots per Request-Session
# Packet records per write: 6,400 octets, whole AES blocks (§3.9); made, encoded and
# encrypted in 3-4 ms on a loaded core (1,024 took 12-18 ms in the soak: issue 10).
FETCH_CHUNK = 256


class OwampServerConnection(ServerConnectionBase):
    """One OWAMP-Control connection, server side."""

    def __init__(self, max_slots: int = MAX_SLOTS) -> None:
        super().__init__()
        self.max_slots = max_slots
        self.client_sends = 0  # accepted sessions with Conf-Receiver: the client's to stop (§3.8)
        self.server_sends = 0  # accepted sessions with Conf-Sender: ours to stop
        self._fixed: bytes | None = None  # a Request-Session's first part, while its slots arrive
        # The packets of each started send session of the client, by SID (§3.8); the server
        # machine keeps it (a table, not a callback: no reference cycle with the machine),
        # the framing alone checks only Number of Sessions.
        self.skip_limits: dict[bytes, int] | None = None
        self._request: RequestSession | None = None

    def accept_session(self, accept: AcceptSession) -> bytes:
        """Octets of the Accept-Session answering an OwampSessionRequested event."""
        self._answer("Accept-Session")
        request, self._request = self._request, None
        if accept.accept == Accept.OK and request is not None:
            self.client_sends += request.conf_receiver
            self.server_sends += request.conf_sender
        return self._tx.seal(accept.encode())

    def stop_sessions(self, stop: StopSessions) -> bytes:
        """Octets of the server's Stop-Sessions describing its send sessions (RFC 4656 §3.8)."""
        if len(stop.sessions) != self.server_sends:
            raise RuntimeError(f"Stop-Sessions must describe {self.server_sends} send sessions")
        self.server_sends = 0
        return self._tx.seal(stop.encode())

    def fetch_ack(self, ack: FetchAck, data: FetchedSession | None) -> bytes:
        """Octets of Fetch-Ack and, when it accepts, the session data (RFC 4656 §3.9)."""
        self._answer("Fetch-Ack")
        parts = () if data is None else data.encode_parts()
        return self._tx.seal(ack.encode()) + b"".join(self._tx.seal(part) for part in parts)

    def fetched(
        self, ack: FetchAck, data: FetchedSession, records: Iterable[PacketRecord]
    ) -> Iterator[bytes]:
        """Octets of an accepting Fetch-Ack and its data, the records in FETCH_CHUNK pieces.

        RFC 4656 §3.9: Fetch-Ack, the Request-Session's two parts, the Skip
        Ranges and the packet records, each part followed by its HMAC; the
        records part is encrypted and covered by one HMAC as it goes, so that
        its millions of records are never held at once.
        """
        self._answer("Fetch-Ack")
        fixed, slots, skip_ranges, _ = data.encode_parts()
        return self._stream_fetched(ack, (fixed, slots, skip_ranges), records)

    def _stream_fetched(
        self, ack: FetchAck, parts: tuple[bytes, ...], records: Iterable[PacketRecord]
    ) -> Iterator[bytes]:
        yield b"".join(self._tx.seal(part) for part in (ack.encode(), *parts))
        chunk = tuple(itertools.islice(records, FETCH_CHUNK))
        while chunk:
            yield self._tx.encrypt(encode_record_part(chunk))  # whole blocks until the last
            chunk = tuple(itertools.islice(records, FETCH_CHUNK))
        yield self._tx.seal(b"")  # the records part's HMAC

    def refusal(self, accept: Accept) -> bytes:
        """Octets of an Accept-Session refusing a request the machine could not frame."""
        return self._tx.seal(AcceptSession(accept).encode())

    def _command(self, number: int) -> object:
        testing = self.state is ServerState.TESTING
        if number not in OwampCommand.__members__.values():
            self.state = ServerState.CLOSED  # unknown length: answer Accept 3 and close
            return UnsupportedCommand(number)
        # RFC 4656 §3.4: while sessions run, only Stop-Sessions is valid; it is valid only then.
        if testing != (number == OwampCommand.STOP_SESSIONS):
            raise self._out_of_order(number)
        if number == OwampCommand.REQUEST_SESSION:
            return self._request_session()
        if number == OwampCommand.START_SESSIONS:
            return self._start_sessions()
        if number == OwampCommand.FETCH_SESSION:
            body = self._framer.part(FetchSession.BODY)
            if body is None:
                return NEED_DATA
            self._await_answer("Fetch-Ack")
            return FetchRequested(FetchSession.decode(body))
        return self._stop()

    def _request_session(self) -> object:
        if self._fixed is None:
            fixed = self._framer.part(RequestSession.FIXED)
            if fixed is None:
                return NEED_DATA
            count = RequestSession.num_slots(fixed)
            if count > self.max_slots:
                self.state = ServerState.CLOSED
                return TooManySlots(count)
            self._fixed = fixed
        slots = self._framer.part(Slot.SIZE * RequestSession.num_slots(self._fixed))
        if slots is None:
            return NEED_DATA
        self._request = RequestSession.decode_parts(self._fixed, slots)
        self._fixed = None
        self._await_answer("Accept-Session")
        return OwampSessionRequested(self._request)

    def _start_sessions(self) -> object:
        body = self._framer.part(StartSessions.BODY)
        if body is None:
            return NEED_DATA
        StartSessions.decode(body)
        self._await_answer("Start-Ack")
        return StartRequested()

    def _stop(self) -> object:
        body = self._framer.grow(self._stop_size)
        if body is None:
            return NEED_DATA
        stop = StopSessions.decode(body)
        self.client_sends = 0
        self.state = ServerState.AWAIT_COMMAND
        return SessionsStopped(stop)

    def _stop_size(self, prefix: bytes) -> int:
        """Stop-Sessions' size so far, once its counts are checked (RFC 4656 §3.8).

        Number of Sessions must be the client's send sessions, and each
        description's Number of Skip Ranges at most its session's packets:
        both are checked as soon as they arrive, so that a peer announcing
        2**32-1 of either is refused before anything more is buffered.
        """
        size = StopSessions.body_size(prefix)
        if len(prefix) < StopSessions.HEADER:
            return size
        count = StopSessions.number_of_sessions(prefix[: StopSessions.HEADER])
        if count != self.client_sends:
            raise ProtocolError(
                f"Number of Sessions {count}, but the client has {self.client_sends}",
                field="Stop-Sessions",
                section="RFC 4656 §3.8",
            )
        for sid, skips in StopSessions.descriptions_read(prefix):
            if self.skip_limits is None:
                break
            limit = self.skip_limits.get(sid)
            if limit is None or skips > limit:
                raise ProtocolError(
                    f"{skips} skip ranges for SID {sid.hex()}, which has "
                    + ("no send session" if limit is None else f"{limit} packets"),
                    field="Number of Skip Ranges",
                    section="RFC 4656 §3.8",
                )
        return size
