"""The secret key that encrypts the Token, derived from a shared secret."""

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

SECRET_KEY_LEN = 16


def derive_secret_key(shared_secret: bytes, salt: bytes, count: int) -> bytes:
    """PBKDF2-HMAC-SHA1(shared secret, Salt, Count, 16 octets).

    RFC 4656 §3.1 and RFC 5357 §3.1 with the pass-phrase as the shared secret;
    RFC 7717 §5.1 with prf(SK_d, "IPPM") in its place (DESIGN D2). Salt and
    Count are those of the Server-Greeting; capping Count is the caller's
    policy.
    """
    kdf = PBKDF2HMAC(algorithm=hashes.SHA1(), length=SECRET_KEY_LEN, salt=salt, iterations=count)
    return kdf.derive(shared_secret)
