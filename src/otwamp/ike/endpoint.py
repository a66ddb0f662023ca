"""Every handshake and IKE SA of one local address: routing, limits, timers (sans-I/O, D7-D8).

Feed it IKE messages with ``receive(message, address, now)`` and start exchanges with
``initiate``, ``rekey`` and ``delete``; send what ``datagrams_to_send()`` returns, act on
``events()``, and call ``handle_timer(now)`` at ``get_timer()``. ``now`` is wall-clock time
in seconds (certificate validity is checked against it); nothing here reads a clock.
"""

import logging

from otwamp.control.server_policy import fmt
from otwamp.errors import OtwampError, ProtocolError
from otwamp.ike.admission import EVICTED, HalfOpenLimits, HalfOpenTable, Key, source_of
from otwamp.ike.cookies import CookieGuard
from otwamp.ike.crypto.entropy import RandomSource
from otwamp.ike.database import SaDatabase
from otwamp.ike.errors import NegotiationError
from otwamp.ike.events import (
    Abandoned,
    Deleted,
    Established,
    Event,
    Failed,
    Output,
    Redundant,
    Rekeyed,
    RekeyFailed,
    TimedOut,
)
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.registry import ExchangeType
from otwamp.ike.responder import Responder, ResponderState
from otwamp.ike.sa import Address, IkeSa
from otwamp.ike.session import IkeSession
from otwamp.ike.throttle import ThrottledLog
from otwamp.ike.timers import EXCHANGE_TIMEOUT, Lifetimes
from otwamp.ike.wire.header import IkeHeader
from otwamp.ike.wire.identity import Identity

LOG = logging.getLogger("otwamp.ike")
_SECRET_LEN = 32
Machine = Initiator | Responder | IkeSession


