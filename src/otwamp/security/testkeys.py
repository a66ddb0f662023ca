"""Per-session test keys, derived from the control session keys and the SID."""

from otwamp.security.primitives import cbc_encrypt, ecb_encrypt
from otwamp.security.sessionkeys import SessionKeys

SID_LEN = 16


def derive_test_session_keys(sid: bytes, keys: SessionKeys) -> SessionKeys:
    """The keys of the test session ``sid`` (RFC 4656 §4.1.2, RFC 5357 §4.2.1).

    Test AES key = AES-ECB(key = SID, AES Session-key); test HMAC key =
    AES-CBC(key = SID, IV 0, HMAC Session-key), two blocks.
    """
    if len(sid) != SID_LEN:
        raise ValueError("SID must be 16 octets")
    return SessionKeys(
        aes_key=ecb_encrypt(sid, keys.aes_key), hmac_key=cbc_encrypt(sid, keys.hmac_key)
    )
