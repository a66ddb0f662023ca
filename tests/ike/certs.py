"""Throwaway CAs and end-entity certificates for tests."""

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from otwamp.ike.crypto.signature import PrivateKey
from otwamp.ike.trust import Credentials, TrustStore

NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
NOT_AFTER = datetime.datetime(2028, 1, 1, tzinfo=datetime.UTC)
INSIDE = datetime.datetime(2027, 1, 1, tzinfo=datetime.UTC).timestamp()
AFTER = datetime.datetime(2029, 1, 1, tzinfo=datetime.UTC).timestamp()


_CURVES = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}


def key(kind: str) -> PrivateKey:
    """A fresh ``p256``, ``p384``, ``p521``, ``rsa`` (2048 bits) or ``rsaBITS`` key."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(65537, int(kind[3:] or 2048))
    return ec.generate_private_key(_CURVES[kind])


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "IPPM Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
    )


class Authority:
    """A self-signed CA that issues end-entity certificates."""

    def __init__(self, name: str = "IPPM Test CA", parent: "Authority | None" = None) -> None:
        self.name = name
        self.key = key("p256")
        self.parent = parent
        signer = self if parent is None else parent
        usage = x509.KeyUsage(
            digital_signature=False,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        self.certificate = (
            _builder(name, signer.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False
            )
            .sign(signer.key, hashes.SHA256())
        )
        # Certificates below the root that a peer sends along (RFC 7296 §3.6).
        self.chain: tuple[x509.Certificate, ...] = (
            () if parent is None else (self.certificate, *parent.chain)
        )

    def trust(self) -> TrustStore:
        return TrustStore((self.certificate,))

    def issue(self, common_name: str, kind: str = "p256", *sans: str) -> Credentials:
        """Credentials for ``common_name``; ``sans`` are DNS names, e-mail (with @) or IPs."""
        private = key(kind)
        builder = _builder(common_name, self.name, private.public_key()).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
            critical=False,
        )
        if sans:
            names = [_general_name(s) for s in sans]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Credentials(builder.sign(self.key, hashes.SHA256()), private, self.chain)


def _general_name(text: str) -> x509.GeneralName:
    if "@" in text:
        return x509.RFC822Name(text)
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        return x509.DNSName(text)
