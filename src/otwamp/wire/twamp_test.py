"""TWAMP-Test packet layouts (RFC 5357 §4.1.2 and §4.2.1; RFC 4656 §4.1.2).

Two layouts per direction: unauthenticated (also used by mixed mode, RFC
5618 §3.2) and authenticated/encrypted, whose MBZ and HMAC fields make the
base sizes 48 (sender) and 112 (reflector, erratum 5045) octets. Encryption
and the HMAC are applied by ``otwamp.security`` over these octets; this
module handles only the fields. MBZ fields are ignored on receipt.
"""

import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import need_at_least

SECTION_SENDER = "RFC 5357 §4.1.2"
SECTION_REFLECTOR = "RFC 5357 §4.2.1"

# Unauthenticated: Seq, Timestamp, Error Estimate (RFC 4656 §4.1.2).
SENDER_OPEN = struct.Struct("!IQH")
# Authenticated/encrypted: Seq, MBZ 12, Timestamp, Error Estimate, MBZ 6, then HMAC 16.
SENDER_AUTH = struct.Struct("!I12xQH6x")
# Unauthenticated reflector: Seq, Timestamp, Error, MBZ 2, Receive Timestamp,
# Sender Seq, Sender Timestamp, Sender Error, MBZ 2, Sender TTL.
REFLECTOR_OPEN = struct.Struct("!IQH2xQIQH2xB")
# Authenticated/encrypted reflector, as above with MBZ padding to 96 octets, then HMAC 16.
REFLECTOR_AUTH = struct.Struct("!I12xQH6xQ8xI12xQH6xB15x")
HMAC_SIZE = 16

SENDER_OPEN_SIZE = SENDER_OPEN.size  # 14
SENDER_AUTH_SIZE = SENDER_AUTH.size + HMAC_SIZE  # 48
REFLECTOR_OPEN_SIZE = REFLECTOR_OPEN.size  # 41
REFLECTOR_AUTH_SIZE = REFLECTOR_AUTH.size + HMAC_SIZE  # 112
MAX_UDP_PAYLOAD = 65_507  # IPv4: 65535 - 20 (IP) - 8 (UDP)


def _check_multiplier(error: int, what: str, section: str) -> None:
    # RFC 4656 §4.1.2: a zero Multiplier marks the packet as corrupt.
    if error & 0xFF == 0:
        raise ProtocolError("Multiplier MUST NOT be zero", field=what, section=section)


@dataclass(frozen=True, slots=True)
class SenderPacket:
    """A Session-Sender test packet (RFC 4656 §4.1.2 via RFC 5357 §4.1.2)."""

    seq: int
    timestamp: int
    error: int
    padding: bytes = b""

    def encode(self, authenticated: bool = False) -> bytes:
        """Encode; in the authenticated layout the HMAC field is left zero."""
        if authenticated:
            head = SENDER_AUTH.pack(self.seq, self.timestamp, self.error) + bytes(HMAC_SIZE)
        else:
            head = SENDER_OPEN.pack(self.seq, self.timestamp, self.error)
        return head + self.padding

    @classmethod
    def decode(cls, data: bytes, authenticated: bool = False) -> "SenderPacket":
        """Decode a (decrypted) sender packet; padding is what follows the fields."""
        layout, size = (
            (SENDER_AUTH, SENDER_AUTH_SIZE) if authenticated else (SENDER_OPEN, SENDER_OPEN_SIZE)
        )
        need_at_least(data, size, "Session-Sender packet", SECTION_SENDER)
        seq, timestamp, error = layout.unpack_from(data)
        _check_multiplier(error, "Error Estimate", SECTION_SENDER)
        return cls(seq, timestamp, error, bytes(data[size:]))


@dataclass(frozen=True, slots=True)
class ReflectorPacket:
    """A Session-Reflector test packet (RFC 5357 §4.2.1)."""

    seq: int
    timestamp: int
    error: int
    receive_timestamp: int
    sender_seq: int
    sender_timestamp: int
    sender_error: int
    sender_ttl: int
    padding: bytes = b""

    def _fields(self) -> tuple[int, ...]:
        return (
            self.seq,
            self.timestamp,
            self.error,
            self.receive_timestamp,
            self.sender_seq,
            self.sender_timestamp,
            self.sender_error,
            self.sender_ttl,
        )

    def encode(self, authenticated: bool = False) -> bytes:
        """Encode; in the authenticated layout the HMAC field is left zero."""
        if authenticated:
            return REFLECTOR_AUTH.pack(*self._fields()) + bytes(HMAC_SIZE) + self.padding
        return REFLECTOR_OPEN.pack(*self._fields()) + self.padding

    @classmethod
    def decode(cls, data: bytes, authenticated: bool = False) -> "ReflectorPacket":
        """Decode a (decrypted) reflector packet; padding is what follows the fields."""
        if authenticated:
            layout, size = REFLECTOR_AUTH, REFLECTOR_AUTH_SIZE
        else:
            layout, size = REFLECTOR_OPEN, REFLECTOR_OPEN_SIZE
        need_at_least(data, size, "Session-Reflector packet", SECTION_REFLECTOR)
        seq, ts, err, rts, s_seq, s_ts, s_err, s_ttl = layout.unpack_from(data)
        _check_multiplier(err, "Error Estimate", SECTION_REFLECTOR)
        _check_multiplier(s_err, "Sender Error Estimate", SECTION_REFLECTOR)
        return cls(seq, ts, err, rts, s_seq, s_ts, s_err, s_ttl, bytes(data[size:]))


def sender_size(authenticated: bool, padding: int) -> int:
    """Octets in a sender packet with ``padding`` octets of Packet Padding."""
    return (SENDER_AUTH_SIZE if authenticated else SENDER_OPEN_SIZE) + padding


def reflector_size(authenticated: bool, sender_length: int) -> int:
    """Octets in a reply: the base size, or the sender's length if larger (D14)."""
    base = REFLECTOR_AUTH_SIZE if authenticated else REFLECTOR_OPEN_SIZE
    return max(base, sender_length)
