"""STAMP base test packets (RFC 8762 §4.2, §4.3) with the SSID of RFC 8972 §3.

Both directions have a 44-octet unauthenticated layout (Figures 2 and 5 of
RFC 8762) and a 112-octet authenticated one (Figures 4 and 6), whose HMAC
field, HMAC-SHA-256 truncated to 128 bits, covers the first 96 octets
(RFC 8762 §4.4). RFC 8972 §3 puts the two-octet SSID right after the Error
Estimate, in what RFC 8762 called MBZ; TLVs (RFC 8972 §4) follow the base
packet. MBZ fields are sent as zero and ignored on receipt (R1).

An unauthenticated packet shorter than 44 octets, down to the 14 of an
RFC 5357 TWAMP-Light sender packet, is a valid Session-Sender packet: a
STAMP Session-Reflector reflects it with a base packet (RFC 8762 §4.6).
"""

import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac

from otwamp.errors import ProtocolError
from otwamp.security.primitives import require_equal
from otwamp.wire.twamp_test import CorruptPacket

SECTION_SENDER = "RFC 8762 §4.2.1"
SECTION_SENDER_AUTH = "RFC 8762 §4.2.2"
SECTION_REFLECTOR = "RFC 8762 §4.3.1"
SECTION_REFLECTOR_AUTH = "RFC 8762 §4.3.2"
SECTION_HMAC = "RFC 8762 §4.4"

BASE_SIZE = 44  # unauthenticated base packet, both directions (RFC 8762 §4.2)
AUTH_SIZE = 112  # authenticated base packet, both directions (RFC 8762 §4.2)
HMAC_OFFSET = 96  # the HMAC covers the first six 16-octet blocks (RFC 8762 §4.4)
HMAC_SIZE = 16  # HMAC-SHA-256 truncated to 128 bits (RFC 8762 §4.4, RFC 4868)
TWAMP_LIGHT_SIZE = 14  # the smallest Session-Sender packet: RFC 5357 §4.1.2 without padding

# Session-Sender: Seq, Timestamp, Error Estimate, SSID, MBZ (RFC 8762 Figures 2, 4; RFC 8972 §3).
SENDER_OPEN = struct.Struct("!IQHH28x")
SENDER_AUTH = struct.Struct("!I12xQHH68x")
# Session-Reflector: Seq, Timestamp, Error Estimate, SSID, Receive Timestamp, Session-Sender
# Seq, Timestamp, Error Estimate, TTL (RFC 8762 Figures 5, 6; RFC 8972 §3).
REFLECTOR_OPEN = struct.Struct("!IQHHQIQH2xB3x")
REFLECTOR_AUTH = struct.Struct("!I12xQHH4xQ8xI12xQH6xB15x")
# The part of a TWAMP-Light sender packet every STAMP reflector reads (RFC 5357 §4.1.2).
TWAMP_LIGHT = struct.Struct("!IQH")
STAMP = struct.Struct("!QH")  # a packet's own Timestamp and Error Estimate


def stamp_offset(authenticated: bool) -> int:
    """Where a packet's own Timestamp is: after Seq, and 12 MBZ octets when authenticated."""
    return 16 if authenticated else 4


def base_size(authenticated: bool) -> int:
    """Octets of the base packet of the mode, HMAC included (RFC 8762 §4.2)."""
    return AUTH_SIZE if authenticated else BASE_SIZE


class StampHmac:
    """HMAC-SHA-256 truncated to 128 bits under one key (RFC 8762 §4.4).

    The key is set up once; each digest starts from a copy of the keyed
    template. The key never appears in a repr.
    """

    __slots__ = ("_template",)

    def __init__(self, key: bytes) -> None:
        if not key:
            raise ValueError("an HMAC key must not be empty")
        self._template = hmac.HMAC(key, hashes.SHA256())

    def __repr__(self) -> str:
        return "StampHmac(<key>)"

    def digest(self, *parts: bytes | bytearray | memoryview) -> bytes:
        """The truncated HMAC of the concatenation of ``parts``."""
        context = self._template.copy()
        for part in parts:
            context.update(bytes(part))
        return context.finalize()[:HMAC_SIZE]

    def check(
        self,
        mac: bytes | bytearray | memoryview,
        *parts: bytes | bytearray | memoryview,
        section: str = SECTION_HMAC,
    ) -> None:
        """Raise AuthenticationError unless ``mac`` is the HMAC of ``parts``."""
        require_equal(
            self.digest(*parts),
            bytes(mac),
            "HMAC does not match the packet",
            field="HMAC",
            section=section,
        )

    def seal(self, packet: bytearray) -> None:
        """Write the HMAC of an authenticated base packet's first 96 octets into its field."""
        packet[HMAC_OFFSET:AUTH_SIZE] = self.digest(memoryview(packet)[:HMAC_OFFSET])

    def verify(self, packet: bytes | bytearray | memoryview, section: str) -> None:
        """Check the HMAC of an authenticated base packet; ``section`` names its layout."""
        _too_short(packet, AUTH_SIZE, "authenticated packet", section)
        view = memoryview(packet)
        self.check(view[HMAC_OFFSET:AUTH_SIZE], view[:HMAC_OFFSET], section=section)


