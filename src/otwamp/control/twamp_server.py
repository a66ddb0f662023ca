"""The TWAMP-Control server as a sans-I/O state machine (RFC 5357 §3).

Feed received octets with ``receive_data`` and pull events with
``next_event``; answer them with the methods that return octets to send.
Anything malformed or out of order raises ``ProtocolError``, after which the
driver closes the connection.
"""

import enum

from otwamp.control.buffer import ReceiveBuffer
from otwamp.control.events import (
    NEED_DATA,
    ServerEvent,
    SessionRequested,
    SetUpReceived,
    StartRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.errors import ProtocolError
from otwamp.security.control import (
    ControlReceiver,
    ControlSender,
    OpenControlReceiver,
    OpenControlSender,
)
from otwamp.wire.registry import Accept, TwampCommand
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.twamp_control import (
    COMMAND_BODIES,
    HMAC_SIZE,
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
)

SECTION = "RFC 5357 §3"
BLOCK = 16


class ServerState(enum.Enum):
    """Where a TWAMP-Control server connection stands."""

    GREETING = "greeting"  # nothing sent yet
    AWAIT_SETUP = "await-setup"  # Server-Greeting sent
    SETTING_UP = "setting-up"  # Set-Up-Response received, Server-Start not yet sent
    AWAIT_COMMAND = "await-command"  # between sessions: Request-TW-Session or Start-Sessions
    ANSWERING = "answering"  # a command awaits its response
    TESTING = "testing"  # sessions started: only Stop-Sessions is valid
    CLOSED = "closed"


class TwampServerConnection:
    """One TWAMP-Control connection, server side."""

    def __init__(self) -> None:
        self.state = ServerState.GREETING
        self._buffer = ReceiveBuffer()
        self._tx: ControlSender = OpenControlSender()
        self._rx: ControlReceiver = OpenControlReceiver()
        self._head: bytes | None = None  # first decrypted block of a command
        self._pending: type[AcceptSession | StartAck] | None = None
        self.sessions_accepted = 0  # accepted and not yet stopped (RFC 5357 §3.8)
        self.greeting: ServerGreeting | None = None

    def greet(self, greeting: ServerGreeting) -> bytes:
        """Octets of the Server-Greeting; Modes 0 refuses the client (RFC 4656 §3.1)."""
        self._expect(ServerState.GREETING, "Server-Greeting")
        self.greeting = greeting
        self.state = ServerState.AWAIT_SETUP if greeting.modes else ServerState.CLOSED
        return greeting.encode()

    def start(
        self, start: ServerStart, tx: ControlSender | None = None, rx: ControlReceiver | None = None
    ) -> bytes:
        """Octets of Server-Start; with Accept 0 the channels take over (RFC 4656 §3.1)."""
        self._expect(ServerState.SETTING_UP, "Server-Start")
        wire = start.encode()
        if start.accept != Accept.OK:
            self.state = ServerState.CLOSED
            return wire
        self._tx, self._rx = tx or OpenControlSender(), rx or OpenControlReceiver()
        self.state = ServerState.AWAIT_COMMAND
        clear = ServerStart.CLEAR_SIZE
        return wire[:clear] + self._tx.encrypt(wire[clear:])

    def accept_session(self, accept: AcceptSession) -> bytes:
        """Octets of the Accept-Session answering a SessionRequested event."""
        self._answer(AcceptSession)
        if accept.accept == Accept.OK:
            self.sessions_accepted += 1
        return self._tx.seal(accept.encode())

    def start_ack(self, accept: int) -> bytes:
        """Octets of the Start-Ack answering a StartRequested event."""
        self._answer(StartAck)
        if accept == Accept.OK:
            self.state = ServerState.TESTING
        return self._tx.seal(StartAck(accept).encode())

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the client."""
        self._buffer.feed(data)

    def next_event(self) -> ServerEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        if self.state is ServerState.AWAIT_SETUP:
            return self._setup()
        if self.state in (ServerState.AWAIT_COMMAND, ServerState.TESTING):
            return self._command()
        if self.state in (ServerState.ANSWERING, ServerState.SETTING_UP):
            return NEED_DATA  # the driver answers first; what follows stays buffered
        if len(self._buffer):
            raise ProtocolError(
                f"unexpected octets in state {self.state.value}",
                field="TWAMP-Control",
                section=SECTION,
            )
        return NEED_DATA

    def close(self) -> None:
        """Mark the connection closed; no further events."""
        self.state = ServerState.CLOSED

    def _setup(self) -> ServerEvent:
        data = self._buffer.take(SetUpResponse.SIZE)
        if data is None:
            return NEED_DATA
        self.state = ServerState.SETTING_UP
        return SetUpReceived(SetUpResponse.decode(data))

    def _command(self) -> ServerEvent:
        if self._head is None:
            block = self._buffer.take(BLOCK)
            if block is None:
                return NEED_DATA
            self._head = self._rx.decrypt(block)
        number = self._head[0]
        body_size = COMMAND_BODIES.get(number)
        if body_size is None or not self._valid_now(number):
            return self._unsupported(number)
        rest = self._buffer.take(body_size - BLOCK + HMAC_SIZE)
        if rest is None:
            return NEED_DATA
        body = self._head + self._rx.decrypt(rest[: body_size - BLOCK])
        self._head = None
        self._rx.verify(rest[-HMAC_SIZE:])
        return self._dispatch(number, body)

    def _valid_now(self, number: int) -> bool:
        # RFC 4656 §3.4 / RFC 5357 §3.8: while sessions run only Stop-Sessions is valid.
        if self.state is ServerState.TESTING:
            return number == TwampCommand.STOP_SESSIONS
        return number != TwampCommand.STOP_SESSIONS

    def _unsupported(self, number: int) -> ServerEvent:
        if number in COMMAND_BODIES:
            raise ProtocolError(
                f"Command Number {number} is out of order in state {self.state.value}",
                field="Command Number",
                section="RFC 4656 §3.4",
            )
        # RFC 5357 §3.5: an unexpected Command Number gets Accept-Session with Accept 3;
        # its length is unknown, so the connection cannot continue afterwards.
        self.state = ServerState.CLOSED
        return UnsupportedCommand(number)

    def refusal_for_unsupported(self) -> bytes:
        """Octets of the Accept-Session (Accept 3) for an UnsupportedCommand event."""
        return self._tx.seal(AcceptSession(Accept.NOT_SUPPORTED).encode())

    def _dispatch(self, number: int, body: bytes) -> ServerEvent:
        if number == TwampCommand.REQUEST_TW_SESSION:
            self._await_answer(AcceptSession)
            return SessionRequested(RequestTwSession.decode(body))
        if number == TwampCommand.START_SESSIONS:
            StartSessions.decode(body)
            self._await_answer(StartAck)
            return StartRequested()
        stop = StopSessions.decode(body)
        if stop.num_sessions != self.sessions_accepted:
            # RFC 5357 §3.8: a count that does not match makes the message invalid.
            raise ProtocolError(
                f"Number of Sessions {stop.num_sessions}, but {self.sessions_accepted} in progress",
                field="Stop-Sessions",
                section="RFC 5357 §3.8",
            )
        self.sessions_accepted = 0
        self.state = ServerState.AWAIT_COMMAND
        return StopRequested(stop)

    def _await_answer(self, kind: type[AcceptSession | StartAck]) -> None:
        self._pending = kind
        self.state = ServerState.ANSWERING

    def _answer(self, kind: type[AcceptSession | StartAck]) -> None:
        if self.state is not ServerState.ANSWERING or self._pending is not kind:
            raise RuntimeError(f"no request awaits a {kind.__name__}")
        self._pending = None
        self.state = ServerState.AWAIT_COMMAND

    def _expect(self, state: ServerState, what: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot send {what} in state {self.state.value}")
