"""Token seal/open against the perfSONAR transcripts."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.security.kdf import derive_secret_key
from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.token import TOKEN_LEN, open_token, seal_token
from tests.security.conftest import Transcript

SECRET_KEY = bytes(range(16))
CHALLENGE = bytes(range(16, 32))
KEYS = SessionKeys(aes_key=bytes(range(32, 48)), hmac_key=bytes(range(48, 80)))


def secret_key_of(transcript: Transcript) -> bytes:
    return derive_secret_key(transcript.shared_secret, transcript.salt, transcript.count)


def test_open_recorded_token(transcript: Transcript) -> None:
    keys = open_token(secret_key_of(transcript), transcript.token, transcript.challenge)
    assert transcript.challenge.hex() == transcript.derived["token_challenge"]
    assert keys.aes_key.hex() == transcript.derived["aes_session_key"]
    assert keys.hmac_key.hex() == transcript.derived["hmac_session_key"]


def test_seal_reproduces_recorded_token(transcript: Transcript, session_keys: SessionKeys) -> None:
    token = seal_token(secret_key_of(transcript), transcript.challenge, session_keys)
    assert token == transcript.token


def test_wrong_pass_phrase(transcript: Transcript) -> None:
    secret_key = derive_secret_key(b"not the secret", transcript.salt, transcript.count)
    with pytest.raises(AuthenticationError, match="Challenge differs"):
        open_token(secret_key, transcript.token, transcript.challenge)


def test_wrong_challenge() -> None:
    token = seal_token(SECRET_KEY, CHALLENGE, KEYS)
    assert open_token(SECRET_KEY, token, CHALLENGE) == KEYS
    with pytest.raises(AuthenticationError, match=r"^Token: .*\(RFC 4656 §3\.1\)$"):
        open_token(SECRET_KEY, token, bytes(16))


@pytest.mark.parametrize("length", [0, 48, 63, 65, 80])
def test_wrong_length(length: int) -> None:
    token = seal_token(SECRET_KEY, CHALLENGE, KEYS)
    with pytest.raises(ProtocolError, match=f"{length} octets, expected 64") as caught:
        open_token(SECRET_KEY, (token * 2)[:length], CHALLENGE)
    assert not isinstance(caught.value, AuthenticationError)


def test_seal_rejects_short_challenge() -> None:
    with pytest.raises(ValueError, match="Challenge must be 16 octets"):
        seal_token(SECRET_KEY, CHALLENGE[:15], KEYS)


def test_errors_carry_no_key_material(transcript: Transcript) -> None:
    secret_key = derive_secret_key(b"wrong", transcript.salt, transcript.count)
    with pytest.raises(AuthenticationError) as caught:
        open_token(secret_key, transcript.token, transcript.challenge)
    text = str(caught.value) + repr(caught.value)
    for secret in (secret_key, transcript.token[:16]):
        assert secret.hex() not in text
        assert repr(secret) not in text


@given(st.binary(min_size=TOKEN_LEN, max_size=TOKEN_LEN))
def test_random_token_is_refused(token: bytes) -> None:
    with pytest.raises(AuthenticationError):
        open_token(SECRET_KEY, token, CHALLENGE)
