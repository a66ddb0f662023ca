"""IKE messages: the header and the generic payload chain (RFC 7296 §3.1-3.2)."""

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from otwamp.errors import ProtocolError
from otwamp.ike.errors import UnsupportedCriticalPayload
from otwamp.ike.registry import HeaderFlag, PayloadType, is_error_notify
from otwamp.ike.wire.header import HEADER_LEN, IkeHeader
from otwamp.ike.wire.identity import IdInitiator, IdResponder
from otwamp.ike.wire.payloads import (
    Authentication,
    Certificate,
    CertificateRequest,
    Delete,
    Encrypted,
    KeyExchange,
    Nonce,
    Notify,
    OpaquePayload,
)
from otwamp.ike.wire.reader import Reader, check_range
from otwamp.ike.wire.sa import SecurityAssociation

Payload = (
    SecurityAssociation
    | KeyExchange
    | IdInitiator
    | IdResponder
    | Certificate
    | CertificateRequest
    | Authentication
    | Nonce
    | Notify
    | Delete
    | OpaquePayload
    | Encrypted
)

_P = TypeVar("_P")
_SECTION = "RFC 7296 §3.2"
_GENERIC_HEADER = struct.Struct("!BBH")
GENERIC_HEADER_LEN = _GENERIC_HEADER.size
_CRITICAL = 0x80
_MAX_PAYLOAD_LEN = 0xFFFF

_DECODERS: dict[int, Callable[[bytes], Payload]] = {
    PayloadType.SA: SecurityAssociation.decode_body,
    PayloadType.KE: KeyExchange.decode_body,
    PayloadType.IDI: IdInitiator.decode_body,
    PayloadType.IDR: IdResponder.decode_body,
    PayloadType.CERT: Certificate.decode_body,
    PayloadType.CERTREQ: CertificateRequest.decode_body,
    PayloadType.AUTH: Authentication.decode_body,
    PayloadType.NONCE: Nonce.decode_body,
    PayloadType.NOTIFY: Notify.decode_body,
    PayloadType.DELETE: Delete.decode_body,
}


def encode_payloads(payloads: tuple[Payload, ...]) -> tuple[int, bytes]:
    """Chain ``payloads``; return the first payload's type and the octets (RFC 7296 §3.2)."""
    chunks: list[bytes] = []
    for index, payload in enumerate(payloads):
        if isinstance(payload, Encrypted):
            # RFC 7296 §3.14: SK is last; its Next Payload names the first inner payload.
            if index != len(payloads) - 1:
                raise ValueError("the SK payload must be the last payload")
            next_type = payload.first_payload
        else:
            next_type = payloads[index + 1].payload_type if index + 1 < len(payloads) else 0
        body = payload.encode_body()
        if GENERIC_HEADER_LEN + len(body) > _MAX_PAYLOAD_LEN:
            raise ValueError("payload longer than 65535 octets")
        flags = _CRITICAL if isinstance(payload, OpaquePayload) and payload.critical else 0
        chunks.append(_GENERIC_HEADER.pack(next_type, flags, GENERIC_HEADER_LEN + len(body)))
        chunks.append(body)
    first = payloads[0].payload_type if payloads else PayloadType.NONE
    return first, b"".join(chunks)


def decode_payloads(first_type: int, data: bytes) -> tuple[Payload, ...]:
    """Parse a payload chain starting with ``first_type`` that fills ``data`` exactly."""
    reader = Reader(data, _SECTION)
    payloads: list[Payload] = []
    next_type = first_type
    while next_type != PayloadType.NONE:
        current = next_type
        next_type = reader.uint(1, "Next Payload")
        critical = bool(reader.uint(1, "Critical") & _CRITICAL)
        length = reader.uint(2, "Payload Length")
        check_range(
            length,
            GENERIC_HEADER_LEN,
            GENERIC_HEADER_LEN + reader.remaining,
            "Payload Length",
            _SECTION,
        )
        body = reader.take(length - GENERIC_HEADER_LEN, "Payload")
        if current == PayloadType.SK:
            payloads.append(Encrypted(next_type, body))
            break
        payloads.append(_decode_payload(current, body, critical))
    if reader.remaining:
        raise ProtocolError(
            f"{reader.remaining} octets after the last payload", field="Length", section=_SECTION
        )
    return tuple(payloads)


def _decode_payload(payload_type: int, body: bytes, critical: bool) -> Payload:
    """Decode one body; keep types we do not interpret, refuse unknown critical ones."""
    decoder = _DECODERS.get(payload_type)
    if decoder is not None:
        return decoder(body)
    known = payload_type in PayloadType._value2member_map_
    if critical and not known:
        raise UnsupportedCriticalPayload(payload_type)
    return OpaquePayload(payload_type, body, critical)


@dataclass(frozen=True)
class Message:
    """An IKE message: header fields and payloads; Next Payload and Length are computed."""

    spi_i: bytes
    spi_r: bytes
    exchange_type: int
    flags: HeaderFlag
    message_id: int
    payloads: tuple[Payload, ...]
    minor_version: int = 0

    @property
    def is_response(self) -> bool:
        """The R flag (RFC 7296 §3.1)."""
        return HeaderFlag.RESPONSE in self.flags

    def header(self, first_type: int, body_length: int) -> IkeHeader:
        """The header for a body of ``body_length`` octets starting with ``first_type``."""
        return IkeHeader(
            self.spi_i,
            self.spi_r,
            first_type,
            self.exchange_type,
            self.flags,
            self.message_id,
            HEADER_LEN + body_length,
            self.minor_version,
        )

    def encode(self) -> bytes:
        """Return the whole message."""
        first_type, body = encode_payloads(self.payloads)
        return self.header(first_type, len(body)).encode() + body

    @classmethod
    def decode(cls, data: bytes) -> "Message":
        """Parse a whole message; its Length must match ``data`` (RFC 7296 §3.1)."""
        header = IkeHeader.decode(data)
        if header.length != len(data):
            raise ProtocolError(
                f"{header.length} but the message has {len(data)} octets",
                field="Length",
                section="RFC 7296 §3.1",
            )
        payloads = decode_payloads(header.next_payload, data[HEADER_LEN:])
        return cls(
            header.spi_i,
            header.spi_r,
            header.exchange_type,
            header.flags,
            header.message_id,
            payloads,
            header.minor_version,
        )

    def find(self, kind: type[_P]) -> _P | None:
        """The first payload of class ``kind``, if any."""
        return next((p for p in self.payloads if isinstance(p, kind)), None)

    def error_notify(self) -> int | None:
        """The type of the first error notify, if any (RFC 7296 §3.10.1: below 16384)."""
        return next(
            (
                p.notify_type
                for p in self.payloads
                if isinstance(p, Notify) and is_error_notify(p.notify_type)
            ),
            None,
        )

    def notify(self, notify_type: int) -> Notify | None:
        """The first Notify of ``notify_type``, if any."""
        return next(
            (p for p in self.payloads if isinstance(p, Notify) and p.notify_type == notify_type),
            None,
        )
