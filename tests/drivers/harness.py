"""What the in-process server tests share: a control client one step at a time, a fresh
server per scenario on 127.0.0.1, and a free UDP port.

Import as ``from tests.drivers.harness import ...`` (the suite runs with
``--import-mode=importlib``).
"""

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

from otwamp.control.effects import Send
from otwamp.control.events import (
    CredentialsNeeded,
    NeedData,
    Refused,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.keys.source import Credentials
from otwamp.security.sessionkeys import SessionKeys
from otwamp.wire.registry import Accept, TwampMode


class ControlClient:
    """A control client over a real TCP connection, driving the client ``machine``."""

    read_size = 65536  # octets per read from the server

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, machine: Any
    ) -> None:
        self.reader, self.writer = reader, writer
        self.machine = machine
        self.keys: SessionKeys | None = None
        self.mode = TwampMode.UNAUTHENTICATED

    async def event(self) -> Any:
        while isinstance(event := self.machine.next_event(), NeedData):
            data = await asyncio.wait_for(self.reader.read(self.read_size), 5)
            assert data, "the server closed the connection"
            self.machine.receive_data(data)
        return event

    async def set_up(
        self, mode: TwampMode = TwampMode.UNAUTHENTICATED, credentials: Credentials | None = None
    ) -> int:
        """Connection set-up in ``mode``; the Accept of Server-Start."""
        self.machine = type(self.machine)(os.urandom, (mode,))
        while True:
            event = await self.event()
            if isinstance(event, Send):
                self.writer.write(event.data)
            elif isinstance(event, CredentialsNeeded):
                assert credentials is not None
                self.writer.write(self.machine.credentials(credentials))
            elif isinstance(event, ServerStarted):
                self.keys, self.mode = event.security.keys, mode
                return Accept.OK
            else:
                assert isinstance(event, Refused) and event.accept is not None, event
                return event.accept

    async def start(self) -> int:
        self.writer.write(self.machine.start_sessions())
        ack = await self.event()
        if isinstance(ack, Refused):
            assert ack.accept is not None
            return ack.accept
        assert isinstance(ack, StartAcked)
        return ack.ack.accept


class Server(Protocol):
    async def start(self) -> Sequence[tuple[Any, ...]]: ...

    async def close(self) -> None: ...


C = TypeVar("C", bound=ControlClient)
S = TypeVar("S", bound=Server)


def run_scenario(
    make_server: Callable[[], S],
    make_client: Callable[[asyncio.StreamReader, asyncio.StreamWriter], C],
    scenario: Callable[[C, S], Awaitable[None]],
) -> None:
    """Run ``scenario`` against a fresh server from ``make_server`` (made in the event loop)."""

    async def main() -> None:
        server = make_server()
        (host, port), *_ = await server.start()
        reader, writer = await asyncio.open_connection(host, port)
        try:
            await scenario(make_client(reader, writer), server)
        finally:
            writer.close()
            await server.close()
            await asyncio.sleep(0.05)  # let the server log the connection's end

    asyncio.run(main())


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def accepted(client: ControlClient) -> tuple[int, int, bytes]:
    """The next Accept-Session as (Accept, Port, SID); a refusal has Port 0 and SID 0."""
    event = await client.event()
    if isinstance(event, Refused):
        assert event.accept is not None
        return event.accept, 0, bytes(16)
    assert isinstance(event, SessionAccepted)
    return event.accept.accept, event.accept.port, event.accept.sid
