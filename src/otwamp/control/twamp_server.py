"""The TWAMP-Control server as a sans-I/O state machine (RFC 5357 §3).

Anything malformed or out of order raises ``ProtocolError``, after which the
driver closes the connection. In the Individual Session Control mode (RFC
5938) Start-N-Sessions and Stop-N-Sessions take the place of Start-Sessions
and Stop-Sessions, which are then out of order, and the connection never
enters TESTING: sessions are requested, started and stopped at any time.
"""

from otwamp.control.events import (
    NEED_DATA,
    NeedData,
    ServerEvent,
    SessionRequested,
    SetUpReceived,
    StartNRequested,
    StartRequested,
    StopNRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.server_base import BLOCK, ServerConnectionBase, ServerState
from otwamp.errors import ProtocolError
from otwamp.wire.registry import Accept, TwampCommand, TwampMode
from otwamp.wire.twamp_control import (
    COMMAND_BODIES,
    AcceptSession,
    RequestTwSession,
    StartSessions,
    StopSessions,
)
from otwamp.wire.twamp_individual import (
    StartNAck,
    StartNSessions,
    StopNAck,
    StopNSessions,
    message_size,
)

__all__ = ["ServerState", "TwampServerConnection"]


class TwampServerConnection(ServerConnectionBase):
    """One TWAMP-Control connection, server side."""

    SECTION = "RFC 5357 §3"
    PROTOCOL = "TWAMP-Control"

    def __init__(self) -> None:
        super().__init__()
        self.sessions_accepted = 0  # accepted and not yet stopped (RFC 5357 §3.8)
        self.mode = 0  # the Set-Up-Response's Mode word
        self.max_listed = 0  # most SIDs a Start-N/Stop-N-Sessions may name: those accepted

    @property
    def individual(self) -> bool:
        """Whether the client chose Individual Session Control (RFC 5938 §3.1)."""
        return bool(self.mode & TwampMode.INDIVIDUAL_SESSION_CONTROL)

    def next_event(self) -> ServerEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        event = super().next_event()
        assert isinstance(event, ServerEvent)
        return event

    def accept_session(self, accept: AcceptSession) -> bytes:
        """Octets of the Accept-Session answering a SessionRequested event."""
        self._answer("Accept-Session")
        if accept.accept == Accept.OK:
            self.sessions_accepted += 1
            self.max_listed += 1
        return self._tx.seal(accept.encode())

    def start_n_acks(self, acks: list[StartNAck]) -> bytes:
        """Octets of the Start-N-Acks answering a StartNRequested event (RFC 5938 §3.3)."""
        self._answer("Start-N-Ack")
        return b"".join(self._tx.seal(ack.encode()) for ack in acks)

    def stop_n_acks(self, acks: list[StopNAck]) -> bytes:
        """Octets of the Stop-N-Acks answering a StopNRequested event (RFC 5938 §3.5)."""
        self._answer("Stop-N-Ack")
        return b"".join(self._tx.seal(ack.encode()) for ack in acks)

    def refusal_for_unsupported(self) -> bytes:
        """Octets of the Accept-Session (Accept 3) for an UnsupportedCommand event."""
        return self._tx.seal(AcceptSession(Accept.NOT_SUPPORTED).encode())

    def _setup(self) -> NeedData | SetUpReceived:
        event = super()._setup()
        if isinstance(event, SetUpReceived):
            self.mode = event.response.mode  # in force once Server-Start accepts it
        return event

    def _command(self, number: int) -> ServerEvent:
        if self.individual:
            return self._individual_command(number)
        body_size = COMMAND_BODIES.get(number)
        if body_size is None:
            # RFC 5357 §3.5: an unexpected Command Number gets Accept-Session with Accept 3;
            # its length is unknown, so the connection cannot continue afterwards.
            self.state = ServerState.CLOSED
            return UnsupportedCommand(number)
        # RFC 4656 §3.4 / RFC 5357 §3.8: while sessions run only Stop-Sessions is valid.
        if (self.state is ServerState.TESTING) != (number == TwampCommand.STOP_SESSIONS):
            raise self._out_of_order(number)
        body = self._framer.part(body_size)
        return NEED_DATA if body is None else self._dispatch(number, body)

    def _individual_command(self, number: int) -> ServerEvent:
        """RFC 5938 §3.1: Request-TW-Session, Start-N- and Stop-N-Sessions, at any time."""
        if number == TwampCommand.REQUEST_TW_SESSION:
            body = self._framer.part(RequestTwSession.BODY)
            return NEED_DATA if body is None else self._dispatch(number, body)
        if number not in (TwampCommand.START_N_SESSION, TwampCommand.STOP_N_SESSION):
            # RFC 5938 §3.1: Start-Sessions and Stop-Sessions MUST NOT be used in this mode.
            if number in (TwampCommand.START_SESSIONS, TwampCommand.STOP_SESSIONS):
                raise self._out_of_order(number)
            self.state = ServerState.CLOSED
            return UnsupportedCommand(number)
        body = self._framer.grow(self._listed_size)
        if body is None:
            return NEED_DATA
        if number == TwampCommand.START_N_SESSION:
            self._await_answer("Start-N-Ack")
            return StartNRequested(StartNSessions.decode(body).sids)
        self._await_answer("Stop-N-Ack")
        return StopNRequested(StopNSessions.decode(body).sids)

    def _listed_size(self, prefix: bytes) -> int:
        """The size of a Start-N/Stop-N-Sessions from its first block, bounded before reading."""
        if len(prefix) < BLOCK:
            return BLOCK
        size = message_size(prefix)
        count = (size - BLOCK) // BLOCK
        if count > self.max_listed:
            # No SID of this connection can be named twice usefully: more than it was
            # ever given is not a valid message, and is not read (RFC 5938 §3.2, §3.4).
            raise ProtocolError(
                f"Number of Sessions {count}, but only {self.max_listed} sessions were accepted",
                field="Number of Sessions",
                section="RFC 5938 §3.2",
            )
        return size

    def _dispatch(self, number: int, body: bytes) -> ServerEvent:
        if number == TwampCommand.REQUEST_TW_SESSION:
            self._await_answer("Accept-Session")
            reflect = bool(self.mode & TwampMode.REFLECT_OCTETS)  # RFC 6038 §4.2 fields
            return SessionRequested(RequestTwSession.decode(body, reflect))
        if number == TwampCommand.START_SESSIONS:
            StartSessions.decode(body)
            self._await_answer("Start-Ack")
            return StartRequested()
        stop = StopSessions.decode(body)
        if stop.num_sessions != self.sessions_accepted:
            # RFC 5357 §3.8: Number of Sessions must account for exactly the sessions in
            # progress (each accepted Request-TW-Session not yet stopped); otherwise the
            # message is invalid and the connection SHOULD be closed.
            raise ProtocolError(
                f"Number of Sessions {stop.num_sessions}, but {self.sessions_accepted} in progress",
                field="Stop-Sessions",
                section="RFC 5357 §3.8",
            )
        self.sessions_accepted = 0
        self.state = ServerState.AWAIT_COMMAND
        return StopRequested(stop)
