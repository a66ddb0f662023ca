"""The TWAMP-Control client as a sans-I/O state machine (RFC 5357 §3).

The client sends, then expects exactly one response per request; each
response's length is known from what was sent, so framing needs no lookahead.
"""

import enum
from collections import deque
from collections.abc import Callable

from otwamp.control.buffer import ReceiveBuffer
from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    GreetingReceived,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.errors import ProtocolError
from otwamp.security.control import (
    ControlReceiver,
    ControlSender,
    OpenControlReceiver,
    OpenControlSender,
)
from otwamp.wire.registry import Accept
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.twamp_control import (
    HMAC_SIZE,
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
)

SECTION = "RFC 5357 §3"


class Expect(enum.Enum):
    """What the client waits for next."""

    GREETING = "Server-Greeting"
    SERVER_START = "Server-Start"
    ACCEPT_SESSION = "Accept-Session"
    START_ACK = "Start-Ack"


class TwampClientConnection:
    """One TWAMP-Control connection, client side."""

    def __init__(self) -> None:
        self._buffer = ReceiveBuffer()
        self._expect: deque[Expect] = deque([Expect.GREETING])
        self._tx: ControlSender = OpenControlSender()
        self._rx: ControlReceiver = OpenControlReceiver()
        self._rx_factory: Callable[[bytes], ControlReceiver] = lambda _iv: OpenControlReceiver()
        self.greeting: ServerGreeting | None = None
        self.closed = False

    def setup(
        self,
        response: SetUpResponse,
        tx: ControlSender | None = None,
        rx_factory: Callable[[bytes], ControlReceiver] | None = None,
    ) -> bytes:
        """Octets of Set-Up-Response; ``rx_factory`` makes the receive channel from Server-IV."""
        if self.greeting is None:
            raise RuntimeError("Set-Up-Response before the Server-Greeting")
        self._tx = tx or OpenControlSender()
        if rx_factory is not None:
            self._rx_factory = rx_factory
        self._expect.append(Expect.SERVER_START)
        return response.encode()

    def request_session(self, request: RequestTwSession) -> bytes:
        """Octets of a Request-TW-Session (RFC 5357 §3.5)."""
        self._expect.append(Expect.ACCEPT_SESSION)
        return self._tx.seal(request.encode())

    def start_sessions(self) -> bytes:
        """Octets of Start-Sessions (RFC 4656 §3.7)."""
        self._expect.append(Expect.START_ACK)
        return self._tx.seal(StartSessions().encode())

    def stop_sessions(self, accept: int, num_sessions: int) -> bytes:
        """Octets of Stop-Sessions (RFC 5357 §3.8); no response follows."""
        return self._tx.seal(StopSessions(accept, num_sessions).encode())

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the server."""
        self._buffer.feed(data)

    def next_event(self) -> ClientEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        if not self._expect:
            if len(self._buffer):
                raise ProtocolError(
                    "octets the client did not ask for", field="TWAMP-Control", section=SECTION
                )
            return NEED_DATA
        handler = {
            Expect.GREETING: self._greeting,
            Expect.SERVER_START: self._server_start,
            Expect.ACCEPT_SESSION: self._accept_session,
            Expect.START_ACK: self._start_ack,
        }[self._expect[0]]
        event = handler()
        if event is not NEED_DATA:
            self._expect.popleft()
        return event

    def _greeting(self) -> ClientEvent:
        data = self._buffer.take(ServerGreeting.SIZE)
        if data is None:
            return NEED_DATA
        self.greeting = ServerGreeting.decode(data)
        return GreetingReceived(self.greeting)

    def _server_start(self) -> ClientEvent:
        data = self._buffer.take(ServerStart.SIZE)
        if data is None:
            return NEED_DATA
        clear = ServerStart.CLEAR_SIZE
        head = ServerStart.decode(data[:clear] + bytes(ServerStart.SIZE - clear))
        if head.accept != Accept.OK:
            self.closed = True
            return ServerStarted(head)
        self._rx = self._rx_factory(head.server_iv)
        return ServerStarted(ServerStart.decode(data[:clear] + self._rx.decrypt(data[clear:])))

    def _message(self, body_size: int) -> bytes | None:
        data = self._buffer.take(body_size + HMAC_SIZE)
        if data is None:
            return None
        body = self._rx.decrypt(data[:body_size])
        self._rx.verify(data[body_size:])
        return body

    def _accept_session(self) -> ClientEvent:
        body = self._message(AcceptSession.BODY)
        return NEED_DATA if body is None else SessionAccepted(AcceptSession.decode(body))

    def _start_ack(self) -> ClientEvent:
        body = self._message(StartAck.BODY)
        return NEED_DATA if body is None else StartAcked(StartAck.decode(body))
