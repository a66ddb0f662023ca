"""What the OWAMP and TWAMP control servers share: set-up and command framing.

Connection set-up (Server-Greeting, Set-Up-Response, Server-Start) is RFC
4656 §3.1 for both protocols. After it, every command starts with a block
whose first octet is the Command Number; subclasses frame the rest. The
machines are sans-I/O: feed octets with ``receive_data``, pull events with
``next_event``, and answer with methods that return octets to send.
"""

import enum

from otwamp.control.events import NEED_DATA, NeedData, SetUpReceived
from otwamp.control.framing import Framer
from otwamp.errors import ProtocolError
from otwamp.security.control import (
    ControlReceiver,
    ControlSender,
    OpenControlReceiver,
    OpenControlSender,
)
from otwamp.wire.registry import Accept
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.twamp_control import StartAck

BLOCK = 16


class ServerState(enum.Enum):
    """Where a control server connection stands."""

    GREETING = "greeting"  # nothing sent yet
    AWAIT_SETUP = "await-setup"  # Server-Greeting sent
    SETTING_UP = "setting-up"  # Set-Up-Response received, Server-Start not yet sent
    AWAIT_COMMAND = "await-command"  # between test phases
    ANSWERING = "answering"  # a command awaits its response
    TESTING = "testing"  # sessions started: only Stop-Sessions is valid
    CLOSED = "closed"


_S = ServerState
# Where each state may lead (RFC 4656 §3.1, §3.4, §3.7-3.8); any other move is a bug of ours.
TRANSITIONS: dict[ServerState, frozenset[ServerState]] = {
    _S.GREETING: frozenset({_S.AWAIT_SETUP, _S.CLOSED}),
    _S.AWAIT_SETUP: frozenset({_S.SETTING_UP, _S.CLOSED}),
    _S.SETTING_UP: frozenset({_S.AWAIT_COMMAND, _S.CLOSED}),
    _S.AWAIT_COMMAND: frozenset({_S.ANSWERING, _S.CLOSED}),
    _S.ANSWERING: frozenset({_S.AWAIT_COMMAND, _S.TESTING, _S.CLOSED}),
    _S.TESTING: frozenset({_S.AWAIT_COMMAND, _S.CLOSED}),
    _S.CLOSED: frozenset({_S.CLOSED}),
}


class ServerConnectionBase:
    """One control connection, server side, up to command framing."""

    SECTION = "RFC 4656 §3"
    PROTOCOL = "OWAMP-Control"

    def __init__(self) -> None:
        self._state = ServerState.GREETING
        self.greeting: ServerGreeting | None = None
        self._framer = Framer()
        self._tx: ControlSender = OpenControlSender()
        self._pending: str | None = None  # the answer the driver owes
        self._reading: int | None = None  # Command Number of a command still arriving

    @property
    def state(self) -> ServerState:
        """Where the connection stands."""
        return self._state

    @state.setter
    def state(self, new: ServerState) -> None:
        if new not in TRANSITIONS[self._state]:
            raise RuntimeError(f"no transition from {self._state.value} to {new.value}")
        self._state = new

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
            return wire  # RFC 4656 §3.1: Start-Time is not encrypted unless Accept is 0
        self._tx, self._framer.rx = tx or OpenControlSender(), rx or OpenControlReceiver()
        self.state = ServerState.AWAIT_COMMAND
        clear = ServerStart.CLEAR_SIZE
        return wire[:clear] + self._tx.encrypt(wire[clear:])

    def start_ack(self, accept: int) -> bytes:
        """Octets of the Start-Ack answering a StartRequested event (RFC 4656 §3.7)."""
        self._answer("Start-Ack", ServerState.TESTING if accept == Accept.OK else None)
        return self._tx.seal(StartAck(accept).encode())

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the client."""
        self._framer.feed(data)

    def pending(self) -> int:
        """Octets received and not yet read as a whole message."""
        return self._framer.pending()

    def mid_message(self) -> bool:
        """Whether a message from the client has begun and not ended (or set-up is awaited)."""
        if self.state is ServerState.AWAIT_SETUP:
            return True
        return self._reading is not None or self._framer.mid_part() or self.pending() > 0

    def close(self) -> None:
        """Mark the connection closed; no further events."""
        self.state = ServerState.CLOSED

    def next_event(self) -> object:
        """The next event from the buffered octets, or NEED_DATA."""
        if self.state is ServerState.AWAIT_SETUP:
            return self._setup()
        if self.state in (ServerState.AWAIT_COMMAND, ServerState.TESTING):
            return self._next_command()
        if self.state in (ServerState.ANSWERING, ServerState.SETTING_UP):
            return NEED_DATA  # the driver answers first; what follows stays buffered
        if self._framer.pending():
            raise ProtocolError(
                f"unexpected octets in state {self.state.value}",
                field=self.PROTOCOL,
                section=self.SECTION,
            )
        return NEED_DATA

    def _next_command(self) -> object:
        """The command being read; its number stays known until all its parts arrive."""
        if self._reading is None:
            head = self._framer.prefix(BLOCK)
            if head is None:
                return NEED_DATA
            self._reading = head[0]
        event = self._command(self._reading)
        if event is not NEED_DATA:
            self._reading = None
        return event

    def _command(self, number: int) -> object:
        """Frame and decode the command whose first block is buffered."""
        raise NotImplementedError

    def _setup(self) -> NeedData | SetUpReceived:
        data = self._framer.clear(SetUpResponse.SIZE)
        if data is None:
            return NEED_DATA
        self.state = ServerState.SETTING_UP
        return SetUpReceived(SetUpResponse.decode(data))

    def _out_of_order(self, number: int) -> ProtocolError:
        return ProtocolError(
            f"Command Number {number} is out of order in state {self.state.value}",
            field="Command Number",
            section="RFC 4656 §3.4",
        )

    def _await_answer(self, kind: str) -> None:
        self._pending = kind
        self.state = ServerState.ANSWERING

    def _answer(self, kind: str, then: ServerState | None = None) -> None:
        if self.state is not ServerState.ANSWERING or self._pending != kind:
            raise RuntimeError(f"no request awaits a {kind}")
        self._pending = None
        self.state = then or ServerState.AWAIT_COMMAND

    def _expect(self, state: ServerState, what: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot send {what} in state {self.state.value}")
