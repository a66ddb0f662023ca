"""The octets an AUTH payload signs, and shared-key AUTH values (RFC 7296 §2.15)."""

from cryptography.hazmat.primitives import constant_time

from otwamp.errors import AuthenticationError
from otwamp.ike.crypto.prf import Prf

KEY_PAD = b"Key Pad for IKEv2"  # RFC 7296 §2.15, 17 ASCII octets, no terminator.


def signed_octets(
    prf: Prf, message: bytes, peer_nonce: bytes, sk_p: bytes, id_body: bytes
) -> bytes:
    """RealMessage | Nonce | prf(SK_p, ID'), where ID' is the ID payload body (RFC 7296 §2.15).

    The initiator passes its first IKE_SA_INIT request, Nr, SK_pi and IDi'; the responder
    its IKE_SA_INIT response, Ni, SK_pr and IDr'.
    """
    return message + peer_nonce + prf(sk_p, id_body)


def psk_auth(prf: Prf, psk: bytes, octets: bytes) -> bytes:
    """AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>) (RFC 7296 §2.15)."""
    return prf(prf(psk, KEY_PAD), octets)


def verify_psk_auth(prf: Prf, psk: bytes, octets: bytes, auth_data: bytes) -> None:
    """Raise AuthenticationError unless ``auth_data`` is the shared-key AUTH of ``octets``."""
    if not constant_time.bytes_eq(psk_auth(prf, psk, octets), auth_data):
        raise AuthenticationError(
            "shared-key AUTH mismatch", field="Authentication Data", section="RFC 7296 §2.15"
        )
