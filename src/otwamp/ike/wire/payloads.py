"""The IKEv2 payloads other than SA and ID (RFC 7296 §3.4, §3.6-3.11, §3.14)."""

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Self

from otwamp.errors import ProtocolError
from otwamp.ike.registry import (
    AuthMethod,
    CertEncoding,
    DhGroup,
    NotifyType,
    PayloadType,
    ProtocolId,
    lookup,
)
from otwamp.ike.wire.reader import Reader, check_range

SHA1_LEN = 20


@dataclass(frozen=True)
class KeyExchange:
    """KE: the Diffie-Hellman group and public value (RFC 7296 §3.4)."""

    dh_group: int
    data: bytes
    payload_type: ClassVar[int] = PayloadType.KE

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return struct.pack("!HH", self.dh_group, 0) + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> "KeyExchange":
        """Parse the payload body."""
        reader = Reader(body, "RFC 7296 §3.4")
        dh_group = lookup(DhGroup, reader.uint(2, "Diffie-Hellman Group Num"))
        reader.take(2, "RESERVED")
        return cls(dh_group, reader.rest())


@dataclass(frozen=True)
class Nonce:
    """Ni or Nr: 16 to 256 random octets (RFC 7296 §3.9)."""

    data: bytes
    payload_type: ClassVar[int] = PayloadType.NONCE

    def __post_init__(self) -> None:
        check_range(len(self.data), 16, 256, "Nonce Data", "RFC 7296 §3.9")

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return self.data

    @classmethod
    def decode_body(cls, body: bytes) -> "Nonce":
        """Parse the payload body."""
        return cls(body)


@dataclass(frozen=True)
class _EncodedData:
    """A one-octet encoding followed by data, as in CERT and CERTREQ (RFC 7296 §3.6-3.7)."""

    encoding: int
    data: bytes

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return bytes([self.encoding]) + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> Self:
        """Parse the payload body."""
        reader = Reader(body, "RFC 7296 §3.6")
        encoding = lookup(CertEncoding, reader.uint(1, "Cert Encoding"))
        return cls(encoding, reader.rest())


@dataclass(frozen=True)
class Certificate(_EncodedData):
    """CERT: one certificate, DER for X.509 Signature (RFC 7296 §3.6)."""

    payload_type: ClassVar[int] = PayloadType.CERT


@dataclass(frozen=True)
class CertificateRequest(_EncodedData):
    """CERTREQ: for X.509, concatenated SHA-1 hashes of trusted CA keys (RFC 7296 §3.7)."""

    payload_type: ClassVar[int] = PayloadType.CERTREQ

    def __post_init__(self) -> None:
        if self.encoding == CertEncoding.X509_SIGNATURE and len(self.data) % SHA1_LEN:
            raise ProtocolError(
                f"{len(self.data)} octets is not a list of SHA-1 hashes",
                field="Certification Authority",
                section="RFC 7296 §3.7",
            )

    @property
    def authorities(self) -> tuple[bytes, ...]:
        """The SHA-1 hashes of the CAs' SubjectPublicKeyInfo (RFC 7296 §3.7)."""
        return tuple(self.data[i : i + SHA1_LEN] for i in range(0, len(self.data), SHA1_LEN))


@dataclass(frozen=True)
class Authentication:
    """AUTH: the method and its authentication data (RFC 7296 §3.8)."""

    method: int
    data: bytes
    payload_type: ClassVar[int] = PayloadType.AUTH

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return struct.pack("!B3x", self.method) + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> "Authentication":
        """Parse the payload body."""
        reader = Reader(body, "RFC 7296 §3.8")
        method = lookup(AuthMethod, reader.uint(1, "Auth Method"))
        reader.take(3, "RESERVED")
        return cls(method, reader.rest())


def _check_length(low: int, high: int) -> Callable[[bytes], None]:
    def check(data: bytes) -> None:
        check_range(len(data), low, high, "Notification Data", "RFC 7296 §3.10.1")

    return check


def _check_pairs(data: bytes) -> None:
    if len(data) % 2:
        raise ProtocolError("odd length", field="Notification Data", section="RFC 7427 §4")


# Notification Data rules of the types we interpret (RFC 7296 §2.6, §2.23, §3.10.1; RFC 7427 §4).
_DATA_RULES: dict[int, Callable[[bytes], None]] = {
    NotifyType.COOKIE: _check_length(1, 64),
    NotifyType.INVALID_KE_PAYLOAD: _check_length(2, 2),
    NotifyType.NAT_DETECTION_SOURCE_IP: _check_length(SHA1_LEN, SHA1_LEN),
    NotifyType.NAT_DETECTION_DESTINATION_IP: _check_length(SHA1_LEN, SHA1_LEN),
    NotifyType.SIGNATURE_HASH_ALGORITHMS: _check_pairs,
}