def _too_short(data: bytes | bytearray | memoryview, size: int, what: str, section: str) -> None:
    if len(data) < size:
        raise ProtocolError(
            f"expected at least {size} octets, got {len(data)}", field=what, section=section
        )


def check_multiplier(error: int, what: str, section: str) -> None:
    """Raise CorruptPacket for an Error Estimate with Multiplier 0 (RFC 4656 §4.1.2)."""
    if not error & 0xFF:
        raise CorruptPacket("Multiplier MUST NOT be zero", field=what, section=section)


@dataclass(frozen=True, slots=True)
class SenderPacket:
    """A Session-Sender test packet (RFC 8762 §4.2.1/§4.2.2, RFC 8972 §3 SSID).

    ``tlvs`` are the octets after the base packet (RFC 8972 §4), undecoded.
    """

    seq: int
    timestamp: int
    error: int
    ssid: int = 0
    tlvs: bytes = b""

    def encode(self, key: StampHmac | None = None) -> bytes:
        """The wire form; authenticated (HMAC filled in) when ``key`` is given."""
        if key is None:
            return SENDER_OPEN.pack(self.seq, self.timestamp, self.error, self.ssid) + self.tlvs
        packet = bytearray(SENDER_AUTH.pack(self.seq, self.timestamp, self.error, self.ssid))
        packet += bytes(HMAC_SIZE)
        key.seal(packet)
        return bytes(packet) + self.tlvs

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, key: StampHmac | None = None
    ) -> "SenderPacket":
        """Decode and, with ``key``, authenticate; a short unauthenticated one is TWAMP Light."""
        if key is not None:
            key.verify(data, SECTION_SENDER_AUTH)
            seq, timestamp, error, ssid = SENDER_AUTH.unpack_from(data)
            check_multiplier(error, "Error Estimate", SECTION_SENDER_AUTH)
            return cls(seq, timestamp, error, ssid, bytes(data[AUTH_SIZE:]))
        _too_short(data, TWAMP_LIGHT_SIZE, "Session-Sender packet", SECTION_SENDER)
        if len(data) < BASE_SIZE:  # RFC 8762 §4.6: a TWAMP-Light sender packet
            seq, timestamp, error = TWAMP_LIGHT.unpack_from(data)
            ssid = 0
            tlvs = b""
        else:
            seq, timestamp, error, ssid = SENDER_OPEN.unpack_from(data)
            tlvs = bytes(data[BASE_SIZE:])
        check_multiplier(error, "Error Estimate", SECTION_SENDER)
        return cls(seq, timestamp, error, ssid, tlvs)


@dataclass(frozen=True, slots=True)
class ReflectorPacket:
    """A Session-Reflector test packet (RFC 8762 §4.3.1/§4.3.2, RFC 8972 §3 SSID)."""

    seq: int
    timestamp: int
    error: int
    ssid: int
    receive_timestamp: int
    sender_seq: int
    sender_timestamp: int
    sender_error: int
    sender_ttl: int
    tlvs: bytes = b""

    def fields(self) -> tuple[int, ...]:
        """The fixed fields in wire order."""
        return (
            self.seq,
            self.timestamp,
            self.error,
            self.ssid,
            self.receive_timestamp,
            self.sender_seq,
            self.sender_timestamp,
            self.sender_error,
            self.sender_ttl,
        )

    def encode(self, key: StampHmac | None = None) -> bytes:
        """The wire form; authenticated (HMAC filled in) when ``key`` is given."""
        if key is None:
            return REFLECTOR_OPEN.pack(*self.fields()) + self.tlvs
        packet = bytearray(REFLECTOR_AUTH.pack(*self.fields())) + bytes(HMAC_SIZE)
        key.seal(packet)
        return bytes(packet) + self.tlvs

    @classmethod
    def decode(
        cls, data: bytes | bytearray | memoryview, key: StampHmac | None = None
    ) -> "ReflectorPacket":
        """Decode and, with ``key``, authenticate a reflected packet."""
        if key is not None:
            key.verify(data, SECTION_REFLECTOR_AUTH)
            layout, size, section = REFLECTOR_AUTH, AUTH_SIZE, SECTION_REFLECTOR_AUTH
        else:
            layout, size, section = REFLECTOR_OPEN, BASE_SIZE, SECTION_REFLECTOR
        _too_short(data, size, "Session-Reflector packet", section)
        seq, ts, error, ssid, t2, s_seq, s_ts, s_error, ttl = layout.unpack_from(data)
        check_multiplier(error, "Error Estimate", section)
        check_multiplier(s_error, "Session-Sender Error Estimate", section)
        return cls(seq, ts, error, ssid, t2, s_seq, s_ts, s_error, ttl, bytes(data[size:]))
