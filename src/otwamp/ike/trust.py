"""Certificates: credentials, trust anchors, chain validation, ID matching (RFC 7296 §3.6-3.7)."""

import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from otwamp.errors import AuthenticationError
from otwamp.ike.crypto.signature import PrivateKey, PublicKey
from otwamp.ike.registry import CertEncoding, IdType
from otwamp.ike.wire.identity import Identity
from otwamp.ike.wire.payloads import Certificate, CertificateRequest

_SECTION = "RFC 7296 §3.5"


@dataclass(frozen=True)
class Credentials:
    """Our end-entity certificate, the chain up to (not including) the anchor, and the key."""

    certificate: x509.Certificate
    private_key: PrivateKey = field(repr=False)
    chain: tuple[x509.Certificate, ...] = ()

    def payloads(self) -> tuple[Certificate, ...]:
        """CERT payloads, end entity first (RFC 7296 §3.6)."""
        return tuple(
            Certificate(CertEncoding.X509_SIGNATURE, cert.public_bytes(Encoding.DER))
            for cert in (self.certificate, *self.chain)
        )


@dataclass(frozen=True)
class TrustStore:
    """The CA certificates we accept peers' certificates from."""

    anchors: tuple[x509.Certificate, ...]

    def certificate_request(self) -> CertificateRequest:
        """CERTREQ naming our CAs by the SHA-1 of their public key info (RFC 7296 §3.7)."""
        return CertificateRequest(
            CertEncoding.X509_SIGNATURE, b"".join(_key_hash(a) for a in self.anchors)
        )

    def authenticate(
        self, certificates: tuple[Certificate, ...], identity: Identity, now: float
    ) -> PublicKey:
        """The peer's key, if its chain reaches an anchor at ``now`` and names ``identity``."""
        x509_certs = [c for c in certificates if c.encoding == CertEncoding.X509_SIGNATURE]
        if not x509_certs:
            raise AuthenticationError("no X.509 certificate", field="CERT", section="RFC 7296 §3.6")
        try:
            leaf, *intermediates = (x509.load_der_x509_certificate(c.data) for c in x509_certs)
            return self._verified_key(leaf, intermediates, identity, now)
        except (ValueError, UnsupportedAlgorithm):
            # Malformed DER, names or extensions surface lazily from cryptography.
            raise AuthenticationError(
                "undecodable certificate", field="CERT", section="RFC 7296 §3.6"
            ) from None

    def _verified_key(
        self,
        leaf: x509.Certificate,
        intermediates: list[x509.Certificate],
        identity: Identity,
        now: float,
    ) -> PublicKey:
        verifier = (
            PolicyBuilder()
            .store(Store(list(self.anchors)))
            .time(datetime.fromtimestamp(now, UTC))
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=ExtensionPolicy.permit_all(),  # IKE peers need no SAN or EKU
            )
            .build_client_verifier()
        )
        subject = leaf.subject.rfc4514_string()
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as error:
            raise AuthenticationError(
                f"untrusted certificate {subject}: {error}", field="CERT", section="RFC 7296 §3.6"
            ) from None
        if not names(leaf, identity):
            raise AuthenticationError(
                f"certificate {subject} does not name {identity}", field="ID", section=_SECTION
            )
        key = leaf.public_key()
        if not isinstance(key, PublicKey):
            raise AuthenticationError("neither RSA nor ECDSA key", field="CERT", section=_SECTION)
        return key


def _key_hash(certificate: x509.Certificate) -> bytes:
    """SHA-1 of the DER SubjectPublicKeyInfo (RFC 7296 §3.7)."""
    digest = hashes.Hash(hashes.SHA1())
    digest.update(
        certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    )
    return digest.finalize()


def names(certificate: x509.Certificate, identity: Identity) -> bool:
    """True when the certificate's subject or subjectAltName is ``identity`` (RFC 4945 §3.1)."""
    if identity.id_type == IdType.DER_ASN1_DN:
        return certificate.subject.public_bytes() == identity.data
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    if identity.id_type == IdType.FQDN:
        wanted = str(identity).lower()
        return any(n.lower() == wanted for n in san.get_values_for_type(x509.DNSName))
    if identity.id_type == IdType.RFC822_ADDR:
        return str(identity) in san.get_values_for_type(x509.RFC822Name)
    if identity.id_type in (IdType.IPV4_ADDR, IdType.IPV6_ADDR):
        return ipaddress.ip_address(identity.data) in san.get_values_for_type(x509.IPAddress)
    return False
