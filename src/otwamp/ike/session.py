"""An established IKE SA: protected exchanges, Message IDs and timers (RFC 7296 §1.3-2.8)."""

from enum import Enum, auto

from otwamp.control.server_policy import fmt
from otwamp.errors import ProtocolError
from otwamp.ike.crypto.entropy import RandomSource
from otwamp.ike.errors import StateError
from otwamp.ike.events import (
    Deleted,
    Event,
    Output,
    Redundant,
    Rekeyed,
    RekeyFailed,
    TimedOut,
)
from otwamp.ike.handshake import header_flags
from otwamp.ike.keys import SaKeys
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import ExchangeType, NotifyType, ProtocolId, notify_name
from otwamp.ike.rekey import PendingRekey, answer_rekey, finish_rekey, start_rekey
from otwamp.ike.sa import IkeSa
from otwamp.ike.timers import EXCHANGE_TIMEOUT, Lifetime, Lifetimes, Retransmission
from otwamp.ike.wire.header import IkeHeader
from otwamp.ike.wire.message import Message, Payload
from otwamp.ike.wire.payloads import Delete, Nonce, Notify

# After IKE_SA_INIT (0) and IKE_AUTH (1) the initiator's next request is 2 (RFC 7296 §2.2).
FIRST_REQUEST_AFTER_AUTH = 2


class SessionState(Enum):
    """Life of an established IKE SA (RFC 7296 §1.4.1)."""

    ESTABLISHED = auto()
    DELETING = auto()
    CLOSED = auto()


