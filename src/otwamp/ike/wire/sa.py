"""The Security Association payload: proposals, transforms, attributes (RFC 7296 §3.3)."""

import struct
from dataclasses import dataclass
from typing import ClassVar

from otwamp.errors import ProtocolError
from otwamp.ike.registry import AttributeType, PayloadType, ProtocolId, TransformType, lookup
from otwamp.ike.wire.reader import Reader, check_range

_SECTION = "RFC 7296 §3.3"
_MORE_PROPOSALS = 2  # RFC 7296 §3.3.1: Last Substruc
_MORE_TRANSFORMS = 3  # RFC 7296 §3.3.2: Last Substruc
_TV_FLAG = 0x8000  # RFC 7296 §3.3.5: Attribute Format bit
_SUBSTRUCT = struct.Struct("!BBH")


@dataclass(frozen=True)
class Attribute:
    """A transform attribute; ``tv`` selects the 2-octet TV format (RFC 7296 §3.3.5)."""

    attribute_type: int
    value: bytes
    tv: bool = True

    def encode(self) -> bytes:
        """Return the attribute octets."""
        if self.tv:
            return struct.pack("!H", _TV_FLAG | self.attribute_type) + self.value
        return struct.pack("!HH", self.attribute_type, len(self.value)) + self.value

    @classmethod
    def pull(cls, reader: Reader) -> "Attribute":
        """Read one attribute from ``reader``."""
        word = reader.uint(2, "Attribute Type")
        attribute_type = lookup(AttributeType, word & ~_TV_FLAG)
        if word & _TV_FLAG:
            return cls(attribute_type, reader.take(2, "Attribute Value"))
        length = reader.uint(2, "Attribute Length")
        return cls(attribute_type, reader.take(length, "Attribute Value"), tv=False)


@dataclass(frozen=True)
class Transform:
    """One transform of a proposal (RFC 7296 §3.3.2)."""

    transform_type: int
    transform_id: int
    attributes: tuple[Attribute, ...] = ()

    @classmethod
    def make(
        cls, transform_type: int, transform_id: int, key_bits: int | None = None
    ) -> "Transform":
        """Build a transform, with a Key Length attribute when ``key_bits`` is given."""
        if key_bits is None:
            return cls(transform_type, transform_id)
        key_length = Attribute(AttributeType.KEY_LENGTH, key_bits.to_bytes(2, "big"))
        return cls(transform_type, transform_id, (key_length,))

    @property
    def key_bits(self) -> int | None:
        """The Key Length attribute in bits, if present (RFC 7296 §3.3.5)."""
        for attribute in self.attributes:
            if attribute.attribute_type == AttributeType.KEY_LENGTH:
                return int.from_bytes(attribute.value, "big")
        return None

    def encode(self, last: bool) -> bytes:
        """Return the transform substructure octets."""
        body = struct.pack("!BBH", self.transform_type, 0, self.transform_id)
        body += b"".join(attribute.encode() for attribute in self.attributes)
        more = 0 if last else _MORE_TRANSFORMS
        return _SUBSTRUCT.pack(more, 0, _SUBSTRUCT.size + len(body)) + body

    @classmethod
    def decode(cls, data: bytes) -> "Transform":
        """Parse the transform body after its 4-octet substructure header."""
        reader = Reader(data, "RFC 7296 §3.3.2")
        transform_type = lookup(TransformType, reader.uint(1, "Transform Type"))
        reader.take(1, "RESERVED")
        transform_id = reader.uint(2, "Transform ID")
        attributes: list[Attribute] = []
        while reader.remaining:
            attributes.append(Attribute.pull(reader))
        return cls(transform_type, transform_id, tuple(attributes))


@dataclass(frozen=True)
class Proposal:
    """One proposal of an SA payload (RFC 7296 §3.3.1)."""

    number: int
    protocol_id: int
    transforms: tuple[Transform, ...]
    spi: bytes = b""

    def encode(self, last: bool) -> bytes:
        """Return the proposal substructure octets."""
        count = len(self.transforms)
        body = struct.pack("!BBBB", self.number, self.protocol_id, len(self.spi), count) + self.spi
        body += b"".join(t.encode(last=i == count - 1) for i, t in enumerate(self.transforms))
        more = 0 if last else _MORE_PROPOSALS
        return _SUBSTRUCT.pack(more, 0, _SUBSTRUCT.size + len(body)) + body

    @classmethod
    def decode(cls, data: bytes) -> "Proposal":
        """Parse the proposal body after its 4-octet substructure header."""
        section = "RFC 7296 §3.3.1"
        reader = Reader(data, section)
        number = reader.uint(1, "Proposal Num")
        protocol_id = lookup(ProtocolId, reader.uint(1, "Protocol ID"))
        spi_size = reader.uint(1, "SPI Size")
        count = reader.uint(1, "Num Transforms")
        spi = reader.take(spi_size, "SPI")
        bodies = _substructures(reader, _MORE_TRANSFORMS, "Transform", "RFC 7296 §3.3.2")
        if len(bodies) != count:
            raise ProtocolError(
                f"{count} announced, {len(bodies)} present", field="Num Transforms", section=section
            )
        return cls(number, protocol_id, tuple(Transform.decode(b) for b in bodies), spi)


@dataclass(frozen=True)
class SecurityAssociation:
    """The SA payload: a list of proposals (RFC 7296 §3.3)."""

    proposals: tuple[Proposal, ...]
    payload_type: ClassVar[int] = PayloadType.SA

    def encode_body(self) -> bytes:
        """Return the payload body."""
        count = len(self.proposals)
        return b"".join(p.encode(last=i == count - 1) for i, p in enumerate(self.proposals))

    @classmethod
    def decode_body(cls, body: bytes) -> "SecurityAssociation":
        """Parse the payload body."""
        bodies = _substructures(Reader(body, _SECTION), _MORE_PROPOSALS, "Proposal", _SECTION)
        if not bodies:
            raise ProtocolError("no proposal", field="Proposals", section=_SECTION)
        return cls(tuple(Proposal.decode(b) for b in bodies))


def _substructures(reader: Reader, more: int, name: str, section: str) -> list[bytes]:
    """Split ``reader``'s rest into substructure bodies chained by Last Substruc."""
    bodies: list[bytes] = []
    last = 0 if reader.remaining == 0 else more
    while last == more:
        last = reader.uint(1, f"{name} Last Substruc")
        if last not in (0, more):
            raise ProtocolError(
                f"{last}, expected 0 or {more}", field=f"{name} Last Substruc", section=section
            )
        reader.take(1, f"{name} RESERVED")
        length = reader.uint(2, f"{name} Length")
        check_range(length, _SUBSTRUCT.size, _SUBSTRUCT.size + reader.remaining, name, section)
        bodies.append(reader.take(length - _SUBSTRUCT.size, name))
    if reader.remaining:
        raise ProtocolError(
            f"{reader.remaining} octets after the last", field=f"{name}s", section=section
        )
    return bodies
