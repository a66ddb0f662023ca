"""Two IkeEndpoints wired together in memory, on a fake clock (no sockets, no sleeping)."""

import contextlib
from dataclasses import dataclass, field

from otwamp.errors import ProtocolError
from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.crypto.entropy import system_random
from otwamp.ike.endpoint import IkeEndpoint
from otwamp.ike.events import Event
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.sa import Address, IkeSa
from otwamp.ike.timers import Lifetimes

from .pairing import INIT_ADDRESS, INIT_ID, NOW, PSK, RESP_ADDRESS, RESP_ID, suites

CHOSEN = suites("aes128-sha256-x25519")


@dataclass
class Side:
    """One endpoint, its address, what it reported, and when it sent what."""

    endpoint: IkeEndpoint
    address: Address
    events: list[Event] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)
    silent: bool = False  # drops everything it receives, as if it had gone away

    def sas(self) -> tuple[IkeSa, ...]:
        return self.endpoint.database.all()

    def mirror(self, sa: IkeSa) -> IkeSa | None:
        """Our record of the SA the other side calls ``sa``."""
        return self.endpoint.database.by_spis(sa.spi_i, sa.spi_r)


@dataclass
class Wired:
    """An initiator side and a responder side; ``now`` only moves when a test moves it."""

    initiator: Side
    responder: Side
    now: float = NOW

    @classmethod
    def make(
        cls,
        initiator_lifetimes: Lifetimes | None = None,
        responder_lifetimes: Lifetimes | None = None,
        initiator_suites: tuple[Suite, ...] = CHOSEN,
        responder_suites: tuple[Suite, ...] = CHOSEN,
        limits: HalfOpenLimits | None = None,
    ) -> "Wired":
        ours = IkeEndpoint(
            Policy(INIT_ID, initiator_suites, {RESP_ID: PSK}),
            system_random,
            lifetimes=initiator_lifetimes,
        )
        theirs = IkeEndpoint(
            Policy(RESP_ID, responder_suites, {INIT_ID: PSK}),
            system_random,
            lifetimes=responder_lifetimes,
            limits=limits,
        )
        return cls(Side(ours, INIT_ADDRESS), Side(theirs, RESP_ADDRESS))

    def establish(self, timeout: float = 10.0) -> IkeSa:
        """Set up an IKE SA at ``now``; return the initiator's record of it."""
        self.initiator.endpoint.initiate(RESP_ID, RESP_ADDRESS, self.now, timeout)
        self.flush()
        [sa] = self.initiator.sas()
        return sa

    def flush(self) -> None:
        """Deliver datagrams both ways at ``now`` until both sides are quiet."""
        while True:
            moved = False
            for sender, receiver in (
                (self.initiator, self.responder),
                (self.responder, self.initiator),
            ):
                for message, address in sender.endpoint.datagrams_to_send():
                    assert address == receiver.address
                    sender.sent.append(self.now)
                    moved = True
                    if not receiver.silent:
                        with contextlib.suppress(ProtocolError):  # dropped, as the daemon does
                            receiver.endpoint.receive(message, sender.address, self.now)
                sender.events.extend(event for _, event in sender.endpoint.events())
            if not moved:
                return

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, running every timer at its time."""
        end = self.now + seconds
        while True:
            timers = [t for s in self.sides() if (t := s.endpoint.get_timer()) is not None]
            due = min(timers, default=None)
            if due is None or due > end:
                break
            self.now = max(self.now, due)
            for side in self.sides():
                side.endpoint.handle_timer(self.now)
            self.flush()
        self.now = end

    def sides(self) -> tuple[Side, Side]:
        return self.initiator, self.responder
