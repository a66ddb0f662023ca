"""Diffie-Hellman groups 14, 15 (RFC 3526), 19-21 (RFC 5903), 31 and 32 (RFC 8031)."""

import warnings
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric import ec, x448, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.utils import CryptographyDeprecationWarning

from otwamp.errors import ProtocolError
from otwamp.ike.crypto.entropy import RandomSource
from otwamp.ike.registry import DhGroup

with warnings.catch_warnings():
    # cryptography deprecates finite-field DH, but RFC 7296 peers still offer MODP groups.
    warnings.simplefilter("ignore", CryptographyDeprecationWarning)
    from cryptography.hazmat.primitives.asymmetric.dh import (
        DHParameterNumbers,
        DHPrivateKey,
        DHPrivateNumbers,
        DHPublicNumbers,
    )

_SECTION = "RFC 7296 §3.4"

# RFC 3526 §3 and §4: p = 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + k), generator 2.
MODP_PRIMES: dict[int, int] = {
    DhGroup.MODP_2048: int(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
        "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
        "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
        "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
        "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
        "955817183995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
        16,
    ),
    DhGroup.MODP_3072: int(
        "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A0879"
        "8E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B"
        "0BFF5CB6F406B7EDEE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA4836"
        "1C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804"
        "F1746C08CA18217C32905E462E36CE3BE39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6"
        "955817183995497CEA956AE515D2261898FA051015728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
        "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7ABF5AE8CDB0933D71E8C94E04A25619DCEE3D226"
        "1AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200CBBE117577A615D6C770988C0BAD946E2"
        "08E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
        16,
    ),
}
_MODP_GENERATOR = 2
_MODP_EXPONENT_BITS = 512  # well above twice the groups' strength (RFC 3526 §8)

