"""The IKE header (RFC 7296 §3.1)."""

import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.ike.registry import ExchangeType, HeaderFlag, lookup
from otwamp.ike.wire.reader import Reader

HEADER_LEN = 28
SPI_LEN = 8
MAJOR_VERSION = 2
_SECTION = "RFC 7296 §3.1"
_FORMAT = struct.Struct("!8s8sBBBBII")


@dataclass(frozen=True)
class IkeHeader:
    """The 28-octet IKE header; ``length`` covers the whole message."""

    spi_i: bytes
    spi_r: bytes
    next_payload: int
    exchange_type: int
    flags: HeaderFlag
    message_id: int
    length: int
    minor_version: int = 0

    @property
    def is_response(self) -> bool:
        """The R flag: this message is a response (RFC 7296 §3.1)."""
        return HeaderFlag.RESPONSE in self.flags

    @property
    def from_initiator(self) -> bool:
        """The I flag: sent by the original initiator of the IKE SA (RFC 7296 §3.1)."""
        return HeaderFlag.INITIATOR in self.flags

    def encode(self) -> bytes:
        """Return the 28 header octets."""
        version = MAJOR_VERSION << 4 | self.minor_version
        return _FORMAT.pack(
            self.spi_i,
            self.spi_r,
            self.next_payload,
            version,
            self.exchange_type,
            int(self.flags),
            self.message_id,
            self.length,
        )

    @classmethod
    def decode(cls, data: bytes) -> "IkeHeader":
        """Parse the header at the start of ``data``; the rest of ``data`` is not read."""
        reader = Reader(data, _SECTION)
        spi_i = reader.take(SPI_LEN, "Initiator's SPI")
        spi_r = reader.take(SPI_LEN, "Responder's SPI")
        next_payload = reader.uint(1, "Next Payload")
        version = reader.uint(1, "Version")
        if version >> 4 != MAJOR_VERSION:
            raise ProtocolError(
                f"major version {version >> 4}, expected 2", field="MjVer", section=_SECTION
            )
        exchange_type = lookup(ExchangeType, reader.uint(1, "Exchange Type"))
        flags = HeaderFlag(reader.uint(1, "Flags"))
        message_id = reader.uint(4, "Message ID")
        length = reader.uint(4, "Length")
        if length < HEADER_LEN:
            raise ProtocolError(f"{length} < {HEADER_LEN}", field="Length", section=_SECTION)
        return cls(
            spi_i, spi_r, next_payload, exchange_type, flags, message_id, length, version & 0x0F
        )
