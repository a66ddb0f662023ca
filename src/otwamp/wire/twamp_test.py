"""TWAMP-Test packet layouts (RFC 5357 §4.1.2 and §4.2.1; RFC 4656 §4.1.2).

Two layouts per direction: unauthenticated (also used by mixed mode, RFC
5618 §3.2) and authenticated/encrypted, whose MBZ and HMAC fields make the
base sizes 48 (sender) and 112 (reflector, erratum 5045) octets. Encryption
and the HMAC are applied by ``otwamp.security`` over these octets; this
module handles only the fields. MBZ fields are ignored on receipt. The
``Layout`` objects are the one codec of the fields: the session engines use
them on every packet, the dataclasses below build on them.
"""

import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import need_at_least

SECTION_SENDER = "RFC 5357 §4.1.2"
SECTION_REFLECTOR = "RFC 5357 §4.2.1"
HMAC_SIZE = 16
MAX_UDP_PAYLOAD = 65_507  # IPv4: 65535 - 20 (IP) - 8 (UDP)
STAMP = struct.Struct("!QH")  # Timestamp and Error Estimate, written just before sending


class CorruptPacket(ProtocolError):
    """An Error Estimate with Multiplier 0: the packet is corrupt (RFC 4656 §4.1.2)."""


class Layout:
    """The fixed fields of one test-packet layout: the one codec of engines and tests.

    ``unpack`` checks the length and each Error Estimate's Multiplier and
    returns the fields as a tuple, with no object per packet, because it runs
    on every packet received. ``fields`` is the precompiled struct of the
    fixed fields (MBZ skipped) for packing in place; ``size`` includes the
    HMAC field, if any; ``stamp_offset`` is where ``STAMP``, the packet's own
    Timestamp and Error Estimate, goes.
    """

    __slots__ = (
        "_first_estimate",
        "_hmac",
        "_last_estimate",
        "_names",
        "_section",
        "fields",
        "size",
        "stamp_offset",
        "what",
    )

    def __init__(
        self,
        fields: struct.Struct,
        hmac: bool,
        estimates: tuple[tuple[int, str], ...],
        what: str,
        section: str,
    ) -> None:
        self.fields = fields
        self._hmac = hmac
        self._names = dict(estimates)
        self._first_estimate = estimates[0][0]
        self._last_estimate = estimates[-1][0]
        self._section = section
        self.size = fields.size + (HMAC_SIZE if hmac else 0)
        self.stamp_offset = 16 if hmac else 4  # after Seq, and in secured layouts 12 MBZ octets
        self.what = what

    def renamed(self, what: str, section: str) -> "Layout":
        """The same layout, its errors naming ``what`` and ``section`` (e.g. OWAMP's)."""
        return Layout(self.fields, self._hmac, tuple(self._names.items()), what, section)

    def unpack(self, data: bytes) -> tuple[int, ...]:
        """The fixed fields of a (decrypted) packet; ``CorruptPacket`` for a zero Multiplier."""
        if len(data) < self.size:
            need_at_least(data, self.size, self.what, self._section)
        fields: tuple[int, ...] = self.fields.unpack_from(data)
        # Multiplier 0 means corrupt (RFC 4656 §4.1.2). At most two Error
        # Estimates per layout: unrolled, as this runs for every packet.
        if not fields[self._first_estimate] & 0xFF or not fields[self._last_estimate] & 0xFF:
            raise self._corrupt(fields)
        return fields

    def _corrupt(self, fields: tuple[int, ...]) -> CorruptPacket:
        index = next(index for index in self._names if not fields[index] & 0xFF)
        return CorruptPacket(
            "Multiplier MUST NOT be zero", field=self._names[index], section=self._section
        )


