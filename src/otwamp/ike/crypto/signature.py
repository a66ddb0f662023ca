"""AUTH by digital signature: RFC 7427 (method 14), RSA (method 1) and ECDSA (RFC 4754)."""

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from otwamp.errors import AuthenticationError
from otwamp.ike.registry import AuthMethod, HashAlgorithm
from otwamp.ike.wire.payloads import Authentication

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class SignatureAlgorithm:
    """An AlgorithmIdentifier of RFC 7427 Appendix A and what it means."""

    der: bytes
    hash_id: int
    ecdsa: bool

    def hash(self) -> hashes.HashAlgorithm:
        """The hash function instance."""
        return _HASHES[self.hash_id]()


_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    HashAlgorithm.SHA1: hashes.SHA1,
    HashAlgorithm.SHA2_256: hashes.SHA256,
    HashAlgorithm.SHA2_384: hashes.SHA384,
    HashAlgorithm.SHA2_512: hashes.SHA512,
}

# RFC 7427 Appendix A.1 (PKCS#1 v1.5, NULL parameters) and A.3 (ECDSA, no parameters).
ALGORITHMS = (
    SignatureAlgorithm(bytes.fromhex("300a06082a8648ce3d040302"), HashAlgorithm.SHA2_256, True),
    SignatureAlgorithm(bytes.fromhex("300a06082a8648ce3d040303"), HashAlgorithm.SHA2_384, True),
    SignatureAlgorithm(bytes.fromhex("300a06082a8648ce3d040304"), HashAlgorithm.SHA2_512, True),
    SignatureAlgorithm(
        bytes.fromhex("300d06092a864886f70d01010b0500"), HashAlgorithm.SHA2_256, False
    ),
    SignatureAlgorithm(
        bytes.fromhex("300d06092a864886f70d01010c0500"), HashAlgorithm.SHA2_384, False
    ),
    SignatureAlgorithm(
        bytes.fromhex("300d06092a864886f70d01010d0500"), HashAlgorithm.SHA2_512, False
    ),
)
SUPPORTED_HASHES = (HashAlgorithm.SHA2_256, HashAlgorithm.SHA2_384, HashAlgorithm.SHA2_512)
# Key sizes up to which a hash matches the key's security strength (NIST SP 800-57 Part 1
# Rev. 5, Tables 2 and 3: P-256 and RSA-3072 give 128 bits, P-384 and RSA-7680 192 bits);
# beyond them, SHA-512. strongSwan chooses the same way.
_HASH_FOR_SIZE: dict[bool, tuple[tuple[int, int], ...]] = {
    True: ((256, HashAlgorithm.SHA2_256), (384, HashAlgorithm.SHA2_384)),
    False: ((3072, HashAlgorithm.SHA2_256), (7680, HashAlgorithm.SHA2_384)),
}

# RFC 4754 §7 (methods 9-11): hash, and r and s as fixed-length integers.
_ECDSA_METHODS: dict[int, tuple[type[hashes.HashAlgorithm], int]] = {
    AuthMethod.ECDSA_SHA256_P256: (hashes.SHA256, 32),
    AuthMethod.ECDSA_SHA384_P384: (hashes.SHA384, 48),
    AuthMethod.ECDSA_SHA512_P521: (hashes.SHA512, 66),
}
_ECDSA_METHOD_OF_CURVE = {
    "secp256r1": AuthMethod.ECDSA_SHA256_P256,
    "secp384r1": AuthMethod.ECDSA_SHA384_P384,
    "secp521r1": AuthMethod.ECDSA_SHA512_P521,
}


def strength_hash(key: PrivateKey) -> int:
    """The hash that matches the key's security strength: SHA-256 for P-256 and RSA up to
    3072 bits, SHA-384 for P-384 and RSA up to 7680 bits, SHA-512 above (NIST SP 800-57)."""
    ecdsa = isinstance(key, ec.EllipticCurvePrivateKey)
    size = key.curve.key_size if isinstance(key, ec.EllipticCurvePrivateKey) else key.key_size
    return next((h for most, h in _HASH_FOR_SIZE[ecdsa] if size <= most), HashAlgorithm.SHA2_512)


def choose_hash(key: PrivateKey, peer_hashes: tuple[int, ...]) -> int:
    """The hash for our signature, one the peer announced (RFC 7427 §4: a peer "MUST pick one
    algorithm sent by the other peer"): the key's strength_hash, else the weakest stronger
    one, else the strongest weaker one; AuthenticationError if we share none."""
    common = [h for h in SUPPORTED_HASHES if h in peer_hashes]  # weakest first
    if not common:
        announced = ", ".join(_hash_name(h) for h in peer_hashes)
        raise AuthenticationError(
            f"no common signature hash: the peer announced {announced}, we sign with "
            + ", ".join(_hash_name(h) for h in SUPPORTED_HASHES),
            field="SIGNATURE_HASH_ALGORITHMS",
            section="RFC 7427 §4",
        )
    wanted = strength_hash(key)
    return next((h for h in common if h >= wanted), common[-1])


