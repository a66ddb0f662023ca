"""The IKE SA responder: IKE_SA_INIT with cookies, then IKE_AUTH without a Child SA.

IKE_SA_INIT (RFC 7296 §1.2) may demand a COOKIE (§2.6) or another DH group (§1.2); IKE_AUTH
declines any Child SA (RFC 6023) and authenticates the peer by PSK (RFC 7296 §2.15) or by
certificate signature (RFC 7427).
"""

from enum import Enum, auto

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.ike.authentication import (
    announced_hashes,
    authenticate_peer,
    hash_announcement,
    local_auth,
)
from otwamp.ike.cookies import CookieGuard
from otwamp.ike.crypto import dh
from otwamp.ike.crypto.entropy import RandomSource, system_random
from otwamp.ike.events import Abandoned, Established, Failed, Output
from otwamp.ike.handshake import NONCE_LEN, SPI_LEN, Handshake, header_flags
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite, choose
from otwamp.ike.registry import ExchangeType, HeaderFlag, NotifyType
from otwamp.ike.sa import Address
from otwamp.ike.session import IkeSession
from otwamp.ike.timers import HALF_OPEN_LIFETIME
from otwamp.ike.wire.identity import Identity, IdInitiator, IdResponder
from otwamp.ike.wire.message import Message, Payload
from otwamp.ike.wire.payloads import KeyExchange, Nonce, Notify
from otwamp.ike.wire.sa import SecurityAssociation

_ZERO_SPI = bytes(SPI_LEN)


class ResponderState(Enum):
    """Where the responder is in IKE_SA_INIT and IKE_AUTH."""

    IDLE = auto()
    INIT_DONE = auto()
    ESTABLISHED = auto()
    FAILED = auto()


