"""Suites in strongSwan notation and proposal selection (RFC 7296 §2.7, §3.3)."""

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike.proposal import KEYWORDS, Suite, choose
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
        "aes128-sha256-prfsha384-x448",
        "aes192gcm16-prfsha1-x448",
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


# Every keyword of strongSwan's proposal_keywords_static.txt for a transform we implement.
STRONGSWAN_KEYWORDS = {
    "aes": (TransformType.ENCR, EncrId.AES_CBC, 128),
    "aes128": (TransformType.ENCR, EncrId.AES_CBC, 128),
    "aes192": (TransformType.ENCR, EncrId.AES_CBC, 192),
    "aes256": (TransformType.ENCR, EncrId.AES_CBC, 256),
    **{
        f"aes{bits}gcm{icv}": (TransformType.ENCR, EncrId.AES_GCM_16, bits)
        for bits in (128, 192, 256)
        for icv in ("16", "128", "")
    },
    "sha": (TransformType.INTEG, IntegId.HMAC_SHA1_96, None),
    "sha1": (TransformType.INTEG, IntegId.HMAC_SHA1_96, None),
    "sha256": (TransformType.INTEG, IntegId.HMAC_SHA2_256_128, None),
    "sha2_256": (TransformType.INTEG, IntegId.HMAC_SHA2_256_128, None),
    "sha384": (TransformType.INTEG, IntegId.HMAC_SHA2_384_192, None),
    "sha2_384": (TransformType.INTEG, IntegId.HMAC_SHA2_384_192, None),
    "sha512": (TransformType.INTEG, IntegId.HMAC_SHA2_512_256, None),
    "sha2_512": (TransformType.INTEG, IntegId.HMAC_SHA2_512_256, None),
    "prfsha1": (TransformType.PRF, PrfId.HMAC_SHA1, None),
    "prfsha256": (TransformType.PRF, PrfId.HMAC_SHA2_256, None),
    "prfsha384": (TransformType.PRF, PrfId.HMAC_SHA2_384, None),
    "prfsha512": (TransformType.PRF, PrfId.HMAC_SHA2_512, None),
    "modp2048": (TransformType.DH, DhGroup.MODP_2048, None),
    "modp3072": (TransformType.DH, DhGroup.MODP_3072, None),
    "ecp256": (TransformType.DH, DhGroup.ECP_256, None),
    "ecp384": (TransformType.DH, DhGroup.ECP_384, None),
    "ecp521": (TransformType.DH, DhGroup.ECP_521, None),
    "curve25519": (TransformType.DH, DhGroup.CURVE25519, None),
    "x25519": (TransformType.DH, DhGroup.CURVE25519, None),
    "curve448": (TransformType.DH, DhGroup.CURVE448, None),
    "x448": (TransformType.DH, DhGroup.CURVE448, None),
}


def test_keyword_table_is_strongswans():
    assert KEYWORDS == STRONGSWAN_KEYWORDS


def _transforms(suite):
    return {(t.transform_type, t.transform_id, t.key_bits) for t in suite.proposal(1).transforms}


@pytest.mark.parametrize(("keyword", "expected"), list(STRONGSWAN_KEYWORDS.items()))
def test_every_keyword_names_its_transform(keyword, expected):
    transform_type = expected[0]
    others = {
        TransformType.ENCR: "aes256",
        TransformType.INTEG: "sha512",
        TransformType.PRF: "prfsha512",
        TransformType.DH: "ecp521",
    }
    parts = [keyword if t == transform_type else name for t, name in others.items()]
    if expected[:2] == (TransformType.ENCR, EncrId.AES_GCM_16):
        parts.remove("sha512")  # an AEAD proposal names no integrity algorithm
    suite = Suite.parse("-".join(parts))
    assert expected in _transforms(suite)
    assert Suite.parse(str(suite)) == suite


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("aes128-sha256-curve25519", "aes128-sha256-x25519"),
        ("aes-sha-modp2048", "aes128-sha1-modp2048"),
        ("aes256-sha2_384-curve448", "aes256-sha384-x448"),
        ("aes128gcm-prfsha256-curve25519", "aes128gcm16-prfsha256-x25519"),
        ("aes256gcm128-prfsha384-ecp384", "aes256gcm16-prfsha384-ecp384"),
        ("x25519-sha256-aes128", "aes128-sha256-x25519"),  # any order, as in strongSwan
        ("AES128-SHA256-Curve25519", "aes128-sha256-x25519"),
        ("aes128-sha256-prfsha256-x25519", "aes128-sha256-x25519"),
        ("aes128gcm16-sha256-ecp256", "aes128gcm16-prfsha256-ecp256"),  # PRF from sha256
        ("aes128-curve25519-x25519-sha256", "aes128-sha256-x25519"),  # one group, two names
    ],
)
def test_aliases_give_the_same_suite(alias, canonical):
    assert str(Suite.parse(alias)) == canonical
    assert Suite.parse(alias) == Suite.parse(canonical)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("aes128-md5-x25519", "unsupported algorithm 'md5'"),
        ("3des-sha1-modp2048", "unsupported algorithm '3des'"),
        ("aes128-sha256-modp1024", "unsupported algorithm 'modp1024'"),
        ("aes128-sha256", "a DH group"),
        ("sha256-x25519", "an encryption algorithm"),
        ("aes128-prfsha256-x25519", "integrity"),
        ("aes128gcm16-x25519", "needs a PRF"),
        ("aes128-aes256-sha256-x25519", "more than one ENCR"),
        ("aes128-sha256-ecp256-x25519", "more than one DH"),
        ("x", "unsupported algorithm 'x'"),
        ("", "unsupported algorithm ''"),
    ],
)
def test_unknown_names_are_refused(name, message):
    with pytest.raises(ValueError, match=f"proposal {name!r}: .*{message}"):
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
