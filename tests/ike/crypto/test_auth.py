"""AUTH signed octets and shared-key AUTH values of the strongSwan 5.9.8 vectors."""

import pytest

from otwamp.errors import AuthenticationError
from otwamp.ike.crypto.auth import KEY_PAD, psk_auth, signed_octets, verify_psk_auth
from otwamp.ike.wire.payloads import Authentication

from ..vectors import Recorded, protection, recorded_keys, suite

# Role -> (IKE_SA_INIT message it sends, the peer's nonce, its SK_p, its IKE_AUTH message).
_ROLES = {"initiator": (0, "nr", "sk_pi", 2), "responder": (1, "ni", "sk_pr", 3)}


def _octets(vector, role):
    message_index, nonce, sk_p, _ = _ROLES[role]
    keys = recorded_keys(vector["ike_sa"])
    return signed_octets(
        suite(vector).prf,
        bytes.fromhex(vector["messages"][message_index]["hex"]),
        bytes.fromhex(vector["ike_sa"][nonce]),
        getattr(keys, sk_p),
        bytes.fromhex(vector[role]["id_payload_body_hex"]),
    )


def _sent_auth(vector, role) -> Authentication:
    index = _ROLES[role][3]
    recorded = Recorded(vector, vector["messages"][index], index)
    auth = protection(recorded).open(recorded.raw).find(Authentication)
    assert auth is not None
    return auth


@pytest.mark.parametrize("role", list(_ROLES))
def test_signed_octets_match_record(vector, role):
    assert _octets(vector, role).hex() == vector["auth_verification"][role]["signed_octets_hex"]


@pytest.mark.parametrize("role", list(_ROLES))
def test_psk_auth_matches_record_and_message(psk_vector, role):
    vector = psk_vector
    record = vector["auth_verification"][role]
    psk = bytes.fromhex(vector["psk_hex"])
    prf = suite(vector).prf
    assert prf(psk, KEY_PAD).hex() == record["prf(PSK,'Key Pad for IKEv2')"]
    value = psk_auth(prf, psk, _octets(vector, role))
    assert value.hex() == record["expected_auth"]
    assert _sent_auth(vector, role).data == value
    verify_psk_auth(prf, psk, _octets(vector, role), value)


def test_wrong_psk_is_refused(vector):
    prf = suite(vector).prf
    octets = _octets(vector, "initiator")
    good = psk_auth(prf, b"right", octets)
    with pytest.raises(AuthenticationError, match="AUTH"):
        verify_psk_auth(prf, b"wrong", octets, good)
