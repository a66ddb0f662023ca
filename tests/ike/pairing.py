"""Our initiator and responder wired together in memory."""

from dataclasses import dataclass, field

from otwamp.ike.cookies import CookieGuard
from otwamp.ike.events import Event
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.responder import Responder
from otwamp.ike.wire.identity import Identity

from .certs import Authority

INIT_ID = Identity.fqdn("init.ippm.test")
RESP_ID = Identity.fqdn("resp.ippm.test")
PSK = b"ippm-test-psk-0123456789"
INIT_ADDRESS = ("10.98.0.2", 500)
RESP_ADDRESS = ("10.98.0.1", 500)
NOW = 1_800_000_000.0


def suites(*names: str) -> tuple[Suite, ...]:
    return tuple(Suite.parse(n) for n in names)


@dataclass
class Pair:
    """An initiator, a responder, and everything that passed between them."""

    initiator: Initiator
    responder: Responder
    to_responder: list[bytes] = field(default_factory=list)
    to_initiator: list[bytes] = field(default_factory=list)
    initiator_events: list[Event] = field(default_factory=list)
    responder_events: list[Event] = field(default_factory=list)

    def run(self, *first: bytes, now: float = NOW) -> None:
        """Deliver ``first`` to the responder and shuttle datagrams until both are quiet."""
        queue = [(True, d) for d in first]
        while queue:
            to_responder, datagram = queue.pop(0)
            if to_responder:
                self.to_responder.append(datagram)
                output = self.responder.receive(datagram, now)
                self.responder_events.extend(output.events)
            else:
                self.to_initiator.append(datagram)
                output = self.initiator.receive(datagram, now)
                self.initiator_events.extend(output.events)
            queue.extend((not to_responder, d) for d in output.datagrams)


def make_pair(
    initiator_suites: tuple[Suite, ...] = suites("aes128-sha256-x25519"),
    responder_suites: tuple[Suite, ...] | None = None,
    initiator_psk: bytes = PSK,
    responder_psks: dict[Identity, bytes] | None = None,
    remote_id: Identity = RESP_ID,
    responder_id: Identity = RESP_ID,
    cookies: CookieGuard | None = None,
) -> Pair:
    initiator = Initiator(
        Policy(INIT_ID, initiator_suites, {remote_id: initiator_psk}), remote_id, RESP_ADDRESS
    )
    responder = Responder(
        Policy(
            responder_id,
            responder_suites or initiator_suites,
            {INIT_ID: PSK} if responder_psks is None else responder_psks,
        ),
        INIT_ADDRESS,
        cookies=cookies,
    )
    return Pair(initiator, responder)


def established(pair: Pair) -> Pair:
    """A pair whose IKE SA is up."""
    pair.run(pair.initiator.start(NOW))
    assert pair.initiator.session is not None and pair.responder.session is not None
    return pair


def cert_pair(initiator_kind: str = "p256", responder_kind: str = "p256") -> Pair:
    """Both sides authenticate with certificates from one CA (RFC 7427 signatures)."""
    authority = Authority()
    initiator_policy = Policy(
        INIT_ID,
        suites("aes128-sha256-x25519"),
        credentials=authority.issue("init", initiator_kind, str(INIT_ID)),
        trust=authority.trust(),
    )
    responder_policy = Policy(
        RESP_ID,
        suites("aes128-sha256-x25519"),
        credentials=authority.issue("resp", responder_kind, str(RESP_ID)),
        trust=authority.trust(),
    )
    return Pair(
        Initiator(initiator_policy, RESP_ID, RESP_ADDRESS),
        Responder(responder_policy, INIT_ADDRESS),
    )
