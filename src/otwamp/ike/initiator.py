"""The IKE SA initiator: IKE_SA_INIT, then IKE_AUTH without a Child SA.

IKE_SA_INIT (RFC 7296 §1.2) answers a COOKIE (§2.6) or INVALID_KE_PAYLOAD (§1.2) by
retrying; IKE_AUTH is childless (RFC 6023) and authenticated by a PSK (RFC 7296 §2.15) or
by certificates with digital signatures (RFC 7427), whichever the policy holds.
"""

from enum import Enum, auto

from otwamp.control.server_policy import fmt
from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.ike.authentication import (
    announced_hashes,
    authenticate_peer,
    hash_announcement,
    local_auth,
)
from otwamp.ike.crypto import dh
from otwamp.ike.crypto.entropy import RandomSource, system_random
from otwamp.ike.events import Established, Failed, Output
from otwamp.ike.handshake import NONCE_LEN, SPI_LEN, Handshake, header_flags
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import ExchangeType, NotifyType, notify_name
from otwamp.ike.sa import Address
from otwamp.ike.session import IkeSession
from otwamp.ike.timers import EXCHANGE_TIMEOUT, Retransmission
from otwamp.ike.wire.identity import Identity, IdInitiator, IdResponder
from otwamp.ike.wire.message import Message, Payload
from otwamp.ike.wire.payloads import Authentication, KeyExchange, Nonce, Notify
from otwamp.ike.wire.sa import SecurityAssociation

_ZERO_SPI = bytes(SPI_LEN)


class InitiatorState(Enum):
    """Where the initiator is in IKE_SA_INIT and IKE_AUTH."""

    INIT_SENT = auto()
    AUTH_SENT = auto()
    ESTABLISHED = auto()
    FAILED = auto()


