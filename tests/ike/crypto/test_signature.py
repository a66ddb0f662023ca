"""Signature AUTH: RFC 7427 method 14, RSA method 1, ECDSA methods 9-11 (RFC 4754)."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from otwamp.errors import AuthenticationError
from otwamp.ike.crypto.signature import choose_hash, sign, verify
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


def test_hash_choice_follows_the_peer():
    assert choose_hash((HashAlgorithm.SHA2_512, HashAlgorithm.SHA2_384)) == HashAlgorithm.SHA2_384
    assert choose_hash(()) == HashAlgorithm.SHA2_256