@dataclass(frozen=True)
class Notify:
    """N: an error or status notification (RFC 7296 §3.10)."""

    notify_type: int
    data: bytes = b""
    protocol_id: int = 0
    spi: bytes = b""
    payload_type: ClassVar[int] = PayloadType.NOTIFY

    def __post_init__(self) -> None:
        rule = _DATA_RULES.get(self.notify_type)
        if rule is not None:
            rule(self.data)

    @classmethod
    def invalid_ke(cls, dh_group: int) -> "Notify":
        """INVALID_KE_PAYLOAD naming the group the responder wants (RFC 7296 §3.10.1)."""
        return cls(NotifyType.INVALID_KE_PAYLOAD, dh_group.to_bytes(2, "big"))

    @classmethod
    def hash_algorithms(cls, algorithms: tuple[int, ...]) -> "Notify":
        """SIGNATURE_HASH_ALGORITHMS listing ``algorithms`` (RFC 7427 §4)."""
        data = b"".join(a.to_bytes(2, "big") for a in algorithms)
        return cls(NotifyType.SIGNATURE_HASH_ALGORITHMS, data)

    @property
    def dh_group(self) -> int:
        """The accepted group of INVALID_KE_PAYLOAD (RFC 7296 §3.10.1)."""
        return lookup(DhGroup, int.from_bytes(self.data, "big"))

    @property
    def algorithms(self) -> tuple[int, ...]:
        """The hash algorithms of SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4)."""
        return tuple(
            int.from_bytes(self.data[i : i + 2], "big") for i in range(0, len(self.data), 2)
        )

    def encode_body(self) -> bytes:
        """Return the payload body."""
        head = struct.pack("!BBH", self.protocol_id, len(self.spi), self.notify_type)
        return head + self.spi + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> "Notify":
        """Parse the payload body."""
        reader = Reader(body, "RFC 7296 §3.10")
        protocol_id = reader.uint(1, "Protocol ID")
        spi_size = reader.uint(1, "SPI Size")
        notify_type = lookup(NotifyType, reader.uint(2, "Notify Message Type"))
        spi = reader.take(spi_size, "SPI")
        return cls(notify_type, reader.rest(), protocol_id, spi)


@dataclass(frozen=True)
class Delete:
    """D: SAs to delete; for the IKE SA itself, no SPIs (RFC 7296 §3.11)."""

    protocol_id: int = ProtocolId.IKE
    spis: tuple[bytes, ...] = ()
    payload_type: ClassVar[int] = PayloadType.DELETE

    def encode_body(self) -> bytes:
        """Return the payload body."""
        spi_size = len(self.spis[0]) if self.spis else 0
        head = struct.pack("!BBH", self.protocol_id, spi_size, len(self.spis))
        return head + b"".join(self.spis)

    @classmethod
    def decode_body(cls, body: bytes) -> "Delete":
        """Parse the payload body."""
        section = "RFC 7296 §3.11"
        reader = Reader(body, section)
        protocol_id = lookup(ProtocolId, reader.uint(1, "Protocol ID"))
        spi_size = reader.uint(1, "SPI Size")
        count = reader.uint(2, "Num of SPIs")
        if protocol_id == ProtocolId.IKE and (spi_size or count):
            raise ProtocolError("must be 0 for the IKE SA", field="SPI Size", section=section)
        if spi_size == 0 and count:
            raise ProtocolError("SPIs of size 0", field="Num of SPIs", section=section)
        spis = tuple(reader.take(spi_size, "Security Parameter Index") for _ in range(count))
        if reader.remaining:
            raise ProtocolError("octets after the SPIs", field="Num of SPIs", section=section)
        return cls(protocol_id, spis)


@dataclass(frozen=True)
class OpaquePayload:
    """A payload kept as bytes: types we do not interpret, or unknown non-critical ones.

    RFC 7296 §2.5: unknown payloads without the critical bit are skipped.
    """

    payload_type: int
    data: bytes
    critical: bool = False

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return self.data


@dataclass(frozen=True)
class Encrypted:
    """SK: IV, ciphertext and ICV, opaque at this layer (RFC 7296 §3.14).

    ``first_payload`` is the type of the first payload inside, carried in SK's Next Payload.
    """

    first_payload: int
    data: bytes
    payload_type: ClassVar[int] = PayloadType.SK

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return self.data
