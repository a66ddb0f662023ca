"""Signature AUTH: RFC 7427 method 14, RSA method 1, ECDSA methods 9-11 (RFC 4754)."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from otwamp.errors import AuthenticationError
from otwamp.ike.crypto.signature import auth_payload, choose_hash, sign, strength_hash, verify
from otwamp.ike.registry import AuthMethod, HashAlgorithm
from otwamp.ike.wire.payloads import Authentication

from ..certs import key
from ..vectors import Recorded, load, protection


@pytest.mark.parametrize(("index", "role"), [(2, "initiator"), (3, "responder")])
def test_strongswan_signature_verifies(index, role):
    vector = load("cert-aes128-sha256-x25519")
    recorded = Recorded(vector, vector["messages"][index], index)
    auth = protection(recorded).open(recorded.raw).find(Authentication)
    assert auth.method == AuthMethod.DIGITAL_SIGNATURE
    record = vector["auth_verification"][role]
    assert auth.data[1:13].hex() == record["rfc7427_algorithm_identifier_der"]
    pem = vector["certificates_pem"][role].encode()
    public = x509.load_pem_x509_certificate(pem).public_key()
    octets = bytes.fromhex(record["signed_octets_hex"])
    verify(public, octets, auth)
    with pytest.raises(AuthenticationError, match="does not verify"):
        verify(public, octets + b"x", auth)


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa"])
@pytest.mark.parametrize(
    "hash_id", [HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512]
)
def test_rfc7427_round_trip(kind, hash_id):
    private = key(kind)
    auth = sign(private, b"octets", hash_id)
    assert auth.method == AuthMethod.DIGITAL_SIGNATURE
    verify(private.public_key(), b"octets", auth)
    with pytest.raises(AuthenticationError):
        verify(private.public_key(), b"other octets", auth)


def test_algorithm_must_fit_the_key():
    auth = sign(key("rsa"), b"octets", HashAlgorithm.SHA2_256)
    with pytest.raises(AuthenticationError, match="AlgorithmIdentifier"):
        verify(key("p256").public_key(), b"octets", auth)
    with pytest.raises(AuthenticationError, match="unsupported AlgorithmIdentifier"):
        verify(key("p256").public_key(), b"octets", Authentication(14, b"\x02\x30\x00sig"))


@pytest.mark.parametrize(
    ("method", "kind", "hash_type", "size"),
    [
        (AuthMethod.ECDSA_SHA256_P256, ec.SECP256R1(), hashes.SHA256(), 32),
        (AuthMethod.ECDSA_SHA384_P384, ec.SECP384R1(), hashes.SHA384(), 48),
    ],
)
def test_rfc4754_ecdsa_methods(method, kind, hash_type, size):
    private = ec.generate_private_key(kind)
    r, s = decode_dss_signature(private.sign(b"octets", ec.ECDSA(hash_type)))
    data = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    verify(private.public_key(), b"octets", Authentication(method, data))
    with pytest.raises(AuthenticationError, match="not r"):
        verify(private.public_key(), b"octets", Authentication(method, data[:-1]))


def test_rsa_method_1_uses_sha1():
    private = key("rsa")
    signature = private.sign(b"octets", padding.PKCS1v15(), hashes.SHA1())
    verify(private.public_key(), b"octets", Authentication(AuthMethod.RSA_SIGNATURE, signature))
    with pytest.raises(AuthenticationError, match="does not fit"):
        verify(key("p256").public_key(), b"octets", Authentication(1, signature))


SHA256, SHA384, SHA512 = HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512
ALL = (SHA256, SHA384, SHA512)
# RFC 7427 Appendix A: the AlgorithmIdentifier (after its length octet) of each signature.
ECDSA_OIDS = {SHA256: "300a06082a8648ce3d040302", SHA384: "300a06082a8648ce3d040303"}
ECDSA_OIDS[SHA512] = "300a06082a8648ce3d040304"
RSA_OIDS = {SHA256: "300d06092a864886f70d01010b0500", SHA384: "300d06092a864886f70d01010c0500"}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("p256", SHA256),
        ("p384", SHA384),
        ("p521", SHA512),
        ("rsa", SHA256),
        ("rsa3072", SHA256),
        ("rsa4096", SHA384),  # above 3072 bits: more than 128 bits of strength
    ],
)
def test_strength_hash_matches_the_key(kind, expected):
    private = key(kind)
    assert strength_hash(private) == expected
    assert choose_hash(private, ALL) == expected
    auth = auth_payload(private, b"octets", ALL)
    oids = RSA_OIDS if kind.startswith("rsa") else ECDSA_OIDS
    assert auth.method == AuthMethod.DIGITAL_SIGNATURE
    assert auth.data[1 : 1 + auth.data[0]].hex() == oids[expected]
    verify(private.public_key(), b"octets", auth)


@pytest.mark.parametrize(
    ("kind", "announced", "expected"),
    [
        ("p384", (SHA256,), SHA256),  # only weaker ones: the strongest of them
        ("p521", (SHA256, SHA384), SHA384),
        ("p256", (SHA512, SHA384), SHA384),  # only stronger ones: the weakest of them
        ("p384", (HashAlgorithm.SHA1, SHA512), SHA512),  # never SHA-1 (not ours)
        ("p256", (HashAlgorithm.IDENTITY, 77, SHA256), SHA256),
    ],
)
def test_hash_choice_follows_the_peer(kind, announced, expected):
    assert choose_hash(key(kind), announced) == expected


@pytest.mark.parametrize(
    ("announced", "named"),
    [((HashAlgorithm.SHA1,), "SHA1"), ((HashAlgorithm.IDENTITY, 77), "IDENTITY, 77")],
)
def test_no_common_hash_is_a_clear_error(announced, named):
    with pytest.raises(AuthenticationError) as error:
        auth_payload(key("p256"), b"octets", announced)
    assert str(error.value) == (
        f"SIGNATURE_HASH_ALGORITHMS: no common signature hash: the peer announced {named}, "
        "we sign with SHA2_256, SHA2_384, SHA2_512 (RFC 7427 §4)"
    )


@pytest.mark.parametrize(
    ("kind", "method"),
    [
        ("p256", AuthMethod.ECDSA_SHA256_P256),
        ("p384", AuthMethod.ECDSA_SHA384_P384),
        ("p521", AuthMethod.ECDSA_SHA512_P521),
        ("rsa", AuthMethod.RSA_SIGNATURE),
    ],
)
def test_without_announcement_the_method_every_peer_knows(kind, method):
    # RFC 7427 §4: only the notification says the peer supports method 14.
    private = key(kind)
    auth = auth_payload(private, b"octets", ())
    assert auth.method == method
    verify(private.public_key(), b"octets", auth)
    with pytest.raises(AuthenticationError):
        verify(private.public_key(), b"other octets", auth)


def test_without_announcement_another_curve_is_a_clear_error():
    private = ec.generate_private_key(ec.SECP256K1())
    with pytest.raises(AuthenticationError, match="no method fits a secp256k1 key"):
        auth_payload(private, b"octets", ())
    assert auth_payload(private, b"octets", ALL).method == AuthMethod.DIGITAL_SIGNATURE
