"""Certificate chains and ID matching (RFC 7296 §3.5-3.7), with the strongSwan cert vector."""

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from otwamp.errors import AuthenticationError
from otwamp.ike.registry import CertEncoding, IdType
from otwamp.ike.trust import TrustStore, names
from otwamp.ike.wire.identity import Identity
from otwamp.ike.wire.payloads import Certificate

from .certs import AFTER, INSIDE, Authority
from .vectors import Recorded, load, protection

CERT_RUN = "cert-aes128-sha256-x25519"


@pytest.fixture(scope="module")
def cert_vector():
    return load(CERT_RUN)


def _ca(vector) -> x509.Certificate:
    return x509.load_pem_x509_certificate(vector["certificates_pem"]["ca"].encode())


def _sent_certificates(vector, index):
    recorded = Recorded(vector, vector["messages"][index], index)
    message = protection(recorded).open(recorded.raw)
    return tuple(p for p in message.payloads if isinstance(p, Certificate))


def _spki(certificate_or_key) -> bytes:
    return certificate_or_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@pytest.mark.parametrize(("index", "role"), [(2, "initiator"), (3, "responder")])
def test_recorded_certificates_are_trusted(cert_vector, index, role):
    certificates = _sent_certificates(cert_vector, index)
    identity = Identity.fqdn(cert_vector[role]["id"])
    now = float(cert_vector["messages"][index]["time"])
    key = TrustStore((_ca(cert_vector),)).authenticate(certificates, identity, now)
    pem = cert_vector["certificates_pem"][role].encode()
    assert _spki(key) == _spki(x509.load_pem_x509_certificate(pem).public_key())


def test_certificate_request_matches_strongswan(cert_vector):
    recorded = cert_vector["messages"][1]["payloads"]
    [certreq] = [p for p in recorded if p["name"] == "CERTREQ"]
    request = TrustStore((_ca(cert_vector),)).certificate_request()
    assert request.encode_body().hex() == certreq["body_hex"]


def test_expired_wrong_id_and_unknown_ca_are_refused(cert_vector):
    certificates = _sent_certificates(cert_vector, 2)
    store = TrustStore((_ca(cert_vector),))
    identity = Identity.fqdn("init.ippm.test")
    with pytest.raises(AuthenticationError, match="untrusted"):
        store.authenticate(certificates, identity, AFTER)
    now = float(cert_vector["messages"][2]["time"])
    with pytest.raises(AuthenticationError, match="does not name"):
        store.authenticate(certificates, Identity.fqdn("resp.ippm.test"), now)
    with pytest.raises(AuthenticationError, match="untrusted"):
        Authority().trust().authenticate(certificates, identity, now)
    with pytest.raises(AuthenticationError, match="no X"):
        store.authenticate((), identity, now)
    with pytest.raises(AuthenticationError, match="undecodable"):
        store.authenticate((Certificate(CertEncoding.X509_SIGNATURE, b"\x30\x00"),), identity, now)


def test_intermediates_are_used():
    root = Authority("Root")
    leaf = Authority("Middle", parent=root).issue("peer", "p256", "peer.example")
    identity = Identity.fqdn("peer.example")
    assert len(leaf.payloads()) == 2
    assert root.trust().authenticate(leaf.payloads(), identity, INSIDE) == (
        leaf.certificate.public_key()
    )
    with pytest.raises(AuthenticationError, match="untrusted"):
        root.trust().authenticate(leaf.payloads()[:1], identity, INSIDE)


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (Identity.fqdn("PEER.example"), True),
        (Identity.fqdn("other.example"), False),
        (Identity.rfc822("ops@peer.example"), True),
        (Identity.address("192.0.2.9"), True),
        (Identity.address("2001:db8::9"), True),
        (Identity.address("192.0.2.10"), False),
        (Identity(IdType.KEY_ID, b"peer"), False),
    ],
)
def test_names_match_subject_alt_names(identity, expected):
    credentials = Authority().issue(
        "peer", "p256", "peer.example", "ops@peer.example", "192.0.2.9", "2001:db8::9"
    )
    assert names(credentials.certificate, identity) is expected


def test_names_match_subject_dn():
    certificate = Authority().issue("peer").certificate
    assert names(certificate, Identity(IdType.DER_ASN1_DN, certificate.subject.public_bytes()))
    assert not names(certificate, Identity.fqdn("peer"))  # no SAN at all


def test_a_certificate_with_an_unsupported_key_is_refused():
    authority = Authority()
    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "peer")])
    san = x509.SubjectAlternativeName([x509.DNSName("peer.example")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(authority.certificate.not_valid_before_utc)
        .not_valid_after(authority.certificate.not_valid_after_utc)
        .add_extension(san, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    payload = Certificate(CertEncoding.X509_SIGNATURE, certificate.public_bytes(Encoding.DER))
    with pytest.raises(AuthenticationError, match="neither RSA nor ECDSA"):
        authority.trust().authenticate((payload,), Identity.fqdn("peer.example"), INSIDE)
