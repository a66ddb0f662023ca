"""AES-128 and HMAC-SHA1-128, the building blocks of O/TWAMP security (RFC 4656 §3.1-3.2)."""

from hmac import compare_digest

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from otwamp.errors import AuthenticationError

BLOCK_LEN = 16  # AES block; every O/TWAMP-Control message is a whole number of them
HMAC_LEN = 16  # HMAC-SHA1 truncated to 128 bits (RFC 4656 §3.2)
ZERO_IV = bytes(BLOCK_LEN)


def cbc(key: bytes, iv: bytes = ZERO_IV) -> Cipher[modes.CBC]:
    """AES-128-CBC under ``key``; each encryptor/decryptor context carries one chain."""
    return Cipher(algorithms.AES128(key), modes.CBC(iv))


def ecb(key: bytes) -> Cipher[modes.ECB]:
    """AES-128-ECB under ``key``; one context serves any number of blocks."""
    return Cipher(algorithms.AES128(key), modes.ECB())


def cbc_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-128-CBC encryption of whole blocks with IV 0."""
    context = cbc(key).encryptor()
    return context.update(plaintext) + context.finalize()


def cbc_decrypt(key: bytes, ciphertext: bytes) -> bytes:
    """AES-128-CBC decryption of whole blocks with IV 0."""
    context = cbc(key).decryptor()
    return context.update(ciphertext) + context.finalize()


def ecb_encrypt(key: bytes, plaintext: bytes) -> bytes:
    """AES-128-ECB encryption of whole blocks."""
    context = ecb(key).encryptor()
    return context.update(plaintext) + context.finalize()


class Hmac128:
    """HMAC-SHA1 truncated to 16 octets under one key (RFC 4656 §3.2).

    The key is set up once; every digest starts from a copy of that keyed
    template, which is what keeps per-packet HMACs cheap.
    """

    __slots__ = ("_template",)

    def __init__(self, key: bytes) -> None:
        self._template = hmac.HMAC(key, hashes.SHA1())

    def new(self) -> hmac.HMAC:
        """A fresh accumulator to feed with ``update`` and close with ``finish``."""
        return self._template.copy()

    def digest(self, data: bytes) -> bytes:
        """The truncated HMAC of ``data``."""
        context = self._template.copy()
        context.update(data)
        return finish(context)


def finish(context: hmac.HMAC) -> bytes:
    """Close an accumulator and truncate its HMAC-SHA1 to 16 octets (RFC 4656 §3.2)."""
    return context.finalize()[:HMAC_LEN]


def require_equal(
    expected: bytes, received: bytes, message: str, *, field: str, section: str
) -> None:
    """Raise AuthenticationError(message) unless the values match (constant-time compare)."""
    if not compare_digest(expected, received):
        raise AuthenticationError(message, field=field, section=section)
