"""Driving a server machine in memory: a scripted client, a fixed clock, fixed random octets.

The client side is built from the codecs and the control channels, so a test
states the octets a client sends and reads the server's answers back from
the ``Send`` effects, with no socket and no clock.
"""

import itertools
from dataclasses import dataclass, field
from typing import Any

from otwamp.control.effects import Effect, Send, SendStream
from otwamp.control.framing import Framer
from otwamp.control.security import OPEN_CHANNELS, Channels, client_setup
from otwamp.control.server_policy import NS
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart

NOW = 1_800_000_000 * NS  # 2027-01-15, a fixed wall clock in Unix ns
PEER = ("192.0.2.7", 40000)
LOCAL = ("192.0.2.1", 862)
SECRET = b"correct horse battery staple"
CREDENTIALS = Credentials(b"alice".ljust(80, b"\0"), SECRET, KeySourceKind.PASSPHRASE, "alice")


_COUNTER = itertools.count()


def counting_random(size: int) -> bytes:
    """Distinct, repeatable 'random' octets."""
    start = next(_COUNTER) % 256
    return bytes((start + i) % 256 for i in range(size))


@dataclass
class ScriptedClient:
    """The client end of a server machine: seals what it sends, opens what the server sends."""

    machine: Any
    channels: Channels = OPEN_CHANNELS
    framer: Framer = field(default_factory=Framer)
    effects: list[Effect] = field(default_factory=list)

    def collect(self) -> list[Effect]:
        """The machine's new effects; the octets it sends are fed to this client's framer."""
        new: list[Effect] = []
        while batch := self.machine.effects():
            for effect in batch:
                if isinstance(effect, Send):
                    self.framer.feed(effect.data)
                elif isinstance(effect, SendStream):  # written whole, then the machine resumes
                    for chunk in effect.chunks:
                        self.framer.feed(chunk)
                    self.machine.stream_sent(NOW)
            new += batch
        self.effects += new
        return new

    def greeting(self) -> ServerGreeting:
        data = self.framer.clear(ServerGreeting.SIZE)
        assert data is not None, "no Server-Greeting"
        return ServerGreeting.decode(data)

    def set_up(
        self,
        mode: TwampMode = TwampMode.UNAUTHENTICATED,
        credentials: Credentials | None = None,
        mode_bits: int = 0,
        now: int = NOW,
    ) -> None:
        """Send Set-Up-Response for ``mode``; the machine may then ask for a key."""
        greeting = self.greeting()
        response, self.channels = client_setup(
            greeting, mode, credentials, counting_random, mode_bits
        )
        self.machine.receive_data(response.encode(), now)

    def server_start(self) -> ServerStart:
        data = self.framer.clear(ServerStart.SIZE)
        assert data is not None, "no Server-Start"
        clear = ServerStart.CLEAR_SIZE
        head = ServerStart.decode(data[:clear] + bytes(ServerStart.SIZE - clear))
        if head.accept != 0:
            return head
        self.framer.rx = self.channels.receiver(head.server_iv)
        return ServerStart.decode(data[:clear] + self.framer.rx.decrypt(data[clear:]))

    def send(self, *parts: bytes, now: int = NOW) -> None:
        """Seal each part with its HMAC and feed them to the machine as one segment."""
        self.machine.receive_data(b"".join(self.channels.tx.seal(p) for p in parts), now)

    def read(self, size: int) -> bytes:
        """One sealed part of the server's answers, opened."""
        part = self.framer.part(size)
        assert part is not None, f"no {size}-octet part from the server"
        return part
