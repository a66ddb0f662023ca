"""make demo: a throwaway CA and two ECDSA P-256 certificates for the IKEv2 demo.

Usage: python scripts/demo_certs.py DIR NAME... ; writes DIR/ca.pem and DIR/NAME.pem,
DIR/NAME.key for each NAME, whose subjectAltName is the DNS name NAME. Throwaway keys only.
"""

import datetime
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: str,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:  # RFC 5280 §4.2.1.3: a CA signs certificates; the verifier needs its key id
        builder = builder.add_extension(_usage(key_cert_sign=True), critical=True)
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    else:  # an IKE peer signs AUTH (RFC 7427) and is named by its subjectAltName
        builder = builder.add_extension(_usage(key_cert_sign=False), critical=True)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
        )
        authority = x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key())
        builder = builder.add_extension(authority, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _usage(key_cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not key_cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def main(directory: Path, names: list[str]) -> None:
    """Write the CA and one certificate and key per name."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("otwamp demo CA", ca_key.public_key(), "otwamp demo CA", ca_key, ca=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key.public_key(), "otwamp demo CA", ca_key, ca=False)
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path = directory / f"{name}.key"
        path.write_bytes(pem)
        path.chmod(0o600)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