# Curve and group order n of the ECP groups (RFC 5903 §3, FIPS 186-4 D.1.2).
_ECP: dict[int, tuple[ec.EllipticCurve, int]] = {
    DhGroup.ECP_256: (
        ec.SECP256R1(),
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    DhGroup.ECP_384: (
        ec.SECP384R1(),
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196A"
            "CCC52973",
            16,
        ),
    ),
    DhGroup.ECP_521: (
        ec.SECP521R1(),
        int(
            "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC"
            "0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
}
_XDH_LEN: dict[int, int] = {DhGroup.CURVE25519: 32, DhGroup.CURVE448: 56}  # RFC 8031 §3
_ECP_ATTEMPTS = 64  # each fails with probability below 2^-32 for a working random source


class DhPrivate(Protocol):
    """Our half of a Diffie-Hellman exchange."""

    @property
    def group(self) -> int:
        """The group transform ID."""
        ...

    @property
    def public_value(self) -> bytes:
        """The Key Exchange Data of our KE payload."""
        ...

    def shared_secret(self, peer_value: bytes) -> bytes:
        """g^ir from the peer's Key Exchange Data; bad values raise ProtocolError."""
        ...


def supported_groups() -> tuple[int, ...]:
    """The groups this module implements."""
    return (*MODP_PRIMES, *_ECP, *_XDH_LEN)


def generate(group: int, random: RandomSource) -> DhPrivate:
    """A fresh private value for ``group`` drawn from ``random``."""
    if group in MODP_PRIMES:
        return _Modp.generate(group, random)
    if group in _ECP:
        return _Ecp.generate(group, random)
    if group in _XDH_LEN:
        return _Xdh.generate(group, random)
    raise ProtocolError(f"unsupported group {group}", field="DH", section="RFC 7296 §3.3.2")


def _check_length(value: bytes, expected: int, section: str) -> None:
    if len(value) != expected:
        raise ProtocolError(
            f"{len(value)} octets, expected {expected}",
            field="Key Exchange Data",
            section=section,
        )


@dataclass(frozen=True)
class _Modp:
    """A MODP group; values are padded to the prime's length (RFC 7296 §3.4)."""

    group: int
    key: DHPrivateKey

    @classmethod
    def generate(cls, group: int, random: RandomSource) -> "_Modp":
        prime = MODP_PRIMES[group]
        exponent = int.from_bytes(random(_MODP_EXPONENT_BITS // 8), "big") | 1 << (
            _MODP_EXPONENT_BITS - 1
        )
        params = DHParameterNumbers(prime, _MODP_GENERATOR)
        public = DHPublicNumbers(pow(_MODP_GENERATOR, exponent, prime), params)
        return cls(group, DHPrivateNumbers(exponent, public).private_key())

    @property
    def _size(self) -> int:
        return (MODP_PRIMES[self.group].bit_length() + 7) // 8

    @property
    def public_value(self) -> bytes:
        return self.key.public_key().public_numbers().y.to_bytes(self._size, "big")

    def shared_secret(self, peer_value: bytes) -> bytes:
        _check_length(peer_value, self._size, _SECTION)
        prime = MODP_PRIMES[self.group]
        y = int.from_bytes(peer_value, "big")
        if not 1 < y < prime - 1:
            # RFC 6989 §2.1: reject 0, 1 and p-1.
            raise ProtocolError("out of range", field="Key Exchange Data", section="RFC 6989 §2.1")
        peer = DHPublicNumbers(y, DHParameterNumbers(prime, _MODP_GENERATOR)).public_key()
        return self.key.exchange(peer).rjust(self._size, b"\x00")


@dataclass(frozen=True)
class _Ecp:
    """An ECP group: KE carries x | y, g^ir is x (RFC 5903 §7)."""

    group: int
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, group: int, random: RandomSource) -> "_Ecp":
        curve, order = _ECP[group]
        size = (order.bit_length() + 7) // 8
        mask = (1 << order.bit_length()) - 1
        for _ in range(_ECP_ATTEMPTS):  # rejection sampling of a scalar in [1, n-1]
            scalar = int.from_bytes(random(size), "big") & mask
            if 0 < scalar < order:
                return cls(group, ec.derive_private_key(scalar, curve))
        raise ValueError("the random source yields no scalar in [1, n-1]")

    @property
    def _coordinate_len(self) -> int:
        return (self.key.curve.key_size + 7) // 8

    @property
    def public_value(self) -> bytes:
        point = self.key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        return point[1:]

    def shared_secret(self, peer_value: bytes) -> bytes:
        _check_length(peer_value, 2 * self._coordinate_len, "RFC 5903 §7")
        try:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(
                self.key.curve, b"\x04" + peer_value
            )
        except ValueError:
            # RFC 6989 §2.3: the peer's point must be on the curve.
            raise ProtocolError(
                "not a point on the curve", field="Key Exchange Data", section="RFC 6989 §2.3"
            ) from None
        return self.key.exchange(ec.ECDH(), peer)


@dataclass(frozen=True)
class _Xdh:
    """Curve25519 or Curve448: 32- or 56-octet values, all-zero results refused (RFC 8031 §2-3)."""

    group: int
    key: x25519.X25519PrivateKey | x448.X448PrivateKey

    @classmethod
    def generate(cls, group: int, random: RandomSource) -> "_Xdh":
        private = random(_XDH_LEN[group])  # RFC 7748 §5: any octets; X25519/X448 clamp them
        if group == DhGroup.CURVE25519:
            return cls(group, x25519.X25519PrivateKey.from_private_bytes(private))
        return cls(group, x448.X448PrivateKey.from_private_bytes(private))

    @property
    def public_value(self) -> bytes:
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def shared_secret(self, peer_value: bytes) -> bytes:
        _check_length(peer_value, _XDH_LEN[self.group], "RFC 8031 §3")
        try:
            if isinstance(self.key, x25519.X25519PrivateKey):
                return self.key.exchange(x25519.X25519PublicKey.from_public_bytes(peer_value))
            return self.key.exchange(x448.X448PublicKey.from_public_bytes(peer_value))
        except ValueError:
            raise ProtocolError(
                "all-zero shared secret", field="Key Exchange Data", section="RFC 8031 §2"
            ) from None
