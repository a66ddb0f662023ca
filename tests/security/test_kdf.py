"""The secret key: RFC 6070 PBKDF2-HMAC-SHA1 vectors and the perfSONAR KEKs."""

import pytest

from otwamp.security.kdf import SECRET_KEY_LEN, derive_secret_key
from tests.security.conftest import Transcript

# RFC 6070 §2. derive_secret_key yields dkLen = 16, and PBKDF2's output for a
# shorter dkLen is a prefix of that for a longer one, so each expected value is
# the first 16 octets of the RFC's DK. The c = 16777216 vector is left out: it
# takes seconds and checks nothing the c = 4096 ones do not.
RFC6070 = [
    (b"password", b"salt", 1, "0c60c80f961f0e71f3a9b524af6012062fe037a6"),
    (b"password", b"salt", 2, "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957"),
    (b"password", b"salt", 4096, "4b007901b765489abead49d926f721d065a429c1"),
    (
        b"passwordPASSWORDpassword",
        b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
        4096,
        "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
    ),
    (b"pass\0word", b"sa\0lt", 4096, "56fa6aa75548099dcc37d7f03425e0c3"),
]


@pytest.mark.parametrize(("password", "salt", "count", "dk_hex"), RFC6070)
def test_rfc6070(password: bytes, salt: bytes, count: int, dk_hex: str) -> None:
    key = derive_secret_key(password, salt, count)
    assert key == bytes.fromhex(dk_hex)[:SECRET_KEY_LEN]


def test_perfsonar_kek(transcript: Transcript) -> None:
    pbkdf2 = transcript.derived["pbkdf2"]
    assert (transcript.salt.hex(), transcript.count) == (pbkdf2["salt"], pbkdf2["iterations"])
    key = derive_secret_key(transcript.shared_secret, transcript.salt, transcript.count)
    assert key.hex() == transcript.derived["kek"]