def _hash_name(hash_id: int) -> str:
    try:
        return HashAlgorithm(hash_id).name
    except ValueError:
        return str(hash_id)


def auth_payload(key: PrivateKey, octets: bytes, peer_hashes: tuple[int, ...]) -> Authentication:
    """Our signature AUTH payload: RFC 7427 if the peer announced hashes, else the method the
    peer must know for our key (RFC 7296 §3.8: RSA with SHA-1; RFC 4754 §7: ECDSA methods)."""
    if peer_hashes:
        return sign(key, octets, choose_hash(key, peer_hashes))
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(octets, padding.PKCS1v15(), hashes.SHA1())
        return Authentication(AuthMethod.RSA_SIGNATURE, signature)
    method = _ECDSA_METHOD_OF_CURVE.get(key.curve.name)
    if method is None:
        raise AuthenticationError(
            f"the peer announced no hashes for RFC 7427 and no method fits a {key.curve.name} key",
            field="SIGNATURE_HASH_ALGORITHMS",
            section="RFC 7427 §4",
        )
    hash_type, size = _ECDSA_METHODS[method]
    r, s = decode_dss_signature(key.sign(octets, ec.ECDSA(hash_type())))
    return Authentication(method, r.to_bytes(size, "big") + s.to_bytes(size, "big"))


def sign(key: PrivateKey, octets: bytes, hash_id: int) -> Authentication:
    """A method-14 AUTH payload: ASN.1 length | AlgorithmIdentifier | signature (RFC 7427 §3)."""
    is_ecdsa = isinstance(key, ec.EllipticCurvePrivateKey)
    algorithm = next(a for a in ALGORITHMS if a.hash_id == hash_id and a.ecdsa == is_ecdsa)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(octets, ec.ECDSA(algorithm.hash()))  # DER ECDSA-Sig-Value
    else:
        signature = key.sign(octets, padding.PKCS1v15(), algorithm.hash())
    data = bytes([len(algorithm.der)]) + algorithm.der + signature
    return Authentication(AuthMethod.DIGITAL_SIGNATURE, data)


def verify(key: PublicKey, octets: bytes, auth: Authentication) -> None:
    """Raise AuthenticationError unless ``auth`` signs ``octets`` with ``key``."""
    try:
        _verify(key, octets, auth)
    except InvalidSignature:
        raise AuthenticationError(
            "signature does not verify", field="Authentication Data", section="RFC 7296 §2.15"
        ) from None


def _verify(key: PublicKey, octets: bytes, auth: Authentication) -> None:
    if auth.method == AuthMethod.DIGITAL_SIGNATURE:
        algorithm, signature = _split_rfc7427(auth.data)
        if algorithm.ecdsa and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, octets, ec.ECDSA(algorithm.hash()))
            return
        if not algorithm.ecdsa and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, octets, padding.PKCS1v15(), algorithm.hash())
            return
        raise _mismatch("the AlgorithmIdentifier does not fit the certificate's key")
    if auth.method == AuthMethod.RSA_SIGNATURE and isinstance(key, rsa.RSAPublicKey):
        # RFC 7296 §3.8: EMSA-PKCS1-v1_5 with SHA-1.
        key.verify(auth.data, octets, padding.PKCS1v15(), hashes.SHA1())
        return
    if auth.method in _ECDSA_METHODS and isinstance(key, ec.EllipticCurvePublicKey):
        hash_type, size = _ECDSA_METHODS[auth.method]
        if len(auth.data) != 2 * size:
            raise AuthenticationError(
                "ECDSA signature is not r | s", field="Authentication Data", section="RFC 4754 §7"
            )
        r = int.from_bytes(auth.data[:size], "big")
        s = int.from_bytes(auth.data[size:], "big")
        key.verify(encode_dss_signature(r, s), octets, ec.ECDSA(hash_type()))
        return
    raise _mismatch(f"method {auth.method} does not fit the certificate's key")


def _split_rfc7427(data: bytes) -> tuple[SignatureAlgorithm, bytes]:
    """ASN.1 length (1 octet), AlgorithmIdentifier, signature (RFC 7427 §3)."""
    length = data[0] if data else 0
    der = data[1 : 1 + length]
    algorithm = next((a for a in ALGORITHMS if a.der == der), None)
    if algorithm is None:
        raise _mismatch("unsupported AlgorithmIdentifier")
    return algorithm, data[1 + length :]


def _mismatch(message: str) -> AuthenticationError:
    return AuthenticationError(message, field="Authentication Data", section="RFC 7427 §3")
