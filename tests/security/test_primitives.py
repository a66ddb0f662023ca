"""The AES and HMAC building blocks against published vectors."""

import pytest

from otwamp.errors import AuthenticationError
from otwamp.security.primitives import (
    Hmac128,
    cbc_decrypt,
    cbc_encrypt,
    ecb_encrypt,
    finish,
    require_equal,
)

# FIPS-197 Appendix C.1 (AES-128).
FIPS197_KEY = bytes(range(16))
FIPS197_PLAIN = bytes.fromhex("00112233445566778899aabbccddeeff")
FIPS197_CIPHER = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")


def test_ecb_fips197() -> None:
    assert ecb_encrypt(FIPS197_KEY, FIPS197_PLAIN) == FIPS197_CIPHER


def test_cbc_iv0_first_block_is_ecb_and_chains() -> None:
    two = FIPS197_PLAIN * 2
    ciphertext = cbc_encrypt(FIPS197_KEY, two)
    assert ciphertext[:16] == FIPS197_CIPHER
    second = bytes(a ^ b for a, b in zip(FIPS197_PLAIN, FIPS197_CIPHER, strict=True))
    assert ciphertext[16:] == ecb_encrypt(FIPS197_KEY, second)
    assert cbc_decrypt(FIPS197_KEY, ciphertext) == two


def test_hmac_rfc2202_case1_truncated() -> None:
    mac = Hmac128(b"\x0b" * 20)
    expected = bytes.fromhex("b617318655057264e28bc0b6fb378c8ef146be00")[:16]
    assert mac.digest(b"Hi There") == expected
    context = mac.new()
    context.update(b"Hi ")
    context.update(b"There")
    assert finish(context) == expected


def test_require_equal() -> None:
    require_equal(b"abc", b"abc", "unused", field="f", section="s")
    with pytest.raises(AuthenticationError, match=r"^f: differs \(s\)$"):
        require_equal(b"abc", b"abd", "differs", field="f", section="s")
