"""The asyncio UDP driver of an IkeEndpoint: one socket and one timer (D7-D8)."""

import asyncio
import logging
import time
from collections.abc import Callable

from otwamp.control.server_policy import fmt
from otwamp.errors import OtwampError, ProtocolError
from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.crypto.entropy import RandomSource, system_random
from otwamp.ike.database import SaDatabase
from otwamp.ike.endpoint import IkeEndpoint
from otwamp.ike.errors import NegotiationError
from otwamp.ike.events import Established, Event, Failed, Rekeyed, RekeyFailed, TimedOut
from otwamp.ike.framing import frame, needs_marker, unframe
from otwamp.ike.policy import Policy
from otwamp.ike.sa import Address, IkeSa
from otwamp.ike.timers import EXCHANGE_TIMEOUT, Lifetimes
from otwamp.ike.wire.identity import Identity

LOG = logging.getLogger("otwamp.ike")
AUTH_WAIT = 2.0  # seconds a key lookup waits for an IKE_AUTH response we are about to get
_AUTH_POLL = 0.01


class IkeDaemon:
    """Shuttles datagrams between one UDP socket and an IkeEndpoint, and runs its timer."""

    def __init__(
        self,
        policy: Policy,
        local: Address,
        *,
        random: RandomSource = system_random,
        clock: Callable[[], float] = time.time,
        limits: HalfOpenLimits | None = None,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        self.endpoint = IkeEndpoint(policy, random, limits=limits, lifetimes=lifetimes)
        self._local = local
        self._clock = clock
        self._outcomes: dict[bytes, asyncio.Future[Event]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    @property
    def database(self) -> SaDatabase:
        """The established SAs."""
        return self.endpoint.database

    @property
    def local(self) -> Address:
        """The local address, with the actual port once started."""
        return self._local

    async def start(self) -> Address:
        """Bind the UDP socket; return the local address actually bound."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self._local
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self._local = (host, port)
        self._loop = loop
        return self._local

    def close(self) -> None:
        """Close the socket and stop the timers; established SAs are forgotten, not deleted."""
        self._loop = None
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()
        for outcome in self._outcomes.values():
            if not outcome.done():
                outcome.set_exception(NegotiationError("the IKE daemon was closed"))

    async def delete_all(self, timeout: float = 1.0) -> None:
        """Delete every established SA, waiting at most ``timeout`` for the peers' answers."""
        await asyncio.gather(*(self.remove(sa, timeout) for sa in self.database.all()))

    async def remove(self, sa: IkeSa, timeout: float = EXCHANGE_TIMEOUT) -> bool:
        """Delete ``sa``; True if the peer answered, else it is forgotten all the same."""
        try:
            await self.delete(sa, timeout)
        except OtwampError as error:
            if self.database.by_spis(sa.spi_i, sa.spi_r):
                self.endpoint.drop(sa, f"deleted without answer ({error})")
            return False
        return True

    async def initiate(
        self, remote_id: Identity, peer: Address, timeout: float = EXCHANGE_TIMEOUT
    ) -> IkeSa:
        """Set up an IKE SA with ``peer``; NegotiationError says why it failed."""
        spi_i = self.endpoint.initiate(remote_id, peer, self._clock(), timeout)
        outcome = await self._outcome(spi_i)
        if not isinstance(outcome, Established):
            raise NegotiationError(f"IKE SA with {fmt(*peer)}: {_reason(outcome)}")
        return outcome.sa

    async def established(
        self, spi_i: bytes, spi_r: bytes, wait: float = AUTH_WAIT
    ) -> IkeSa | None:
        """The SA the SPIs name; while we still set it up as initiator, waited for.

        A responder may use a new SA as soon as it has sent its IKE_AUTH response,
        which can reach us after the O/TWAMP Set-Up-Response keyed by that SA: the
        KeyID then names an SA we are one datagram from having (RFC 7717 §5.2).
        """
        deadline = self._clock() + wait
        while True:
            sa = self.database.by_spis(spi_i, spi_r)
            if sa is not None or not self.endpoint.handshaking(spi_i):
                return sa
            if self._clock() >= deadline:
                return None
            await asyncio.sleep(_AUTH_POLL)

    async def delete(self, sa: IkeSa, timeout: float = EXCHANGE_TIMEOUT) -> None:
        """Delete an established IKE SA (RFC 7296 §1.4.1); NegotiationError if unanswered."""
        self.endpoint.delete(sa, self._clock(), timeout)
        outcome = await self._outcome(sa.spi_i)
        if isinstance(outcome, TimedOut):
            raise NegotiationError(f"delete of {sa.spi_i.hex()}: {outcome.reason}")

    async def rekey(self, sa: IkeSa, timeout: float = EXCHANGE_TIMEOUT) -> IkeSa:
        """Replace an IKE SA by a new one (RFC 7296 §2.18); the old one is deleted after."""
        self.endpoint.rekey(sa, self._clock(), timeout)
        outcome = await self._outcome(sa.spi_i)
        if not isinstance(outcome, Rekeyed):
            raise NegotiationError(
                f"rekey of {sa.spi_i.hex()} with {fmt(*sa.peer)}: {_reason(outcome)}"
            )
        return outcome.new

    def datagram_received(self, datagram: bytes, address: Address) -> None:
        """Feed a datagram to the endpoint; malformed ones are dropped with a debug log."""
        try:
            message = unframe(datagram, needs_marker(self._local[1], address[1]))
            self.endpoint.receive(message, address, self._clock())
        except ProtocolError as error:
            LOG.debug("dropped %d octets from %s: %s", len(datagram), fmt(*address), error)
        self._flush()

    async def _outcome(self, spi_i: bytes) -> Event:
        """Send what the endpoint queued, then await the next event of the exchange ``spi_i``."""
        outcome: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._outcomes[spi_i] = outcome
        try:
            self._flush()
            return await outcome
        finally:
            del self._outcomes[spi_i]

    def _flush(self) -> None:
        """Send the endpoint's datagrams, settle awaited outcomes, and re-plan the timer."""
        for message, address in self.endpoint.datagrams_to_send():
            self._send(message, address)
        for spi_i, event in self.endpoint.events():
            outcome = self._outcomes.get(spi_i)
            if outcome is not None and not outcome.done():
                outcome.set_result(event)
        if self._timer is not None:
            self._timer.cancel()
        when = self.endpoint.get_timer()
        if self._loop is not None and when is not None:
            self._timer = self._loop.call_later(max(0.0, when - self._clock()), self._on_timer)

    def _on_timer(self) -> None:
        """The endpoint's earliest timer is due: let it act."""
        self._timer = None
        self.endpoint.handle_timer(self._clock())
        self._flush()

    def _send(self, message: bytes, address: Address) -> None:
        if self._transport is None:
            raise NegotiationError("the IKE daemon is not started")
        self._transport.sendto(frame(message, needs_marker(self._local[1], address[1])), address)


def _reason(event: Event) -> str:
    return (
        event.reason if isinstance(event, Failed | RekeyFailed | TimedOut) else type(event).__name__
    )


class _Protocol(asyncio.DatagramProtocol):
    """Hands datagrams to the daemon."""

    def __init__(self, daemon: IkeDaemon) -> None:
        self._daemon = daemon

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        host, port = addr[0], addr[1]
        self._daemon.datagram_received(data, (str(host), port))
