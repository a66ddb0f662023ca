"""The TWAMP-Control server as a sans-I/O state machine (RFC 5357 §3).

Anything malformed or out of order raises ``ProtocolError``, after which the
driver closes the connection.
"""

from otwamp.control.events import (
    NEED_DATA,
    ServerEvent,
    SessionRequested,
    StartRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.server_base import ServerConnectionBase, ServerState
from otwamp.errors import ProtocolError
from otwamp.wire.registry import Accept, TwampCommand
from otwamp.wire.twamp_control import (
    COMMAND_BODIES,
    AcceptSession,
    RequestTwSession,
    StartSessions,
    StopSessions,
)

__all__ = ["ServerState", "TwampServerConnection"]


class TwampServerConnection(ServerConnectionBase):
    """One TWAMP-Control connection, server side."""

    SECTION = "RFC 5357 §3"
    PROTOCOL = "TWAMP-Control"

    def __init__(self) -> None:
        super().__init__()
        self.sessions_accepted = 0  # accepted and not yet stopped (RFC 5357 §3.8)

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
        return self._tx.seal(accept.encode())

    def refusal_for_unsupported(self) -> bytes:
        """Octets of the Accept-Session (Accept 3) for an UnsupportedCommand event."""
        return self._tx.seal(AcceptSession(Accept.NOT_SUPPORTED).encode())

    def _command(self, number: int) -> ServerEvent:
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

    def _dispatch(self, number: int, body: bytes) -> ServerEvent:
        if number == TwampCommand.REQUEST_TW_SESSION:
            self._await_answer("Accept-Session")
            return SessionRequested(RequestTwSession.decode(body))
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
