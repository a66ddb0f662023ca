"""What the OWAMP and TWAMP control clients share: state, transitions and set-up.

The client machine makes the connection set-up decisions of RFC 4656 §3.1:
it refuses a greeting with Modes 0, picks the strongest mode both sides
allow, checks the PBKDF2 Count, asks its driver for a key when the mode
needs one, sets the IKEv2 Mode bit from the key actually used (RFC 7717
§5.2, decision D3) and interprets every Accept value it receives. Each state
names the one message the client waits for; octets arriving in any other
state are a protocol error.
"""

import enum
import functools
from collections.abc import Callable
from typing import ClassVar, Protocol, TypeVar

from otwamp.control.effects import Send
from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    CredentialsNeeded,
    Refused,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.control.framing import Framer
from otwamp.control.security import (
    DEFAULT_MAX_COUNT,
    OPEN_CHANNELS,
    Channels,
    Random,
    Security,
    check_count,
    choose_mode,
    client_setup,
)
from otwamp.errors import ProtocolError
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.security.control import ControlSender, OpenControlSender
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode, mode_names
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.twamp_control import AcceptSession, StartAck, StartSessions


class ClientState(enum.Enum):
    """Where a control client is; the value names what it waits for."""

    AWAIT_GREETING = "Server-Greeting"
    AWAIT_CREDENTIALS = "key for the Set-Up-Response"
    AWAIT_SERVER_START = "Server-Start"
    IDLE = "command"
    AWAIT_ACCEPT = "Accept-Session"
    AWAIT_START_ACK = "Start-Ack"
    AWAIT_START_N_ACK = "Start-N-Ack"  # RFC 5938 §3.3
    AWAIT_STOP_N_ACK = "Stop-N-Ack"  # RFC 5938 §3.5
    TESTING = "Stop-Sessions"
    CLIENT_STOPPED = "Stop-Sessions from the server"
    SERVER_STOPPED = "client's Stop-Sessions"
    AWAIT_FETCH_ACK = "Fetch-Ack"
    CLOSED = "nothing"


# What moves the client: a message it sends (wire class) or an event it reports.
Trigger = type
Transitions = dict[ClientState, dict[Trigger, ClientState]]

SET_UP: Transitions = {
    ClientState.AWAIT_GREETING: {
        Send: ClientState.AWAIT_SERVER_START,  # open mode: Set-Up-Response sent at once
        CredentialsNeeded: ClientState.AWAIT_CREDENTIALS,
        Refused: ClientState.CLOSED,
    },
    ClientState.AWAIT_CREDENTIALS: {SetUpResponse: ClientState.AWAIT_SERVER_START},
    ClientState.AWAIT_SERVER_START: {
        ServerStarted: ClientState.IDLE,
        Refused: ClientState.CLOSED,  # RFC 4656 §3.1: the server closes after a refusal
    },
}


class Answer(Protocol):
    """A server's answer to a command: it carries an Accept value (RFC 4656 §3.3)."""

    @property
    def accept(self) -> int:
        """The Accept field."""
        ...


A = TypeVar("A", bound=Answer)


def refusal(value: int, what: str) -> str:
    """Why a non-zero Accept refused ``what``, in the RFC's words (RFC 4656 §3.3)."""
    return f"the server refused {what}: Accept {value} ({Accept.interpret(value).meaning})"


