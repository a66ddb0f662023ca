"""SessionKeys: sizes checked, key material kept out of reprs."""

import pytest

from otwamp.security.sessionkeys import SessionKeys

AES = bytes(range(16))
HMAC = bytes(range(100, 132))


def test_repr_hides_keys() -> None:
    text = repr(SessionKeys(aes_key=AES, hmac_key=HMAC))
    assert text == "SessionKeys()"


@pytest.mark.parametrize(("aes", "hmac"), [(AES[:15], HMAC), (AES, HMAC[:16]), (HMAC, AES)])
def test_wrong_sizes(aes: bytes, hmac: bytes) -> None:
    with pytest.raises(ValueError, match="16 \\(AES\\) and 32 \\(HMAC\\)"):
        SessionKeys(aes_key=aes, hmac_key=hmac)