class IkeSession:
    """Sends and answers protected requests on one established IKE SA, with a window of one.

    After a rekey, ``successor`` is the session of the new IKE SA (RFC 7296 §2.18). Its
    timers (retransmission, and the lifetime once ``schedule`` set it) run on the ``now`` the
    driver passes to ``get_timer`` / ``handle_timer``.
    """

    def __init__(
        self,
        keys: SaKeys,
        sa: IkeSa,
        suites: tuple[Suite, ...],
        random: RandomSource,
        *,
        next_request: int = 0,
        peer_next_request: int = 0,
        last_response: tuple[int, bytes] | None = None,
    ) -> None:
        self.sa = sa
        self.state = SessionState.ESTABLISHED
        self.successor: IkeSession | None = None
        self.pending_request: bytes | None = None
        self._keys = keys
        self._suites = suites
        self._random = random
        self._outbound = keys.protection(from_initiator=sa.initiator)
        self._inbound = keys.protection(from_initiator=not sa.initiator)
        self._next_request = next_request
        self._peer_next_request = peer_next_request
        self._last_response = last_response
        self._pending_id: int | None = None
        self._rekey: PendingRekey | None = None
        self._retransmission: Retransmission | None = None
        self._lifetime: Lifetime | None = None
        self._expiring = False  # the delete in flight is the end of the lifetime
        # The SAs that replaced this one: (lowest nonce, SA, created by us) (RFC 7296 §2.8.2).
        self._replacements: list[tuple[bytes, IkeSa, bool]] = []

    @classmethod
    def after_auth(
        cls,
        keys: SaKeys,
        sa: IkeSa,
        suites: tuple[Suite, ...],
        random: RandomSource,
        last_response: tuple[int, bytes] | None = None,
    ) -> "IkeSession":
        """The session that IKE_SA_INIT and IKE_AUTH (Message IDs 0 and 1) set up."""
        after = FIRST_REQUEST_AFTER_AUTH
        return cls(
            keys,
            sa,
            suites,
            random,
            next_request=after if sa.initiator else 0,
            peer_next_request=0 if sa.initiator else after,
            last_response=last_response,
        )

    def schedule(self, lifetimes: Lifetimes, now: float) -> None:
        """Rekey, or else delete, this SA as ``lifetimes`` say, counted from ``now`` (§2.8)."""
        fraction = int.from_bytes(self._random(4), "big") / 2**32
        self._lifetime = Lifetime.start(lifetimes, now, fraction)

    def delete(self, now: float, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        """An INFORMATIONAL request deleting this IKE SA (RFC 7296 §1.4.1)."""
        datagram = self._request(
            ExchangeType.INFORMATIONAL, (Delete(ProtocolId.IKE),), now, timeout
        )
        self.state = SessionState.DELETING
        return datagram

    def liveness(self, now: float, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        """An empty INFORMATIONAL request: a liveness check (RFC 7296 §2.4)."""
        return self._request(ExchangeType.INFORMATIONAL, (), now, timeout)

    def rekey(self, now: float, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        """A CREATE_CHILD_SA request rekeying this IKE SA (RFC 7296 §1.3.2)."""
        pending, payloads = start_rekey(self._suites, self._random)
        datagram = self._request(ExchangeType.CREATE_CHILD_SA, payloads, now, timeout)
        self._rekey = pending
        return datagram

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due, or None."""
        if self.state is SessionState.CLOSED:
            return None
        times = []
        if self._retransmission is not None:
            times.append(self._retransmission.get_timer())
        life = self._lifetime
        if life is not None and self.state is SessionState.ESTABLISHED:
            # A rekey waits for the outstanding request; the end of the lifetime does not.
            idle = self._pending_id is None
            times.append(min(life.rekey_at, life.expire_at) if idle else life.expire_at)
        return min(times, default=None)

    def handle_timer(self, now: float) -> Output:
        """Resend or give up our request; rekey, or delete at the end of the lifetime."""
        output = Output()
        if self._retransmission is not None and now >= self._retransmission.get_timer():
            output += self._on_retransmission_timer(now, self._retransmission)
        if self._lifetime is not None and self.state is SessionState.ESTABLISHED:
            output += self._on_lifetime_timer(now, self._lifetime)
        return output

    def _on_retransmission_timer(self, now: float, timer: Retransmission) -> Output:
        """RFC 7296 §2.1: resend the same request; past the deadline, give it up (§2.4)."""
        if now < timer.deadline:
            if timer.resend_due(now) and self.pending_request is not None:
                return Output((self.pending_request,))
            return Output()
        reason = f"no answer from {fmt(*self.sa.peer)} within {timer.timeout:g} s"
        self._pending_id = self.pending_request = self._retransmission = None
        rekey, self._rekey = self._rekey, None
        if rekey is not None:  # the SA stays; the lifetime tries again later
            if self._lifetime is not None:
                self._lifetime.retry_later(now)
            return Output(events=(RekeyFailed(reason),))
        if self._expiring:
            why = f"expired ({reason})"
        elif self.state is SessionState.DELETING:
            why = f"deleted without answer ({reason})"
        else:
            why = f"dead ({reason})"  # RFC 7296 §2.4: an unanswered request ends the SA
        return Output(events=(TimedOut(reason), self._close(why)))

    def _on_lifetime_timer(self, now: float, life: Lifetime) -> Output:
        if now >= life.expire_at:
            self._lifetime = None
            if self._pending_id is not None:  # no window left for a Delete: just forget it
                return Output(events=(self._close("expired"),))
            self._expiring = True
            return Output((self.delete(now, life.delete_timeout),))
        if now >= life.rekey_at and self._pending_id is None:
            return Output((self.rekey(now, min(EXCHANGE_TIMEOUT, life.expire_at - now)),))
        return Output()

    def receive(self, data: bytes, now: float) -> Output:
        """Handle a datagram for this SA; ProtocolError means "drop it"."""
        if self.state is SessionState.CLOSED:
            raise ProtocolError("the IKE SA is closed", field="SPI", section="RFC 7296 §1.4.1")
        header = IkeHeader.decode(data)
        if (header.spi_i, header.spi_r) != (self.sa.spi_i, self.sa.spi_r):
            raise ProtocolError("not this IKE SA", field="SPI", section="RFC 7296 §3.1")
        if header.from_initiator == self.sa.initiator:
            raise ProtocolError("our own role's I flag", field="Flags", section="RFC 7296 §3.1")
        if header.is_response:
            return self._on_response(data, header, now)
        return self._on_request(data, header, now)

    def _request(
        self, exchange: int, payloads: tuple[Payload, ...], now: float, timeout: float
    ) -> bytes:
        if self.state is not SessionState.ESTABLISHED or self._pending_id is not None:
            raise StateError("a request is outstanding or the IKE SA is going away")
        self._pending_id = self._next_request
        self._next_request += 1
        self.pending_request = self._seal(exchange, self._pending_id, payloads, False)
        self._retransmission = Retransmission(now, now + timeout)
        return self.pending_request

    def _seal(
        self, exchange: int, message_id: int, payloads: tuple[Payload, ...], response: bool
    ) -> bytes:
        message = Message(
            self.sa.spi_i,
            self.sa.spi_r,
            exchange,
            header_flags(self.sa.initiator, response),
            message_id,
            payloads,
        )
        return self._outbound.seal(message, self._random)

    def _on_response(self, data: bytes, header: IkeHeader, now: float) -> Output:
        if header.message_id != self._pending_id:
            raise ProtocolError(
                f"no request {header.message_id} outstanding",
                field="Message ID",
                section="RFC 7296 §2.2",
            )
        response = self._inbound.open(data)
        self._pending_id = self.pending_request = self._retransmission = None
        if self.state is SessionState.DELETING:
            return Output(events=(self._close("expired" if self._expiring else "deleted"),))
        pending, self._rekey = self._rekey, None
        if pending is None:
            return Output()
        error = response.error_notify()
        if error is not None:
            if self._lifetime is not None:
                self._lifetime.retry_later(now)
            return Output(events=(RekeyFailed(f"rekey refused with {notify_name(error)}", error),))
        keys = finish_rekey(self._keys, pending, response)
        nonce = response.find(Nonce)
        assert nonce is not None  # finish_rekey checked it
        new = self._succeed(keys, True, now, min(pending.nonce, nonce.data))
        # RFC 7296 §2.18: the rekey's initiator then deletes the old IKE SA.
        return Output((self.delete(now),), (Rekeyed(self.sa, new), *self._collision()))

    def _on_request(self, data: bytes, header: IkeHeader, now: float) -> Output:
        if self._last_response is not None and header.message_id == self._last_response[0]:
            # RFC 7296 §2.1: a retransmitted request gets the same response again.
            return Output((self._last_response[1],))
        if header.message_id != self._peer_next_request:
            raise ProtocolError(
                f"{header.message_id}, expected {self._peer_next_request}",
                field="Message ID",
                section="RFC 7296 §2.3",
            )
        request = self._inbound.open(data)
        self._peer_next_request += 1
        payloads, events = self._answer(request, now)
        response = self._seal(request.exchange_type, header.message_id, payloads, True)
        self._last_response = (header.message_id, response)
        return Output((response,), events)

    def _answer(
        self, request: Message, now: float
    ) -> tuple[tuple[Payload, ...], tuple[Event, ...]]:
        if request.exchange_type == ExchangeType.INFORMATIONAL:
            deletes = [d for d in request.payloads if isinstance(d, Delete)]
            if any(d.protocol_id == ProtocolId.IKE for d in deletes):
                # RFC 7296 §1.4.1: answer with an empty INFORMATIONAL and forget the SA.
                return (), (self._close(),)
            return (), ()
        if request.exchange_type == ExchangeType.CREATE_CHILD_SA:
            if self.state is SessionState.DELETING:
                # RFC 7296 §2.25.2: a rekey of an IKE SA we are closing.
                return (Notify(NotifyType.TEMPORARY_FAILURE),), ()
            payloads, keys = answer_rekey(self._keys, request, self._suites, self._random)
            if keys is None:
                return payloads, ()
            nonces = [p.data for p in (request.find(Nonce), *payloads) if isinstance(p, Nonce)]
            new = self._succeed(keys, False, now, min(nonces))
            return payloads, (Rekeyed(self.sa, new), *self._collision())
        raise ProtocolError(
            f"exchange {request.exchange_type} on an established SA",
            field="Exchange Type",
            section="RFC 7296 §1.4",
        )

    def _collision(self) -> tuple[Event, ...]:
        """After a simultaneous rekey, the new SA with the lowest nonce goes (RFC 7296 §2.8.2).

        Its creator deletes it; both ends see the same four nonces and agree which it is.
        """
        if len(self._replacements) < 2:
            return ()
        _, loser, ours = min(self._replacements, key=lambda r: r[0])
        return (Redundant(loser),) if ours else ()

    def _succeed(self, keys: SaKeys, initiator: bool, now: float, nonce: bytes) -> IkeSa:
        """Start the new SA's session; its rekey initiator is its original initiator (§1.3.2)."""
        old = self.sa
        new = keys.record(
            peer=old.peer,
            local_id=old.local_id,
            remote_id=old.remote_id,
            initiator=initiator,
            now=now,
        )
        self.successor = IkeSession(keys, new, self._suites, self._random)
        self._replacements.append((nonce, new, initiator))
        self._lifetime = None  # the successor has its own
        return new

    def _close(self, why: str = "deleted") -> Deleted:
        self.state = SessionState.CLOSED
        self._retransmission = self._lifetime = None
        return Deleted(self.sa.spi_i, self.sa.spi_r, why)