class Initiator:
    """Sets up one IKE SA with ``remote_id`` at ``peer``: feed it datagrams, send its output."""

    def __init__(
        self,
        policy: Policy,
        remote_id: Identity,
        peer: Address,
        random: RandomSource = system_random,
    ) -> None:
        if policy.credentials is None and remote_id not in policy.psks:
            raise ValueError(f"neither credentials nor a PSK for {remote_id}")
        self._policy = policy
        self._remote_id = remote_id
        self._peer = peer
        self._random = random
        self._spi_i = random(SPI_LEN)
        self._ni = random(NONCE_LEN)
        self._dh = dh.generate(policy.suites[0].dh_group, random)
        self._cookie: Notify | None = None
        self._request = b""
        self._variants = 0  # IKE_SA_INIT requests of different content sent for this SA
        self._restarted = False
        self._handshake: Handshake | None = None
        self.state = InitiatorState.INIT_SENT
        self.session: IkeSession | None = None
        # The request we retransmit until its response arrives (RFC 7296 §2.1).
        self.pending_request: bytes | None = None
        self._retransmission: Retransmission | None = None

    @property
    def peer(self) -> Address:
        """The responder's address."""
        return self._peer

    @property
    def spi_i(self) -> bytes:
        """Our SPI, which names this IKE SA from the start (RFC 7296 §2.6)."""
        return self._spi_i

    def start(self, now: float, timeout: float = EXCHANGE_TIMEOUT) -> bytes:
        """The IKE_SA_INIT request (RFC 7296 §1.2); the SA fails unless up within ``timeout``."""
        self._retransmission = Retransmission(now, now + timeout)
        return self._init_request(now)

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due, or None."""
        if self.session is not None:
            return self.session.get_timer()
        return None if self._retransmission is None else self._retransmission.get_timer()

    def handle_timer(self, now: float) -> Output:
        """Resend the outstanding request (RFC 7296 §2.1), or fail at the deadline."""
        if self.session is not None:
            return self.session.handle_timer(now)
        timer = self._retransmission
        if timer is None or now < timer.get_timer():
            return Output()
        if now >= timer.deadline:
            return self._fail(f"no answer from {fmt(*self._peer)} within {timer.timeout:g} s")
        if timer.resend_due(now) and self.pending_request is not None:
            return Output((self.pending_request,))
        return Output()

    def _init_request(self, now: float) -> bytes:
        """IKE_SA_INIT, again with a COOKIE or another group; resent on its own schedule."""
        if self._retransmission is not None:
            self._retransmission = self._retransmission.restarted(now)
        payloads: tuple[Payload, ...] = (
            SecurityAssociation(
                tuple(s.proposal(i + 1) for i, s in enumerate(self._policy.suites))
            ),
            KeyExchange(self._dh.group, self._dh.public_value),
            Nonce(self._ni),
            hash_announcement(),
        )
        if self._cookie is not None:
            payloads = (self._cookie, *payloads)  # RFC 7296 §2.6: COOKIE comes first.
        message = Message(
            self._spi_i, _ZERO_SPI, ExchangeType.IKE_SA_INIT, header_flags(True, False), 0, payloads
        )
        request = message.encode()
        self._variants += request != self._request
        self._request = self.pending_request = request
        return self._request

    def receive(self, data: bytes, now: float) -> Output:
        """Handle a datagram from the responder; ProtocolError means "drop it"."""
        if self.session is not None:
            return self.session.receive(data, now)
        response = _decode_response(data, self._spi_i)
        if self.state is InitiatorState.INIT_SENT and response.message_id == 0:
            return self._on_init_response(response, data, now)
        if self.state is InitiatorState.AUTH_SENT and response.message_id == 1:
            return self._on_auth_response(data, now)
        raise ProtocolError("unexpected response", field="Message ID", section="RFC 7296 §2.2")

    def _on_init_response(self, response: Message, data: bytes, now: float) -> Output:
        cookie = response.notify(NotifyType.COOKIE)
        if cookie is not None:
            self._cookie = cookie
            return Output((self._init_request(now),))
        invalid_ke = response.notify(NotifyType.INVALID_KE_PAYLOAD)
        if invalid_ke is not None:
            return self._retry_with_group(invalid_ke.dh_group, now)
        error = response.error_notify()
        if error is not None:
            return self._fail(f"IKE_SA_INIT refused with {notify_name(error)}", error)
        suite, nr, peer_value = _accepted(response, self._policy.suites, self._dh.group)
        if response.notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED) is None:
            # RFC 6023 §3: an initiator may only omit the Child SA if the responder supports it.
            return self._fail("responder does not support childless IKE SAs")
        self._handshake = Handshake.derive(
            suite,
            self._dh.shared_secret(peer_value),
            spi_i=self._spi_i,
            spi_r=response.spi_r,
            ni=self._ni,
            nr=nr,
            init_request=self._request,
            init_response=data,
        )
        try:
            self.pending_request = self._auth_request(self._handshake, announced_hashes(response))
        except AuthenticationError as error:  # e.g. no signature hash in common (RFC 7427 §4)
            return self._fail(str(error))
        self.state = InitiatorState.AUTH_SENT
        if self._retransmission is not None:
            self._retransmission = self._retransmission.restarted(now)
        return Output((self.pending_request,))

    def _retry_with_group(self, group: int, now: float) -> Output:
        """RFC 7296 §1.2, §2.6.1: same SPIi, nonce and cookie, new KE in the wanted group."""
        offered = {s.dh_group for s in self._policy.suites}
        if group not in offered or group == self._dh.group:
            return self._fail(f"responder wants group {group}", NotifyType.INVALID_KE_PAYLOAD)
        self._dh = dh.generate(group, self._random)
        return Output((self._init_request(now),))

    def _auth_request(self, handshake: Handshake, peer_hashes: tuple[int, ...]) -> bytes:
        policy = self._policy
        certificates, auth = local_auth(policy, handshake, True, self._remote_id, peer_hashes)
        request = () if policy.trust is None else (policy.trust.certificate_request(),)
        payloads = (
            IdInitiator(policy.local_id),
            *certificates,
            *request,
            IdResponder(self._remote_id),
            auth,
        )
        message = Message(
            handshake.sa.spi_i,
            handshake.sa.spi_r,
            ExchangeType.IKE_AUTH,
            header_flags(True, False),
            1,
            payloads,
        )
        return handshake.sa.protection(from_initiator=True).seal(message, self._random)

    def _on_auth_response(self, data: bytes, now: float) -> Output:
        assert self._handshake is not None
        handshake = self._handshake
        response = handshake.sa.protection(from_initiator=False).open(data)
        id_r = response.find(IdResponder)
        auth = response.find(Authentication)
        if id_r is None or auth is None:
            # RFC 7296 §2.21.2: a refusal carries an error notify instead of IDr and AUTH.
            error = response.error_notify()
            if error is None:
                raise ProtocolError(
                    "IDr or AUTH missing", field="IKE_AUTH", section="RFC 7296 §1.2"
                )
            if error == NotifyType.AUTHENTICATION_FAILED and self._ambiguous():
                return self._restart(now)
            return self._fail(f"IKE_AUTH refused with {notify_name(error)}", error)
        if id_r.identity != self._remote_id:
            return self._fail(f"responder is {id_r.identity}, expected {self._remote_id}")
        try:
            authenticate_peer(self._policy, handshake, response, False, now)
        except AuthenticationError as error:
            return self._fail(str(error), NotifyType.AUTHENTICATION_FAILED)
        sa = handshake.sa.record(
            peer=self._peer,
            local_id=self._policy.local_id,
            remote_id=id_r.identity,
            initiator=True,
            now=now,
        )
        self.session = IkeSession.after_auth(handshake.sa, sa, self._policy.suites, self._random)
        self.state = InitiatorState.ESTABLISHED
        self.pending_request = self._retransmission = None
        return Output(events=(Established(sa),))

    def _ambiguous(self) -> bool:
        """Whether the responder may have answered another IKE_SA_INIT than our last one.

        After a COOKIE or INVALID_KE_PAYLOAD retry (RFC 7296 §2.6, §1.2), a late
        answer to a retransmission of the first request looks like the answer to
        the retry; our AUTH then covers a message the responder did not keep.
        """
        return self._variants > 1 and not self._restarted

    def _restart(self, now: float) -> Output:
        """Set the SA up once more from the start: same SPIi, new nonce and KE, no COOKIE.

        The refused attempt left the responder nothing: it forgets an SA whose
        IKE_AUTH failed (RFC 7296 §2.21.2).
        """
        self._restarted = True
        self._ni = self._random(NONCE_LEN)
        self._dh = dh.generate(self._dh.group, self._random)
        self._cookie = self._handshake = None
        self.state = InitiatorState.INIT_SENT
        return Output((self._init_request(now),))

    def _fail(self, reason: str, notify_type: int | None = None) -> Output:
        self.state = InitiatorState.FAILED
        self.pending_request = self._retransmission = None
        return Output(events=(Failed(reason, notify_type),))


def _decode_response(data: bytes, spi_i: bytes) -> Message:
    message = Message.decode(data)
    if not message.is_response or message.spi_i != spi_i:
        raise ProtocolError("not a response to us", field="Flags", section="RFC 7296 §3.1")
    return message


def _accepted(
    response: Message, suites: tuple[Suite, ...], group: int
) -> tuple[Suite, bytes, bytes]:
    """The suite, Nr and KEr of an IKE_SA_INIT response, checked against what we sent."""
    sa = response.find(SecurityAssociation)
    ke = response.find(KeyExchange)
    nonce = response.find(Nonce)
    if sa is None or ke is None or nonce is None or response.spi_r == _ZERO_SPI:
        raise ProtocolError(
            "SAr1, KEr, Nr or SPIr missing", field="IKE_SA_INIT", section="RFC 7296 §1.2"
        )
    if len(sa.proposals) != 1:
        raise ProtocolError("more than one proposal", field="SAr1", section="RFC 7296 §2.7")
    suite = Suite.from_proposal(sa.proposals[0])
    if suite not in suites or suite.dh_group != group or ke.dh_group != group:
        raise ProtocolError("not what we offered", field="SAr1", section="RFC 7296 §2.7")
    return suite, nonce.data, ke.data
