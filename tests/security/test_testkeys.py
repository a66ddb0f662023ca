"""Test-session keys from the SID, against the perfSONAR transcripts."""

import pytest

from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.testkeys import derive_test_session_keys
from tests.security.conftest import PROTECTED_TEST, Transcript

AES_KEY = "test_aes_key = AES-ECB(key=SID, AES-Session-key)"
HMAC_KEY = "test_hmac_key = AES-CBC(key=SID, IV=0, HMAC-Session-key)"


@pytest.mark.parametrize("transcript", PROTECTED_TEST, indirect=True)
def test_recorded_sessions(transcript: Transcript, session_keys: SessionKeys) -> None:
    expected = transcript.derived["test_session_keys"]
    assert [e["sid"] for e in expected] == [s["sid"] for s in transcript.data["test_sessions"]]
    for session in expected:
        keys = derive_test_session_keys(bytes.fromhex(session["sid"]), session_keys)
        assert keys.aes_key.hex() == session[AES_KEY]
        assert keys.hmac_key.hex() == session[HMAC_KEY]


def test_sid_must_be_16_octets() -> None:
    keys = SessionKeys(aes_key=bytes(16), hmac_key=bytes(32))
    with pytest.raises(ValueError, match="SID must be 16 octets"):
        derive_test_session_keys(bytes(15), keys)
