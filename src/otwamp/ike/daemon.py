"""The asyncio UDP driver: sockets, routing to machines, retransmission (RFC 7296 §2.1, D7-D8)."""

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from otwamp.errors import OtwampError, ProtocolError
from otwamp.ike.config import Lifetimes
from otwamp.ike.cookies import CookieGuard
from otwamp.ike.crypto.entropy import RandomSource, system_random
from otwamp.ike.database import SaDatabase
from otwamp.ike.errors import NegotiationError
from otwamp.ike.events import (
    Deleted,
    Established,
    Event,
    Failed,
    Output,
    Redundant,
    Rekeyed,
    RekeyFailed,
)
from otwamp.ike.framing import frame, needs_marker, unframe
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.registry import ExchangeType
from otwamp.ike.responder import Responder, ResponderState
from otwamp.ike.sa import Address, IkeSa
from otwamp.ike.session import IkeSession, SessionState
from otwamp.ike.wire.header import IkeHeader
from otwamp.ike.wire.identity import Identity

LOG = logging.getLogger("otwamp.ike")
RETRANSMIT_DELAYS = (0.5, 1.0, 2.0, 4.0)  # RFC 7296 §2.1: exponential back-off
HALF_OPEN_LIFETIME = 30.0  # seconds a responder waits for IKE_AUTH
_SECRET_LEN = 32
_HALF_OPEN = (ResponderState.IDLE, ResponderState.INIT_DONE)
EXCHANGE_TIMEOUT = 10.0  # seconds for a rekey or delete exchange


