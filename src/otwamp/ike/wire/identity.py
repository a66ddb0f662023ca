"""Identification payloads IDi and IDr (RFC 7296 §3.5)."""

import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Self

from otwamp.errors import ProtocolError
from otwamp.ike.registry import IdType, PayloadType, lookup
from otwamp.ike.wire.reader import Reader

_SECTION = "RFC 7296 §3.5"
_ADDRESS_LENGTHS: dict[int, int] = {IdType.IPV4_ADDR: 4, IdType.IPV6_ADDR: 16}
_TEXT_TYPES = (IdType.FQDN, IdType.RFC822_ADDR)


@dataclass(frozen=True)
class Identity:
    """An IKE identity: ID Type and Identification Data (RFC 7296 §3.5)."""

    id_type: int
    data: bytes

    def __post_init__(self) -> None:
        expected = _ADDRESS_LENGTHS.get(self.id_type)
        if expected is not None and len(self.data) != expected:
            raise ProtocolError(
                f"{len(self.data)} octets, expected {expected}",
                field="Identification Data",
                section=_SECTION,
            )
        if not self.data:
            raise ProtocolError("empty", field="Identification Data", section=_SECTION)
        if self.id_type in _TEXT_TYPES and not _is_printable_ascii(self.data):
            # RFC 7296 §3.5: FQDN and RFC822 are strings without terminators.
            raise ProtocolError(
                "not printable ASCII", field="Identification Data", section=_SECTION
            )

    @classmethod
    def fqdn(cls, name: str) -> "Identity":
        """An ID_FQDN identity."""
        return cls(IdType.FQDN, name.encode("ascii"))

    @classmethod
    def rfc822(cls, address: str) -> "Identity":
        """An ID_RFC822_ADDR identity."""
        return cls(IdType.RFC822_ADDR, address.encode("ascii"))

    @classmethod
    def address(cls, address: str) -> "Identity":
        """An ID_IPV4_ADDR or ID_IPV6_ADDR identity."""
        ip = ipaddress.ip_address(address)
        id_type = IdType.IPV4_ADDR if ip.version == 4 else IdType.IPV6_ADDR
        return cls(id_type, ip.packed)

    def __str__(self) -> str:
        if self.id_type in _ADDRESS_LENGTHS:
            return str(ipaddress.ip_address(self.data))
        if self.id_type in _TEXT_TYPES:
            return self.data.decode("ascii")
        kind = lookup(IdType, self.id_type)
        name = kind.name if isinstance(kind, IdType) else str(kind)
        return f"{name}:{self.data.hex()}"

    def encode_body(self) -> bytes:
        """Return ID Type, RESERVED and the data: the ID' of RFC 7296 §2.15."""
        return struct.pack("!B3x", self.id_type) + self.data

    @classmethod
    def decode_body(cls, body: bytes) -> "Identity":
        """Parse an ID payload body."""
        reader = Reader(body, _SECTION)
        id_type = lookup(IdType, reader.uint(1, "ID Type"))
        reader.take(3, "RESERVED")
        return cls(id_type, reader.rest())


def _is_printable_ascii(data: bytes) -> bool:
    return all(0x20 <= octet < 0x7F for octet in data)


@dataclass(frozen=True)
class _IdPayload:
    """The body shared by IDi and IDr (RFC 7296 §3.5)."""

    identity: Identity

    def encode_body(self) -> bytes:
        """Return the payload body."""
        return self.identity.encode_body()

    @classmethod
    def decode_body(cls, body: bytes) -> Self:
        """Parse the payload body."""
        return cls(Identity.decode_body(body))


@dataclass(frozen=True)
class IdInitiator(_IdPayload):
    """IDi: the initiator's identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[int] = PayloadType.IDI


@dataclass(frozen=True)
class IdResponder(_IdPayload):
    """IDr: the responder's identity (RFC 7296 §3.5)."""

    payload_type: ClassVar[int] = PayloadType.IDR