class IkeEndpoint:
    """Our initiators, responders and established sessions, and the SA database."""

    def __init__(
        self,
        policy: Policy,
        random: RandomSource,
        *,
        limits: HalfOpenLimits | None = None,
        lifetimes: Lifetimes | None = None,
    ) -> None:
        self.database = SaDatabase()
        self._policy = policy
        self._random = random
        self._cookies = CookieGuard(random(_SECRET_LEN))
        self._half_open = HalfOpenTable(limits or HalfOpenLimits())
        self._flood_log = ThrottledLog(LOG)
        self._lifetimes = lifetimes
        self._initiators: dict[bytes, Initiator] = {}
        self._responders: dict[Key, Responder] = {}
        self._sessions: dict[tuple[bytes, bytes], IkeSession] = {}
        self._outgoing: list[tuple[bytes, Address]] = []
        self._events: list[tuple[bytes, Event]] = []
        self._cookies_on = False

    @property
    def half_open(self) -> int:
        """How many half-open IKE SAs we answer as responder (RFC 7296 §2.6)."""
        return len(self._half_open)

    def handshaking(self, spi_i: bytes) -> bool:
        """Whether we are still setting up, as initiator, the IKE SA of ``spi_i``."""
        return spi_i in self._initiators

    def initiate(self, remote_id: Identity, peer: Address, now: float, timeout: float) -> bytes:
        """Start setting up an IKE SA with ``peer``; its events carry the returned SPIi."""
        initiator = Initiator(self._policy, remote_id, peer, self._random)
        self._initiators[initiator.spi_i] = initiator
        LOG.debug(
            "initiating IKE SA %s with %s at %s", initiator.spi_i.hex(), remote_id, fmt(*peer)
        )
        self._outgoing.append((initiator.start(now, timeout), peer))
        return initiator.spi_i

    def rekey(self, sa: IkeSa, now: float, timeout: float = EXCHANGE_TIMEOUT) -> None:
        """Start replacing ``sa`` by a new IKE SA (RFC 7296 §2.18)."""
        self._outgoing.append((self._session(sa).rekey(now, timeout), sa.peer))

    def delete(self, sa: IkeSa, now: float, timeout: float = EXCHANGE_TIMEOUT) -> None:
        """Start deleting ``sa`` with an INFORMATIONAL exchange (RFC 7296 §1.4.1)."""
        self._outgoing.append((self._session(sa).delete(now, timeout), sa.peer))

    def drop(self, sa: IkeSa, why: str) -> None:
        """Forget an SA that is gone (sessions already using its key keep it, D5)."""
        self.database.remove(sa.spi_i, sa.spi_r)
        self._sessions.pop((sa.spi_i, sa.spi_r), None)
        LOG.info("IKE SA %s %s %s", spis(sa), why, describe(sa))

    def receive(self, message: bytes, address: Address, now: float) -> None:
        """Hand an IKE message to its machine; ProtocolError means "drop it".

        An IKE_SA_INIT beyond the half-open limits is dropped without a word or any state
        (RFC 7296 §2.6); the log counts such drops (ThrottledLog).
        """
        header = IkeHeader.decode(message)
        machine = self._sessions.get((header.spi_i, header.spi_r)) or self._handshake(
            header, address, now
        )
        if machine is None:
            return
        try:
            self._act(header.spi_i, address, machine.receive(message, now), now)
        finally:
            self._settle((header.spi_i, address), now)

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due, or None."""
        timers = (m.get_timer() for _, _, m in self._machines())
        return min(
            (t for t in (*timers, self._flood_log.get_timer()) if t is not None), default=None
        )

    def handle_timer(self, now: float) -> None:
        """Run every machine's timer that is due at ``now``."""
        self._flood_log.handle_timer(now)
        for spi_i, address, machine in self._machines():
            due = machine.get_timer()
            if due is not None and due <= now:
                self._act(spi_i, address, machine.handle_timer(now), now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        """IKE messages to send, with their destinations, since the last call."""
        outgoing, self._outgoing = self._outgoing, []
        return outgoing

    def events(self) -> list[tuple[bytes, Event]]:
        """What happened since the last call, each with the SPIi of the exchange it ends."""
        events, self._events = self._events, []
        return events

    def _machines(self) -> list[tuple[bytes, Address, Machine]]:
        return [
            *((spi_i, i.peer, i) for spi_i, i in self._initiators.items()),
            *((spi_i, address, r) for (spi_i, address), r in self._responders.items()),
            *((s.sa.spi_i, s.sa.peer, s) for s in self._sessions.values()),
        ]

    def _handshake(
        self, header: IkeHeader, address: Address, now: float
    ) -> Initiator | Responder | None:
        """The machine for a message of no established SA; None for an IKE_SA_INIT refused."""
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
        source = source_of(address)
        refusal = self._half_open.refusal(source)
        if refusal is not None:
            self._flood_log.note(refusal, source, now)
            return None
        self._log_cookie_switch()
        cookies = self._cookies if self._half_open.cookies_required(source) else None
        responder = Responder(self._policy, address, self._random, cookies)
        self._responders[(header.spi_i, address)] = responder
        return responder

    def _log_cookie_switch(self) -> None:
        """Log when the global COOKIE threshold is crossed, either way (RFC 7296 §2.6)."""
        cookies_on = len(self._half_open) >= self._half_open.limits.cookie_threshold
        if cookies_on != self._cookies_on:
            self._cookies_on = cookies_on
            LOG.warning(
                "%d half-open IKE SAs: COOKIEs %s",
                len(self._half_open),
                "required (RFC 7296 §2.6)" if cookies_on else "no longer required",
            )

    def _settle(self, key: Key, now: float) -> None:
        """After a new responder's first message: count it as half-open, or forget it.

        A COOKIE or INVALID_KE_PAYLOAD answer, or a malformed request, keeps no state
        (RFC 7296 §2.6); an answered IKE_SA_INIT may evict the biggest holder's oldest.
        """
        responder = self._responders.get(key)
        if responder is None or key in self._half_open:
            return
        if responder.state is not ResponderState.INIT_DONE:
            self._forget(*key)
            return
        evicted = self._half_open.add(key)
        if evicted is not None:
            self._responders.pop(evicted)
            self._flood_log.note(EVICTED, source_of(evicted[1]), now)
            self._events.append((evicted[0], Abandoned("evicted: max_half_open reached")))

    def _act(self, spi_i: bytes, address: Address, output: Output, now: float) -> None:
        """Queue a machine's datagrams and carry out its events."""
        self._outgoing.extend((datagram, address) for datagram in output.datagrams)
        for event in output.events:
            self._on_event(spi_i, address, event, now)
            self._events.append((spi_i, event))

    def _on_event(self, spi_i: bytes, address: Address, event: Event, now: float) -> None:
        if isinstance(event, Established):
            self._established(event.sa, self._promote(spi_i, address), now)
            LOG.info("IKE SA %s established %s", spis(event.sa), describe(event.sa))
        elif isinstance(event, Rekeyed):
            old = self._sessions[(event.old.spi_i, event.old.spi_r)]
            assert old.successor is not None
            self._established(event.new, old.successor, now)
            LOG.info(
                "IKE SA %s rekeyed to %s %s", spis(event.old), spis(event.new), describe(event.new)
            )
        elif isinstance(event, Failed):
            LOG.warning("IKE SA with %s failed: %s", fmt(*address), event.reason)
            self._forget(spi_i, address)
        elif isinstance(event, Abandoned):
            LOG.debug(
                "half-open IKE SA %s from %s expired: %s", spi_i.hex(), fmt(*address), event.reason
            )
            self._forget(spi_i, address)
        elif isinstance(event, RekeyFailed):
            LOG.warning(
                "rekey of IKE SA %s with %s failed: %s", spi_i.hex(), fmt(*address), event.reason
            )
        elif isinstance(event, Redundant):
            LOG.info(
                "IKE SA %s is redundant after a simultaneous rekey (RFC 7296 §2.8.2): deleting it",
                spis(event.sa),
            )
            self._delete_quietly(event.sa, now)
        elif isinstance(event, Deleted):
            sa = self.database.by_spis(event.spi_i, event.spi_r)
            if sa is not None:
                self.drop(sa, event.why)
        elif isinstance(event, TimedOut):
            LOG.debug("IKE SA %s: %s", spi_i.hex(), event.reason)

    def _established(self, sa: IkeSa, session: IkeSession, now: float) -> None:
        self.database.add(sa)
        self._sessions[(sa.spi_i, sa.spi_r)] = session
        if self._lifetimes is not None:
            session.schedule(self._lifetimes, now)

    def _delete_quietly(self, sa: IkeSa, now: float) -> None:
        """Start deleting ``sa``; a failure to start is logged, not raised."""
        try:
            self.delete(sa, now)
        except OtwampError as error:
            LOG.warning("%s", error)

    def _promote(self, spi_i: bytes, address: Address) -> IkeSession:
        """Move a finished handshake's session to the session table."""
        machine = self._initiators.pop(spi_i, None) or self._responders.pop((spi_i, address))
        self._half_open.remove((spi_i, address))
        assert machine.session is not None
        return machine.session

    def _forget(self, spi_i: bytes, address: Address) -> None:
        self._initiators.pop(spi_i, None)
        self._responders.pop((spi_i, address), None)
        self._half_open.remove((spi_i, address))

    def _session(self, sa: IkeSa) -> IkeSession:
        session = self._sessions.get((sa.spi_i, sa.spi_r))
        if session is None:
            raise NegotiationError(f"no established IKE SA {spis(sa)} with {fmt(*sa.peer)}")
        return session


def spis(sa: IkeSa) -> str:
    """SPIi/SPIr in hex, for the log."""
    return f"{sa.spi_i.hex()}/{sa.spi_r.hex()}"


def describe(sa: IkeSa) -> str:
    """Peer, IDs, algorithms and role of an SA for the log; never its key."""
    role = "initiator" if sa.initiator else "responder"
    return f"with {fmt(*sa.peer)}, {sa.local_id} <-> {sa.remote_id}, {sa.suite}, we are {role}"
