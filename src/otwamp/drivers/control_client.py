"""What the OWAMP and TWAMP clients share: settings, the control stream, set-up.

The control machines decide; this module reads octets with a timeout, feeds
them, carries out what the machine asks (send octets, look up a key) and
turns refusals into RefusedError with the machine's words.
"""

import asyncio
import os
import socket
from dataclasses import dataclass
from typing import Generic, TypeVar

from otwamp.control.client_base import ClientConnectionBase
from otwamp.control.effects import Send
from otwamp.control.events import ClientEvent, CredentialsNeeded, NeedData, Refused, ServerStarted
from otwamp.control.security import DEFAULT_MAX_COUNT, Security
from otwamp.errors import AuthenticationError, KeySourceError, OtwampError, RefusedError
from otwamp.keys.source import ClientKeySource, Credentials
from otwamp.session.schedule import Schedule
from otwamp.wire.registry import MODE_NAMES, TwampMode

__all__ = ["Control", "PingSettings", "Security", "connect", "expect", "set_up"]


@dataclass(frozen=True, slots=True)
class PingSettings:
    """One measurement as the operator asked for it (TWAMP or OWAMP)."""

    host: str
    port: int
    family: socket.AddressFamily = socket.AF_UNSPEC
    count: int = 100
    interval: float = 0.1
    schedule: Schedule = Schedule.FIXED
    padding: int | None = None  # None: TWAMP pads to equal sizes both ways; OWAMP sends none
    dscp: int = 0
    wait: float = 2.0  # Timeout (RFC 4656 §3.5, RFC 5357 §3.5): how long to wait for stragglers
    control_timeout: float = 10.0  # seconds to wait for each control response
    modes: tuple[TwampMode, ...] = (TwampMode.UNAUTHENTICATED,)  # the client's acceptable modes
    keys: ClientKeySource | None = None
    max_count: int = DEFAULT_MAX_COUNT  # highest PBKDF2 Count accepted (D11)
    directions: tuple[str, ...] = ("to", "from")  # OWAMP only: which one-way sessions
    start_n: bool = False  # TWAMP only: Individual Session Control if offered (RFC 5938)
    reflect_octets: int | None = None  # TWAMP only: Length of padding to reflect (RFC 6038)
    source: str | None = None  # local address to connect from (test packets follow it)


M = TypeVar("M", bound=ClientConnectionBase)
E = TypeVar("E")


class Control(Generic[M]):
    """A control client connection over asyncio streams, driving machine ``M``."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float, machine: M
    ) -> None:
        self.reader, self.writer, self.timeout, self.machine = reader, writer, timeout, machine

    async def send(self, data: bytes) -> None:
        """Write octets to the server."""
        self.writer.write(data)
        await self.writer.drain()

    async def next_event(self, timeout: float | None = -1.0) -> ClientEvent:
        """The machine's next event, reading as needed; ``timeout`` None waits for ever."""
        limit = self.timeout if timeout == -1.0 else timeout
        while isinstance(event := self._next(), NeedData):
            what = self.machine.expected
            try:
                data = await asyncio.wait_for(self.reader.read(65536), limit)
            except TimeoutError:
                raise OtwampError(f"the server sent no {what} within {limit:g} s") from None
            if not data:
                raise OtwampError(f"the server closed the control connection before its {what}")
            self.machine.receive_data(data)
        return event

    async def receive(self, expected: type[E], timeout: float | None = -1.0) -> E:
        """The next event, which must be an ``expected``; a refusal raises RefusedError."""
        return expect(await self.next_event(timeout), expected)

    def _next(self) -> ClientEvent:
        what = self.machine.expected
        try:
            return self.machine.next_event()
        except AuthenticationError:
            raise OtwampError(
                f"the server's {what} failed its HMAC check (wrong key, or altered on the path)"
            ) from None


async def connect(settings: PingSettings, machine: type[M]) -> Control[M]:
    """A control connection to ``settings.host`` driving a new ``machine``; OSError says why not."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(
            settings.host,
            settings.port,
            family=settings.family,
            local_addr=None if settings.source is None else (settings.source, 0),
        ),
        settings.control_timeout,
    )
    client = machine(os.urandom, settings.modes, settings.max_count)
    return Control(reader, writer, settings.control_timeout, client)


async def set_up(control: Control[M], settings: PingSettings, server: str) -> Security:
    """Connection set-up (RFC 4656 §3.1): the machine decides, this answers its requests."""
    while True:
        event = await control.next_event()
        if isinstance(event, Send):
            await control.send(event.data)
        elif isinstance(event, CredentialsNeeded):
            credentials = await _credentials(settings.keys, event, server)
            await control.send(control.machine.credentials(credentials))
        else:
            return expect(event, ServerStarted).security


def expect(event: ClientEvent, expected: type[E]) -> E:
    """``event`` if it is an ``expected``; RefusedError with the machine's reason if refused."""
    if isinstance(event, expected):
        return event
    if isinstance(event, Refused):
        raise RefusedError(event.reason)
    raise OtwampError(f"internal error: {type(event).__name__} where {expected.__name__} was due")


async def _credentials(
    keys: ClientKeySource | None, needed: CredentialsNeeded, server: str
) -> Credentials:
    """The key the machine asked for, from the operator's key source."""
    if keys is None:
        raise KeySourceError(f"mode {MODE_NAMES[needed.mode]} needs a key: give -u ID and -k FILE")
    return await keys.credentials_for(server, needed.derived_offered)
