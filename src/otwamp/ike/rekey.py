"""Rekeying the IKE SA with CREATE_CHILD_SA {SA, Ni, KEi} (RFC 7296 §1.3.2, §2.18)."""

from dataclasses import dataclass, field, replace

from otwamp.errors import ProtocolError
from otwamp.ike.crypto import dh
from otwamp.ike.crypto.entropy import RandomSource
from otwamp.ike.handshake import NONCE_LEN, SPI_LEN
from otwamp.ike.keys import SaKeys
from otwamp.ike.proposal import Suite, choose
from otwamp.ike.registry import NotifyType, ProtocolId
from otwamp.ike.wire.message import Message, Payload
from otwamp.ike.wire.payloads import KeyExchange, Nonce, Notify
from otwamp.ike.wire.sa import SecurityAssociation

_SECTION = "RFC 7296 §1.3.2"


@dataclass(frozen=True)
class PendingRekey:
    """Our half of a rekey in progress: the new SPIi, Ni and DH value."""

    suites: tuple[Suite, ...]
    spi: bytes
    nonce: bytes
    private: dh.DhPrivate = field(repr=False)


def start_rekey(
    suites: tuple[Suite, ...], random: RandomSource
) -> tuple[PendingRekey, tuple[Payload, ...]]:
    """The request's payloads; the new SPIi goes in every proposal (RFC 7296 §2.18)."""
    spi, nonce = random(SPI_LEN), random(NONCE_LEN)
    private = dh.generate(suites[0].dh_group, random)
    offer = SecurityAssociation(tuple(s.proposal(i + 1, spi) for i, s in enumerate(suites)))
    payloads = (offer, Nonce(nonce), KeyExchange(private.group, private.public_value))
    return PendingRekey(suites, spi, nonce, private), payloads


def finish_rekey(old: SaKeys, pending: PendingRekey, response: Message) -> SaKeys:
    """The new SA's keys from the response {SA, Nr, KEr}."""
    sa, nonce, ke = _parts(response)
    if sa is None or nonce is None or ke is None or len(sa.proposals) != 1:
        raise ProtocolError("SA, Nr or KEr missing", field="CREATE_CHILD_SA", section=_SECTION)
    proposal = sa.proposals[0]
    suite = Suite.from_proposal(proposal)
    if suite not in pending.suites or ke.dh_group != pending.private.group:
        raise ProtocolError("not what we offered", field="SA", section="RFC 7296 §2.7")
    _check_spi(proposal.spi)
    return old.rekeyed(
        suite,
        pending.private.shared_secret(ke.data),
        ni=pending.nonce,
        nr=nonce.data,
        spi_i=pending.spi,
        spi_r=proposal.spi,
    )


def answer_rekey(
    old: SaKeys, request: Message, suites: tuple[Suite, ...], random: RandomSource
) -> tuple[tuple[Payload, ...], SaKeys | None]:
    """The response's payloads, and the new SA's keys if we accept.

    Requests for Child SAs are declined: we are childless (RFC 6023).
    """
    sa, nonce, ke = _parts(request)
    if sa is None or nonce is None or any(p.protocol_id != ProtocolId.IKE for p in sa.proposals):
        return (Notify(NotifyType.NO_PROPOSAL_CHOSEN),), None
    proposal = choose(sa.proposals, suites)
    if proposal is None:
        return (Notify(NotifyType.NO_PROPOSAL_CHOSEN),), None
    suite = Suite.from_proposal(proposal)
    if ke is None or ke.dh_group != suite.dh_group:
        # RFC 7296 §2.18: a rekey always carries KE, in the group we select.
        return (Notify.invalid_ke(suite.dh_group),), None
    _check_spi(proposal.spi)
    spi_r, nr = random(SPI_LEN), random(NONCE_LEN)
    private = dh.generate(suite.dh_group, random)
    new = old.rekeyed(
        suite,
        private.shared_secret(ke.data),
        ni=nonce.data,
        nr=nr,
        spi_i=proposal.spi,
        spi_r=spi_r,
    )
    reply = (
        SecurityAssociation((replace(proposal, spi=spi_r),)),
        Nonce(nr),
        KeyExchange(private.group, private.public_value),
    )
    return reply, new


def _parts(message: Message) -> tuple[SecurityAssociation | None, Nonce | None, KeyExchange | None]:
    return message.find(SecurityAssociation), message.find(Nonce), message.find(KeyExchange)


def _check_spi(spi: bytes) -> None:
    if len(spi) != SPI_LEN:
        raise ProtocolError(f"{len(spi)} octets, expected 8", field="SPI", section="RFC 7296 §2.18")