class ClientConnectionBase:
    """One control connection, client side; subclasses add their commands."""

    SECTION: ClassVar[str] = "RFC 4656 §3"
    PROTOCOL: ClassVar[str] = "OWAMP-Control"
    IKEV2_BIT: ClassVar[int]  # the Mode bit of an IKEv2-derived key (RFC 7717 §7)
    TRANSITIONS: ClassVar[Transitions]

    def __init__(
        self,
        random: Random,
        modes: tuple[TwampMode, ...] = (TwampMode.UNAUTHENTICATED,),
        max_count: int = DEFAULT_MAX_COUNT,
    ) -> None:
        self.state = ClientState.AWAIT_GREETING
        self._random, self._modes, self._max_count = random, modes, max_count
        self._framer = Framer()
        self._tx: ControlSender = OpenControlSender()
        self._channels: Channels = OPEN_CHANNELS
        self._credentials: Credentials | None = None
        self._mode = TwampMode.UNAUTHENTICATED
        self._mode_word = int(TwampMode.UNAUTHENTICATED)  # as sent, key-source bits included
        self._asked = "the connection set-up"  # what a refusal refers to
        self._features = 0  # optional-mode bits wanted if offered (RFC 5938, 6038, 7750)
        self._agreed = 0  # those of them the server offered: set in the Set-Up-Response
        self.greeting: ServerGreeting | None = None

    @property
    def expected(self) -> str:
        """The message the client waits for, for error messages."""
        return self.state.value

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the server."""
        self._framer.feed(data)

    def next_event(self) -> ClientEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        event = self._read()
        if event is not NEED_DATA:
            self._move(type(event))
        return event

    def credentials(self, credentials: Credentials) -> bytes:
        """Octets of the Set-Up-Response keyed by ``credentials`` (answers CredentialsNeeded)."""
        greeting = self._require(ClientState.AWAIT_CREDENTIALS, "credentials")
        self._credentials = credentials
        bits = self.IKEV2_BIT if credentials.source.ikev2_derived else 0  # D3
        bits |= self._agreed
        response, self._channels = client_setup(
            greeting, self._mode, credentials, self._random, bits
        )
        self._move(SetUpResponse)
        return self._set_up(response)

    def start_sessions(self) -> bytes:
        """Octets of Start-Sessions (RFC 4656 §3.7)."""
        return self._send(StartSessions, "Start-Sessions", StartSessions().encode())

    def _require(self, state: ClientState, what: str) -> ServerGreeting:
        if self.state is not state or self.greeting is None:
            raise RuntimeError(f"{what} while the client waits for the {self.expected}")
        return self.greeting

    def _send(self, message: Trigger, asked: str, *parts: bytes) -> bytes:
        """Seal a command's parts, each with its HMAC, and move on (RFC 4656 §3.2)."""
        if message not in self.TRANSITIONS.get(self.state, {}):
            raise RuntimeError(f"{asked} while the client waits for the {self.expected}")
        self._move(message)
        self._asked = asked
        return b"".join(self._tx.seal(part) for part in parts)

    def _move(self, trigger: Trigger) -> None:
        self.state = self.TRANSITIONS[self.state][trigger]

    def _read(self) -> ClientEvent:
        """Read what the current state waits for; subclasses add their responses."""
        if self.state is ClientState.AWAIT_GREETING:
            return self._greeting()
        if self.state is ClientState.AWAIT_SERVER_START:
            return self._server_start()
        if self.state is ClientState.AWAIT_ACCEPT:
            reflect = bool(self._mode_word & TwampMode.REFLECT_OCTETS)  # RFC 6038 §4.3 fields
            decode = functools.partial(AcceptSession.decode, reflect_octets=reflect)
            return self._answer(AcceptSession.BODY, decode, SessionAccepted)
        if self.state is ClientState.AWAIT_START_ACK:
            return self._answer(StartAck.BODY, StartAck.decode, StartAcked)
        if self._framer.pending():
            raise ProtocolError(
                "octets the client did not ask for",
                field=self.PROTOCOL,
                section=self.SECTION,
            )
        return NEED_DATA

    def _greeting(self) -> ClientEvent:
        """Choose the mode or refuse (RFC 4656 §3.1)."""
        data = self._framer.clear(ServerGreeting.SIZE)
        if data is None:
            return NEED_DATA
        greeting = self.greeting = ServerGreeting.decode(data)
        if greeting.modes == 0:
            return Refused("the server refused the connection (Server-Greeting with Modes 0)")
        mode = choose_mode(greeting.modes, self._modes)
        if mode is None:
            offered = ", ".join(mode_names(greeting.modes)) or f"{greeting.modes:#x}"
            wanted = ", ".join(MODE_NAMES[m] for m in self._modes)
            return Refused(
                f"no common mode: the server offers {offered}; this client allows {wanted}"
            )
        self._mode = mode
        self._agreed = self._features & greeting.modes
        if mode is TwampMode.UNAUTHENTICATED:
            return Send(self._set_up(SetUpResponse(int(mode) | self._agreed)))
        try:
            check_count(greeting.count, self._max_count)
        except ProtocolError as exc:
            return Refused(f"the server's PBKDF2 {exc}")
        return CredentialsNeeded(mode, bool(greeting.modes & self.IKEV2_BIT))

    def _set_up(self, response: SetUpResponse) -> bytes:
        """Octets of the Set-Up-Response, which is never encrypted (RFC 4656 §3.1)."""
        self._mode_word = response.mode
        self._tx = self._channels.tx
        return response.encode()

    def _server_start(self) -> ClientEvent:
        data = self._framer.clear(ServerStart.SIZE)
        if data is None:
            return NEED_DATA
        clear = ServerStart.CLEAR_SIZE
        head = ServerStart.decode(data[:clear] + bytes(ServerStart.SIZE - clear))
        if head.accept != Accept.OK:
            return Refused(self._set_up_refusal(head.accept), head.accept)
        self._framer.rx = self._channels.receiver(head.server_iv)
        tail = self._framer.rx.decrypt(data[clear:])  # covered by the next HMAC (D13)
        return ServerStarted(ServerStart.decode(data[:clear] + tail), self._security())

    def _set_up_refusal(self, accept: int) -> str:
        if accept == Accept.FAILURE and self._credentials is not None:
            return (
                f"the server rejected the authentication (Accept 1): unknown KeyID "
                f"{self._credentials.label!r} or wrong shared secret"
            )
        return refusal(accept, self._asked)

    def _security(self) -> Security:
        credentials = self._credentials
        source, label = (
            (KeySourceKind.NONE, "")
            if credentials is None
            else (credentials.source, credentials.label)
        )
        return Security(self._mode, self._mode_word, self._channels.keys, source, label)

    def _answer(
        self, size: int, decode: Callable[[bytes], A], event: Callable[[A], ClientEvent]
    ) -> ClientEvent:
        """``event`` for an answer with Accept 0, Refused for any other (RFC 4656 §3.3)."""
        body = self._framer.part(size)
        if body is None:
            return NEED_DATA
        answer = decode(body)
        if answer.accept != Accept.OK:
            return Refused(refusal(answer.accept, self._asked), answer.accept)
        return event(answer)
