"""What the OWAMP and TWAMP clients share: settings, the control stream, set-up.

The control machines decide what is valid; this module moves octets and
turns refusals into messages that say what the Accept value means.
"""

import asyncio
import os
import socket
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from otwamp.control.client_base import ClientConnectionBase
from otwamp.control.events import NEED_DATA, GreetingReceived, ServerStarted
from otwamp.control.security import DEFAULT_MAX_COUNT, check_count, choose_mode, client_setup
from otwamp.errors import (
    AuthenticationError,
    KeySourceError,
    OtwampError,
    ProtocolError,
    RefusedError,
)
from otwamp.keys.source import ClientKeySource
from otwamp.security.sessionkeys import SessionKeys
from otwamp.session.schedule import Schedule
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode, mode_names


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


@dataclass(frozen=True, slots=True)
class Security:
    """What connection set-up settled: the mode, keys and where they came from."""

    mode: TwampMode
    mode_word: int
    keys: SessionKeys | None = field(repr=False)
    key_source: str
    label: str

    @property
    def ike_spis(self) -> tuple[str, str] | None:
        """SPIi and SPIr in hex when the key is IKEv2-derived (D4), for reports."""
        if self.key_source != "ikev2":
            return None
        spi_i, spi_r = (part.split("=")[1] for part in self.label.split())
        return spi_i, spi_r


M = TypeVar("M", bound=ClientConnectionBase)


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

    async def receive(self, what: str, timeout: float | None = -1.0) -> object:
        """The next event; ``what`` names it in errors; ``timeout`` None waits for ever."""
        limit = self.timeout if timeout == -1.0 else timeout
        while (event := self._next(what)) is NEED_DATA:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), limit)
            except TimeoutError:
                raise OtwampError(f"the server sent no {what} within {limit:g} s") from None
            if not data:
                raise OtwampError(f"the server closed the control connection before its {what}")
            self.machine.receive_data(data)
        return event

    def _next(self, what: str) -> object:
        try:
            return self.machine.next_event()
        except AuthenticationError:
            raise OtwampError(
                f"the server's {what} failed its HMAC check (wrong key, or altered on the path)"
            ) from None


async def connect(settings: PingSettings, machine: M) -> Control[M]:
    """A control connection to ``settings.host``; OSError says why there is none."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(settings.host, settings.port, family=settings.family),
        settings.control_timeout,
    )
    return Control(reader, writer, settings.control_timeout, machine)


async def set_up(
    control: Control[M], settings: PingSettings, server: str, ikev2_bit: int
) -> Security:
    """Greeting, Set-Up-Response and Server-Start (RFC 4656 §3.1) in the strongest common mode."""
    event = await control.receive("Server-Greeting")
    assert isinstance(event, GreetingReceived)
    greeting = event.greeting
    if greeting.modes == 0:
        raise RefusedError("the server refused the connection (Server-Greeting with Modes 0)")
    mode = choose_mode(greeting.modes, settings.modes)
    if mode is None:
        offered = ", ".join(mode_names(greeting.modes)) or f"{greeting.modes:#x}"
        wanted = ", ".join(MODE_NAMES[m] for m in settings.modes)
        raise RefusedError(
            f"no common mode: the server offers {offered}; this client allows {wanted}"
        )
    credentials, bits = None, 0
    if mode is not TwampMode.UNAUTHENTICATED:
        if settings.keys is None:
            raise KeySourceError(f"mode {MODE_NAMES[mode]} needs a key: give -u ID and -k FILE")
        try:
            check_count(greeting.count, settings.max_count)
        except ProtocolError as exc:
            raise RefusedError(f"the server's PBKDF2 {exc}") from None
        derived = bool(greeting.modes & ikev2_bit)  # offered? RFC 7717 §5.2
        credentials = await settings.keys.credentials_for(server, derived)
        bits = ikev2_bit if credentials.source == "ikev2" else 0  # D3
    response, channels = client_setup(greeting, mode, credentials, os.urandom, bits)
    await control.send(control.machine.setup(response, channels.tx, channels.receiver))
    started = await control.receive("Server-Start")
    assert isinstance(started, ServerStarted)
    accept = started.start.accept
    if accept == Accept.FAILURE and credentials is not None:
        raise RefusedError(
            f"the server rejected the authentication (Accept 1): unknown KeyID "
            f"{credentials.label!r} or wrong shared secret"
        )
    check_accept(accept, "the connection set-up")
    source, label = ("none", "") if credentials is None else (credentials.source, credentials.label)
    return Security(mode, response.mode, channels.keys, source, label)


def check_accept(value: int, what: str) -> None:
    """Raise RefusedError naming the Accept value's meaning (RFC 4656 §3.3)."""
    if value != Accept.OK:
        accept = Accept.interpret(value)
        raise RefusedError(f"the server refused {what}: Accept {value} ({accept.meaning})")