class IkeDaemon:
    """Runs our initiators and responders on one UDP socket and keeps the SA database."""

    def __init__(
        self,
        policy: Policy,
        local: Address,
        *,
        random: RandomSource = system_random,
        clock: Callable[[], float] = time.time,
        cookie_threshold: int = 64,
        max_half_open: int = 1024,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        self.database = SaDatabase()
        self._policy = policy
        self._local = local
        self._random = random
        self._clock = clock
        self._cookies = CookieGuard(random(_SECRET_LEN))
        self._cookie_threshold = cookie_threshold
        self._max_half_open = max_half_open
        self._initiators: dict[bytes, Initiator] = {}
        self._responders: dict[tuple[bytes, Address], Responder] = {}
        self._born: dict[tuple[bytes, Address], float] = {}
        self._sessions: dict[tuple[bytes, bytes], IkeSession] = {}
        self._outcomes: dict[bytes, asyncio.Future[Event]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._lifetimes = lifetimes
        self._timers: dict[tuple[bytes, bytes], asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._cookies_on = False

    async def start(self) -> Address:
        """Bind the UDP socket; return the local address actually bound."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self._local
        )
        self._transport = transport
        host, port = self._transport.get_extra_info("sockname")[:2]
        self._local = (host, port)
        return self._local

    @property
    def local(self) -> Address:
        """The local address, with the actual port once started."""
        return self._local

    def close(self) -> None:
        """Close the socket; established SAs are forgotten, not deleted."""
        for task in (*self._timers.values(), *self._tasks):
            task.cancel()
        self._timers.clear()
        if self._transport is not None:
            self._transport.close()

    async def delete_all(self, timeout: float = 1.0) -> None:
        """Delete every established SA, waiting at most ``timeout`` for the peers' answers."""
        sas = self.database.all()
        results = await asyncio.gather(
            *(self.delete(sa, timeout) for sa in sas), return_exceptions=True
        )
        for sa, result in zip(sas, results, strict=True):
            if isinstance(result, BaseException):
                self._drop(sa, f"deleted without answer ({result})")

    async def initiate(self, remote_id: Identity, peer: Address, timeout: float = 10.0) -> IkeSa:
        """Set up an IKE SA with ``peer``; NegotiationError says why it failed."""
        initiator = Initiator(self._policy, remote_id, peer, self._random)
        self._initiators[initiator.spi_i] = initiator
        LOG.debug("initiating IKE SA %s with %s at %s", initiator.spi_i.hex(), remote_id, peer)
        outcome = await self._exchange(
            initiator.spi_i, initiator.start(), lambda: initiator.pending_request, peer, timeout
        )
        if not isinstance(outcome, Established):
            raise NegotiationError(f"IKE SA with {peer}: {_reason(outcome)}")
        return outcome.sa

    async def delete(self, sa: IkeSa, timeout: float = 10.0) -> None:
        """Delete an established IKE SA with an INFORMATIONAL exchange (RFC 7296 §1.4.1)."""
        session = self._session(sa)
        request = session.delete()
        await self._exchange(sa.spi_i, request, lambda: session.pending_request, sa.peer, timeout)

    async def rekey(self, sa: IkeSa, timeout: float = 10.0) -> IkeSa:
        """Replace an IKE SA by a new one (RFC 7296 §2.18); the old one is deleted after."""
        session = self._session(sa)
        request = session.rekey()
        outcome = await self._exchange(
            sa.spi_i, request, lambda: session.pending_request, sa.peer, timeout
        )
        if not isinstance(outcome, Rekeyed):
            raise NegotiationError(f"rekey of {sa.spi_i.hex()} with {sa.peer}: {_reason(outcome)}")
        return outcome.new

    def datagram_received(self, datagram: bytes, address: Address) -> None:
        """Feed a datagram to its machine; malformed ones are dropped with a debug log."""
        marked = needs_marker(self._local[1], address[1])
        try:
            message = unframe(datagram, marked)
            header = IkeHeader.decode(message)
            output = self._route(header, address)(message, self._clock())
        except ProtocolError as error:
            LOG.debug("dropped %d octets from %s: %s", len(datagram), address, error)
            return
        for reply in output.datagrams:
            self._send(reply, address)
        for event in output.events:
            self._on_event(header.spi_i, address, event)
        responder = self._responders.get((header.spi_i, address))
        if responder is not None and responder.state is ResponderState.IDLE:
            # A COOKIE or INVALID_KE_PAYLOAD answer keeps no state (RFC 7296 §2.6).
            self._forget(header.spi_i, address)

    def _route(self, header: IkeHeader, address: Address) -> Callable[[bytes, float], Output]:
        """The receive method of the session or handshake the message belongs to."""
        session = self._sessions.get((header.spi_i, header.spi_r))
        if session is not None:
            return session.receive
        return self._handshake(header, address).receive

    def _handshake(self, header: IkeHeader, address: Address) -> Initiator | Responder:
        if not header.from_initiator:
            initiator = self._initiators.get(header.spi_i)
            if initiator is None:
                raise ProtocolError("unknown IKE SA", field="SPI", section="RFC 7296 §2.21.4")
            return initiator
        responder = self._responders.get((header.spi_i, address))
        if responder is not None:
            return responder
        if header.exchange_type != ExchangeType.IKE_SA_INIT or header.is_response:
            raise ProtocolError("unknown IKE SA", field="SPI", section="RFC 7296 §2.21.4")
        self._expire_half_open()
        half_open = sum(r.state in _HALF_OPEN for r in self._responders.values())
        if half_open >= self._max_half_open:
            raise ProtocolError("too many half-open SAs", field="SPI", section="RFC 7296 §2.6")
        cookies = self._cookies if half_open >= self._cookie_threshold else None
        if (cookies is not None) != self._cookies_on:
            self._cookies_on = cookies is not None
            LOG.warning(
                "%d half-open IKE SAs: COOKIEs %s",
                half_open,
                "required (RFC 7296 §2.6)" if self._cookies_on else "no longer required",
            )
        responder = Responder(self._policy, address, self._random, cookies)
        self._responders[(header.spi_i, address)] = responder
        self._born[(header.spi_i, address)] = self._clock()
        return responder

    def _expire_half_open(self) -> None:
        """Forget responders that never completed IKE_AUTH (bounded half-open state)."""
        oldest = self._clock() - HALF_OPEN_LIFETIME
        for key in [k for k, born in self._born.items() if born < oldest]:
            LOG.debug("half-open IKE SA %s from %s expired", key[0].hex(), key[1])
            self._forget(*key)

    def _on_event(self, spi_i: bytes, address: Address, event: Event) -> None:
        if isinstance(event, Established):
            self._established(event.sa, self._promote(spi_i, address))
            LOG.info("IKE SA %s established %s", _spis(event.sa), _describe(event.sa))
        elif isinstance(event, Rekeyed):
            old = self._sessions[(event.old.spi_i, event.old.spi_r)]
            assert old.successor is not None
            self._established(event.new, old.successor)
            self._cancel_timer(event.old)  # the old SA is deleted next (RFC 7296 §2.18)
            LOG.info(
                "IKE SA %s rekeyed to %s %s",
                _spis(event.old),
                _spis(event.new),
                _describe(event.new),
            )
        elif isinstance(event, Failed):
            LOG.warning("IKE SA with %s failed: %s", address, event.reason)
            self._forget(spi_i, address)
        elif isinstance(event, RekeyFailed):
            LOG.warning("rekey with %s failed: %s", address, event.reason)
        elif isinstance(event, Redundant):
            LOG.info(
                "IKE SA %s is redundant after a simultaneous rekey (RFC 7296 §2.8.2): deleting it",
                _spis(event.sa),
            )
            self._background(self.delete(event.sa))
        elif isinstance(event, Deleted):
            sa = self.database.by_spis(event.spi_i, event.spi_r)
            if sa is not None:
                self._drop(sa, "deleted")
        outcome = self._outcomes.get(spi_i)
        if outcome is not None and not outcome.done():
            outcome.set_result(event)

    def _established(self, sa: IkeSa, session: IkeSession) -> None:
        self.database.add(sa)
        self._sessions[(sa.spi_i, sa.spi_r)] = session
        if self._lifetimes is not None and self._transport is not None:
            self._timers[(sa.spi_i, sa.spi_r)] = asyncio.get_running_loop().create_task(
                self._life(sa, self._lifetimes)
            )

    def _background(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` on its own; failures are logged, not raised."""

        async def logged() -> None:
            try:
                await job
            except OtwampError as error:
                LOG.warning("%s", error)

        task = asyncio.get_running_loop().create_task(logged())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _drop(self, sa: IkeSa, why: str) -> None:
        """Forget an SA that is gone (sessions already using its key keep it, D5)."""
        self.database.remove(sa.spi_i, sa.spi_r)
        self._sessions.pop((sa.spi_i, sa.spi_r), None)
        self._cancel_timer(sa)
        LOG.info("IKE SA %s %s %s", _spis(sa), why, _describe(sa))

    def _cancel_timer(self, sa: IkeSa) -> None:
        timer = self._timers.pop((sa.spi_i, sa.spi_r), None)
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _life(self, sa: IkeSa, lifetimes: Lifetimes) -> None:
        """Rekey ``sa`` before its lifetime ends; delete it at the end if that failed."""
        jitter = int.from_bytes(self._random(4), "big") / 2**32 * lifetimes.jitter
        loop = asyncio.get_running_loop()
        end = loop.time() + lifetimes.lifetime
        await asyncio.sleep(lifetimes.rekey_time - jitter)
        while (remaining := end - loop.time()) > 0:
            session = self._sessions.get((sa.spi_i, sa.spi_r))
            if session is None or session.state is not SessionState.ESTABLISHED:
                return
            try:
                await self.rekey(sa, timeout=min(EXCHANGE_TIMEOUT, remaining))
                return
            except OtwampError as error:
                LOG.warning("rekey of IKE SA %s with %s failed: %s", _spis(sa), sa.peer, error)
            # Rekey refused or a request outstanding: try again, a little later.
            await asyncio.sleep(min(max(1.0, lifetimes.jitter), max(0.0, end - loop.time())))
        try:
            await self.delete(sa, timeout=min(EXCHANGE_TIMEOUT, lifetimes.lifetime))
        except OtwampError as error:
            self._drop(sa, f"expired ({error})")

    def _promote(self, spi_i: bytes, address: Address) -> IkeSession:
        """Move a finished handshake's session to the session table."""
        self._born.pop((spi_i, address), None)
        machine = self._initiators.pop(spi_i, None) or self._responders.pop((spi_i, address))
        assert machine.session is not None
        return machine.session

    def _forget(self, spi_i: bytes, address: Address) -> None:
        self._initiators.pop(spi_i, None)
        self._responders.pop((spi_i, address), None)
        self._born.pop((spi_i, address), None)

    def _session(self, sa: IkeSa) -> IkeSession:
        session = self._sessions.get((sa.spi_i, sa.spi_r))
        if session is None:
            raise NegotiationError(f"no established IKE SA {_spis(sa)} with {sa.peer}")
        return session

    async def _exchange(
        self,
        spi_i: bytes,
        request: bytes,
        pending: Callable[[], bytes | None],
        peer: Address,
        timeout: float,
    ) -> Event:
        """Send ``request``, retransmit what ``pending`` returns, and await the next event."""
        outcome: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._outcomes[spi_i] = outcome
        self._send(request, peer)
        try:
            return await asyncio.wait_for(self._retransmit(outcome, pending, peer), timeout)
        except TimeoutError:
            self._forget(spi_i, peer)
            raise NegotiationError(f"no answer from {peer} within {timeout} s") from None
        finally:
            del self._outcomes[spi_i]

    async def _retransmit(
        self, outcome: asyncio.Future[Event], pending: Callable[[], bytes | None], peer: Address
    ) -> Event:
        for delay in RETRANSMIT_DELAYS:
            done, _ = await asyncio.wait({outcome}, timeout=delay)
            if done:
                break
            request = pending()
            if request is not None:
                self._send(request, peer)
        return await outcome

    def _send(self, message: bytes, address: Address) -> None:
        if self._transport is None:
            raise NegotiationError("the IKE daemon is not started")
        marked = needs_marker(self._local[1], address[1])
        self._transport.sendto(frame(message, marked), address)


def _spis(sa: IkeSa) -> str:
    return f"{sa.spi_i.hex()}/{sa.spi_r.hex()}"


def _describe(sa: IkeSa) -> str:
    """Peer, IDs, algorithms and role of an SA for the log; never its key."""
    role = "initiator" if sa.initiator else "responder"
    return (
        f"with {sa.peer[0]}:{sa.peer[1]}, {sa.local_id} <-> {sa.remote_id}, {sa.suite}, "
        f"we are {role}"
    )


def _reason(event: Event) -> str:
    return event.reason if isinstance(event, Failed | RekeyFailed) else type(event).__name__


class _Protocol(asyncio.DatagramProtocol):
    """Hands datagrams to the daemon."""

    def __init__(self, daemon: IkeDaemon) -> None:
        self._daemon = daemon

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        host, port = addr[0], addr[1]
        self._daemon.datagram_received(data, (str(host), port))
