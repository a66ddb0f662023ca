"""The Token of Set-Up-Response: Challenge and session keys under the secret key."""

from otwamp.errors import ProtocolError
from otwamp.security.primitives import cbc_decrypt, cbc_encrypt, require_equal
from otwamp.security.sessionkeys import AES_KEY_LEN, SessionKeys

CHALLENGE_LEN = 16
TOKEN_LEN = 64
_SECTION = "RFC 4656 §3.1"


def seal_token(secret_key: bytes, challenge: bytes, keys: SessionKeys) -> bytes:
    """Token = AES-CBC(secret key, IV 0, Challenge | AES Session-key | HMAC Session-key).

    RFC 4656 §3.1, RFC 5357 §3.1: 64 octets.
    """
    if len(challenge) != CHALLENGE_LEN:
        raise ValueError("Challenge must be 16 octets")
    return cbc_encrypt(secret_key, challenge + keys.aes_key + keys.hmac_key)


def open_token(secret_key: bytes, token: bytes, challenge: bytes) -> SessionKeys:
    """Decrypt a Token and check its Challenge against the Server-Greeting's (RFC 4656 §3.1).

    Raises ProtocolError for a Token of the wrong length and AuthenticationError
    when the Challenge differs (a wrong shared secret, as a rule).
    """
    if len(token) != TOKEN_LEN:
        raise ProtocolError(
            f"{len(token)} octets, expected {TOKEN_LEN}", field="Token", section=_SECTION
        )
    plaintext = cbc_decrypt(secret_key, token)
    require_equal(
        challenge,
        plaintext[:CHALLENGE_LEN],
        "Challenge differs from the Server-Greeting's (wrong shared secret?)",
        field="Token",
        section=_SECTION,
    )
    aes_end = CHALLENGE_LEN + AES_KEY_LEN
    return SessionKeys(aes_key=plaintext[CHALLENGE_LEN:aes_end], hmac_key=plaintext[aes_end:])