_SENDER_ESTIMATES = ((2, "Error Estimate"),)
_REFLECTOR_ESTIMATES = ((2, "Error Estimate"), (6, "Sender Error Estimate"))
# Unauthenticated: Seq, Timestamp, Error Estimate (RFC 4656 §4.1.2).
SENDER_OPEN = Layout(
    struct.Struct("!IQH"), False, _SENDER_ESTIMATES, "Session-Sender packet", SECTION_SENDER
)
# Authenticated/encrypted: Seq, MBZ 12, Timestamp, Error Estimate, MBZ 6, then HMAC 16.
SENDER_AUTH = Layout(
    struct.Struct("!I12xQH6x"), True, _SENDER_ESTIMATES, "Session-Sender packet", SECTION_SENDER
)
# Unauthenticated reflector: Seq, Timestamp, Error, MBZ 2, Receive Timestamp,
# Sender Seq, Sender Timestamp, Sender Error, MBZ 2, Sender TTL.
REFLECTOR_OPEN = Layout(
    struct.Struct("!IQH2xQIQH2xB"),
    False,
    _REFLECTOR_ESTIMATES,
    "Session-Reflector packet",
    SECTION_REFLECTOR,
)
# Authenticated/encrypted reflector, as above with MBZ padding to 96 octets, then HMAC 16.
REFLECTOR_AUTH = Layout(
    struct.Struct("!I12xQH6xQ8xI12xQH6xB15x"),
    True,
    _REFLECTOR_ESTIMATES,
    "Session-Reflector packet",
    SECTION_REFLECTOR,
)

SENDER_OPEN_SIZE = SENDER_OPEN.size  # 14
SENDER_AUTH_SIZE = SENDER_AUTH.size  # 48
REFLECTOR_OPEN_SIZE = REFLECTOR_OPEN.size  # 41
REFLECTOR_AUTH_SIZE = REFLECTOR_AUTH.size  # 112


def sender_layout(authenticated: bool) -> Layout:
    """The Session-Sender layout of the unauthenticated or the authenticated/encrypted modes."""
    return SENDER_AUTH if authenticated else SENDER_OPEN


def reflector_layout(authenticated: bool) -> Layout:
    """The Session-Reflector layout of the unauthenticated or the authenticated/encrypted modes."""
    return REFLECTOR_AUTH if authenticated else REFLECTOR_OPEN


@dataclass(frozen=True, slots=True)
class SenderPacket:
    """A Session-Sender test packet (RFC 4656 §4.1.2 via RFC 5357 §4.1.2)."""

    seq: int
    timestamp: int
    error: int
    padding: bytes = b""

    def encode(self, authenticated: bool = False) -> bytes:
        """Encode; in the authenticated layout the HMAC field is left zero."""
        return encode_fields(
            sender_layout(authenticated), self.padding, self.seq, self.timestamp, self.error
        )

    @classmethod
    def decode(cls, data: bytes, authenticated: bool = False) -> "SenderPacket":
        """Decode a (decrypted) sender packet; padding is what follows the fields."""
        return cls.decode_with(sender_layout(authenticated), data)

    @classmethod
    def decode_with(cls, layout: Layout, data: bytes) -> "SenderPacket":
        """Decode with a sender ``layout``, e.g. OWAMP's renamed one."""
        seq, timestamp, error = layout.unpack(data)
        return cls(seq, timestamp, error, bytes(data[layout.size :]))


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

    def encode(self, authenticated: bool = False) -> bytes:
        """Encode; in the authenticated layout the HMAC field is left zero."""
        fields = (
            self.seq,
            self.timestamp,
            self.error,
            self.receive_timestamp,
            self.sender_seq,
            self.sender_timestamp,
            self.sender_error,
            self.sender_ttl,
        )
        return encode_fields(reflector_layout(authenticated), self.padding, *fields)

    @classmethod
    def decode(cls, data: bytes, authenticated: bool = False) -> "ReflectorPacket":
        """Decode a (decrypted) reflector packet; padding is what follows the fields."""
        layout = reflector_layout(authenticated)
        seq, ts, err, rts, s_seq, s_ts, s_err, s_ttl = layout.unpack(data)
        return cls(seq, ts, err, rts, s_seq, s_ts, s_err, s_ttl, bytes(data[layout.size :]))


def encode_fields(layout: Layout, padding: bytes, *fields: int) -> bytes:
    """A packet of ``layout`` with ``fields``, a zero HMAC field and ``padding``."""
    packet = bytearray(layout.size + len(padding))
    layout.fields.pack_into(packet, 0, *fields)
    packet[layout.size :] = padding
    return bytes(packet)


def sender_size(authenticated: bool, padding: int) -> int:
    """Octets in a sender packet with ``padding`` octets of Packet Padding."""
    return (SENDER_AUTH_SIZE if authenticated else SENDER_OPEN_SIZE) + padding


def reflector_size(authenticated: bool, sender_length: int) -> int:
    """Octets in a reply: the base size, or the sender's length if larger (D14)."""
    base = REFLECTOR_AUTH_SIZE if authenticated else REFLECTOR_OPEN_SIZE
    return max(base, sender_length)
