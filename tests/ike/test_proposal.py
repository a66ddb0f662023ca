"""Suites in strongSwan notation and proposal selection (RFC 7296 §2.7, §3.3)."""

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike.proposal import Suite, choose
from otwamp.ike.registry import DhGroup, EncrId, IntegId, PrfId, ProtocolId, TransformType
from otwamp.ike.wire.sa import Proposal, Transform


@pytest.mark.parametrize(
    "name",
    [
        "aes128-sha256-x25519",
        "aes256-sha384-ecp384",
        "aes128gcm16-prfsha256-ecp256",
        "aes256-sha1-modp2048",
        "aes256gcm16-prfsha512-ecp521",
        "aes192-sha512-modp3072",
    ],
)
def test_parse_and_str_round_trip(name):
    suite = Suite.parse(name)
    assert str(suite) == name
    assert Suite.from_proposal(suite.proposal(1)) == suite


def test_parse_maps_to_transform_ids():
    suite = Suite.parse("aes128gcm16-prfsha384-ecp256")
    assert (suite.encryption.encr_id, suite.encryption.key_bits) == (EncrId.AES_GCM_16, 128)
    assert suite.prf.prf_id == PrfId.HMAC_SHA2_384
    assert suite.integrity is None and suite.integ_key_len == 0
    assert suite.encryption.key_len == 20  # 16 + 4 salt octets (RFC 5282 §7.1)
    assert suite.dh_group == DhGroup.ECP_256


@pytest.mark.parametrize("name", ["aes128-md5-x25519", "3des-sha1-modp2048", "aes128-sha256", "x"])
def test_unknown_names_are_refused(name):
    with pytest.raises(ValueError, match="unknown proposal"):
        Suite.parse(name)


def _offer(*transforms):
    return Proposal(3, ProtocolId.IKE, tuple(transforms))


def test_choose_picks_one_transform_of_each_type_keeping_the_number():
    offered = _offer(
        Transform.make(TransformType.ENCR, EncrId.AES_CBC, 256),
        Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
        Transform.make(TransformType.INTEG, IntegId.HMAC_SHA1_96),
        Transform.make(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
        Transform.make(TransformType.PRF, PrfId.HMAC_SHA2_256),
        Transform.make(TransformType.DH, DhGroup.MODP_2048),
        Transform.make(TransformType.DH, DhGroup.CURVE25519),
    )
    ours = Suite.parse("aes128-sha256-x25519")
    chosen = choose((offered,), (Suite.parse("aes256-sha384-ecp384"), ours))
    assert chosen == ours.proposal(3)


def test_choose_returns_none_without_common_suite():
    offered = Suite.parse("aes128-sha256-x25519").proposal(1)
    assert choose((offered,), (Suite.parse("aes128-sha256-ecp256"),)) is None
    esp = Proposal(1, ProtocolId.ESP, offered.transforms)
    assert choose((esp,), (Suite.parse("aes128-sha256-x25519"),)) is None


@pytest.mark.parametrize(
    ("transforms", "message"),
    [
        ((Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),), "missing"),
        (
            (
                Transform.make(TransformType.ENCR, EncrId.AES_GCM_16, 128),
                Transform.make(TransformType.INTEG, IntegId.HMAC_SHA1_96),
                Transform.make(TransformType.PRF, PrfId.HMAC_SHA1),
                Transform.make(TransformType.DH, DhGroup.ECP_256),
            ),
            "integrity",
        ),
        (
            (
                Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
                Transform.make(TransformType.PRF, PrfId.HMAC_SHA1),
                Transform.make(TransformType.DH, DhGroup.ECP_256),
            ),
            "integrity",
        ),
        (
            (
                Transform.make(TransformType.ENCR, EncrId.AES_CBC, 100),
                Transform.make(TransformType.INTEG, IntegId.HMAC_SHA1_96),
                Transform.make(TransformType.PRF, PrfId.HMAC_SHA1),
                Transform.make(TransformType.DH, DhGroup.ECP_256),
            ),
            "unsupported cipher",
        ),
        (
            (
                Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
                Transform.make(TransformType.INTEG, IntegId.HMAC_SHA1_96),
                Transform.make(TransformType.PRF, PrfId.HMAC_SHA1),
                Transform.make(TransformType.DH, 2),
            ),
            "unsupported group",
        ),
        (
            (
                Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
                Transform.make(TransformType.ENCR, EncrId.AES_CBC, 256),
            ),
            "more than one",
        ),
    ],
)
def test_from_proposal_refuses_bad_replies(transforms, message):
    with pytest.raises(ProtocolError, match=message):
        Suite.from_proposal(_offer(*transforms))