class Responder:
    """Answers one initiator at ``peer``; with ``cookies`` it demands a COOKIE first (§2.6)."""

    def __init__(
        self,
        policy: Policy,
        peer: Address,
        random: RandomSource = system_random,
        cookies: CookieGuard | None = None,
    ) -> None:
        self._policy = policy
        self._peer = peer
        self._random = random
        self._cookies = cookies
        self._handshake: Handshake | None = None
        self._peer_hashes: tuple[int, ...] = ()
        self.state = ResponderState.IDLE
        self.session: IkeSession | None = None
        self._born: float | None = None  # when the first IKE_SA_INIT arrived

    def get_timer(self) -> float | None:
        """When ``handle_timer`` is next due (the half-open state's end), or None."""
        if self.session is not None:
            return self.session.get_timer()
        if self._born is None or self.state not in (ResponderState.IDLE, ResponderState.INIT_DONE):
            return None
        return self._born + HALF_OPEN_LIFETIME

    def handle_timer(self, now: float) -> Output:
        """Give up a handshake still half-open after HALF_OPEN_LIFETIME (RFC 7296 §2.6)."""
        if self.session is not None:
            return self.session.handle_timer(now)
        expiry = self.get_timer()
        if expiry is None or now < expiry:
            return Output()
        self.state = ResponderState.FAILED
        return Output(events=(Abandoned(f"no IKE_AUTH within {HALF_OPEN_LIFETIME:g} s"),))

    def receive(self, data: bytes, now: float) -> Output:
        """Handle a datagram from the initiator; ProtocolError means "drop it"."""
        if self.session is not None:
            return self.session.receive(data, now)
        request = Message.decode(data)
        if self._born is None:
            self._born = now
        if request.is_response or HeaderFlag.INITIATOR not in request.flags:
            raise ProtocolError(
                "not a request from an initiator", field="Flags", section="RFC 7296 §3.1"
            )
        handshake = self._handshake
        if request.exchange_type == ExchangeType.IKE_SA_INIT and request.message_id == 0:
            if handshake is not None and data == handshake.init_request:
                return Output((handshake.init_response,))  # RFC 7296 §2.1: retransmission
            if self.state is ResponderState.IDLE:
                return self._on_init_request(request, data)
        if (
            handshake is not None
            and self.state is ResponderState.INIT_DONE
            and request.exchange_type == ExchangeType.IKE_AUTH
            and request.message_id == 1
            and (request.spi_i, request.spi_r) == (handshake.sa.spi_i, handshake.sa.spi_r)
        ):
            return self._on_auth_request(handshake, data, now)
        raise ProtocolError("unexpected request", field="Exchange Type", section="RFC 7296 §1.2")

    def _on_init_request(self, request: Message, data: bytes) -> Output:
        sa = request.find(SecurityAssociation)
        ke = request.find(KeyExchange)
        nonce = request.find(Nonce)
        if sa is None or ke is None or nonce is None or request.spi_r != _ZERO_SPI:
            raise ProtocolError(
                "SAi1, KEi or Ni missing", field="IKE_SA_INIT", section="RFC 7296 §1.2"
            )
        demand = self._cookie_demand(request, nonce)
        if demand is not None:
            return Output((self._refuse(request, demand),))
        proposal = choose(sa.proposals, self._policy.suites)
        if proposal is None:
            self.state = ResponderState.FAILED
            refusal = self._refuse(request, Notify(NotifyType.NO_PROPOSAL_CHOSEN))
            failed = Failed("no proposal in common", NotifyType.NO_PROPOSAL_CHOSEN)
            return Output((refusal,), (failed,))
        suite = Suite.from_proposal(proposal)
        if ke.dh_group != suite.dh_group:
            # RFC 7296 §1.2: name the group we want; the initiator retries with it.
            return Output((self._refuse(request, Notify.invalid_ke(suite.dh_group)),))
        return self._accept(request, data, suite, SecurityAssociation((proposal,)), ke, nonce)

    def _cookie_demand(self, request: Message, nonce: Nonce) -> Notify | None:
        """The COOKIE to send back when cookies are on and the request lacks a valid one."""
        if self._cookies is None:
            return None
        address = self._peer[0]
        sent = request.notify(NotifyType.COOKIE)
        if sent is not None and self._cookies.valid(sent.data, nonce.data, address, request.spi_i):
            return None
        return Notify(NotifyType.COOKIE, self._cookies.cookie(nonce.data, address, request.spi_i))

    def _accept(
        self,
        request: Message,
        data: bytes,
        suite: Suite,
        sa: SecurityAssociation,
        ke: KeyExchange,
        nonce: Nonce,
    ) -> Output:
        spi_r = self._random(SPI_LEN)
        nr = self._random(NONCE_LEN)
        ours = dh.generate(suite.dh_group, self._random)
        g_ir = ours.shared_secret(ke.data)
        trust = self._policy.trust
        payloads = (
            sa,
            KeyExchange(ours.group, ours.public_value),
            Nonce(nr),
            *(() if trust is None else (trust.certificate_request(),)),
            hash_announcement(),
            Notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED),  # RFC 6023 §3
        )
        flags = header_flags(False, True)
        response = Message(request.spi_i, spi_r, ExchangeType.IKE_SA_INIT, flags, 0, payloads)
        encoded = response.encode()
        self._handshake = Handshake.derive(
            suite,
            g_ir,
            spi_i=request.spi_i,
            spi_r=spi_r,
            ni=nonce.data,
            nr=nr,
            init_request=data,
            init_response=encoded,
        )
        self._peer_hashes = announced_hashes(request)
        self.state = ResponderState.INIT_DONE
        return Output((encoded,))

    def _refuse(self, request: Message, notify: Notify) -> bytes:
        """An IKE_SA_INIT response with only ``notify`` and a zero SPIr (RFC 7296 §2.6)."""
        flags = header_flags(False, True)
        message = Message(request.spi_i, _ZERO_SPI, ExchangeType.IKE_SA_INIT, flags, 0, (notify,))
        return message.encode()

    def _on_auth_request(self, handshake: Handshake, data: bytes, now: float) -> Output:
        request = handshake.sa.protection(from_initiator=True).open(data)
        id_i = request.find(IdInitiator)
        if id_i is None:
            raise ProtocolError("IDi missing", field="IKE_AUTH", section="RFC 7296 §1.2")
        local_id = self._policy.local_id
        try:
            _check_wanted_identity(request, local_id)
            peer_id = authenticate_peer(self._policy, handshake, request, True, now)
            certificates, auth = local_auth(
                self._policy, handshake, False, peer_id, self._peer_hashes
            )
        except AuthenticationError as error:
            # RFC 7296 §2.21.2: the protected response carries AUTHENTICATION_FAILED only.
            self.state = ResponderState.FAILED
            refusal = self._auth_response(handshake, (Notify(NotifyType.AUTHENTICATION_FAILED),))
            failed = Failed(f"{id_i.identity}: {error}", NotifyType.AUTHENTICATION_FAILED)
            return Output((refusal,), (failed,))
        payloads: tuple[Payload, ...] = (IdResponder(local_id), *certificates, auth)
        if request.find(SecurityAssociation) is not None:
            # RFC 7296 §1.2 (and RFC 6023): decline the Child SA, keep the IKE SA.
            payloads = (*payloads, Notify(NotifyType.NO_PROPOSAL_CHOSEN))
        response = self._auth_response(handshake, payloads)
        sa = handshake.sa.record(
            peer=self._peer, local_id=local_id, remote_id=peer_id, initiator=False, now=now
        )
        self.session = IkeSession.after_auth(
            handshake.sa, sa, self._policy.suites, self._random, last_response=(1, response)
        )
        self.state = ResponderState.ESTABLISHED
        return Output((response,), (Established(sa),))

    def _auth_response(self, handshake: Handshake, payloads: tuple[Payload, ...]) -> bytes:
        message = Message(
            handshake.sa.spi_i,
            handshake.sa.spi_r,
            ExchangeType.IKE_AUTH,
            header_flags(False, True),
            1,
            payloads,
        )
        return handshake.sa.protection(from_initiator=False).seal(message, self._random)


def _check_wanted_identity(request: Message, local_id: Identity) -> None:
    """Refuse an initiator that asks, with IDr, for someone else (RFC 7296 §3.5)."""
    wanted = request.find(IdResponder)
    if wanted is not None and wanted.identity != local_id:
        raise AuthenticationError(
            f"initiator asked for {wanted.identity}", field="IDr", section="RFC 7296 §3.5"
        )
