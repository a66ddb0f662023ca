"""IKE_AUTH authentication: our AUTH payloads and the check of the peer's (RFC 7296 §2.15)."""

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.ike.crypto.auth import psk_auth, verify_psk_auth
from otwamp.ike.crypto.signature import SUPPORTED_HASHES, auth_payload, verify
from otwamp.ike.handshake import Handshake
from otwamp.ike.policy import Policy
from otwamp.ike.registry import AuthMethod, NotifyType
from otwamp.ike.wire.identity import Identity, IdInitiator, IdResponder
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.payloads import Authentication, Certificate, Notify


def hash_announcement() -> Notify:
    """SIGNATURE_HASH_ALGORITHMS for IKE_SA_INIT: the hashes we verify (RFC 7427 §4)."""
    return Notify.hash_algorithms(SUPPORTED_HASHES)


def announced_hashes(message: Message) -> tuple[int, ...]:
    """The hashes a peer announced in its IKE_SA_INIT message (RFC 7427 §4)."""
    notify = message.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS)
    return () if notify is None else notify.algorithms


def local_auth(
    policy: Policy,
    handshake: Handshake,
    by_initiator: bool,
    peer_id: Identity,
    peer_hashes: tuple[int, ...],
) -> tuple[tuple[Certificate, ...], Authentication]:
    """Our CERT payloads (none with a PSK) and our AUTH payload."""
    octets = handshake.signed_octets(by_initiator, policy.local_id)
    if policy.credentials is not None:
        key = policy.credentials.private_key
        return policy.credentials.payloads(), auth_payload(key, octets, peer_hashes)
    psk = policy.psks.get(peer_id)
    if psk is None:
        raise AuthenticationError(f"no PSK for {peer_id}", field="ID", section="RFC 7296 §2.15")
    value = psk_auth(handshake.sa.suite.prf, psk, octets)
    return (), Authentication(AuthMethod.SHARED_KEY_MIC, value)


def authenticate_peer(
    policy: Policy, handshake: Handshake, message: Message, peer_is_initiator: bool, now: float
) -> Identity:
    """The peer's identity once its AUTH verifies; AuthenticationError says why not."""
    id_payload = message.find(IdInitiator if peer_is_initiator else IdResponder)
    auth = message.find(Authentication)
    if id_payload is None or auth is None:
        raise ProtocolError("ID or AUTH missing", field="IKE_AUTH", section="RFC 7296 §1.2")
    identity = id_payload.identity
    octets = handshake.signed_octets(peer_is_initiator, identity)
    if auth.method == AuthMethod.SHARED_KEY_MIC:
        psk = policy.psks.get(identity)
        if psk is None:
            raise AuthenticationError(
                f"no PSK for {identity}", field="ID", section="RFC 7296 §2.15"
            )
        verify_psk_auth(handshake.sa.suite.prf, psk, octets, auth.data)
        return identity
    if policy.trust is None:
        raise AuthenticationError("no trust anchors", field="Auth Method", section="RFC 7296 §3.8")
    certificates = tuple(p for p in message.payloads if isinstance(p, Certificate))
    verify(policy.trust.authenticate(certificates, identity, now), octets, auth)
    return identity
