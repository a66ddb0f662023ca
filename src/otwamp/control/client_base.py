"""What the OWAMP and TWAMP control clients share: set-up and expected responses.

The client sends, then expects the responses its requests call for, in
order; each response's framing is known from what was sent (RFC 4656 §3).
"""

from collections import deque
from collections.abc import Callable

from otwamp.control.events import NEED_DATA, GreetingReceived, ServerStarted
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


class ClientConnectionBase:
    """One control connection, client side, up to the commands."""

    SECTION = "RFC 4656 §3"
    PROTOCOL = "OWAMP-Control"

    def __init__(self) -> None:
        self._framer = Framer()
        self._expect: deque[str] = deque(["Server-Greeting"])
        self._tx: ControlSender = OpenControlSender()
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
        self._expect.append("Server-Start")
        return response.encode()

    def receive_data(self, data: bytes) -> None:
        """Feed octets received from the server."""
        self._framer.feed(data)

    def next_event(self) -> object:
        """The next event from the buffered octets, or NEED_DATA."""
        if not self._expect:
            if self._framer.pending():
                raise ProtocolError(
                    "octets the client did not ask for", field=self.PROTOCOL, section=self.SECTION
                )
            return NEED_DATA
        event = self._read(self._expect[0])
        if event is not NEED_DATA:
            self._expect.popleft()
        return event

    def _read(self, what: str) -> object:
        """Read the response ``what`` names; subclasses add their commands' responses."""
        if what == "Server-Greeting":
            return self._greeting()
        return self._server_start()

    def _greeting(self) -> object:
        data = self._framer.clear(ServerGreeting.SIZE)
        if data is None:
            return NEED_DATA
        self.greeting = ServerGreeting.decode(data)
        return GreetingReceived(self.greeting)

    def _server_start(self) -> object:
        data = self._framer.clear(ServerStart.SIZE)
        if data is None:
            return NEED_DATA
        clear = ServerStart.CLEAR_SIZE
        head = ServerStart.decode(data[:clear] + bytes(ServerStart.SIZE - clear))
        if head.accept != Accept.OK:
            self.closed = True
            return ServerStarted(head)
        self._framer.rx = self._rx_factory(head.server_iv)
        tail = self._framer.rx.decrypt(data[clear:])  # covered by the next HMAC (D13)
        return ServerStarted(ServerStart.decode(data[:clear] + tail))
