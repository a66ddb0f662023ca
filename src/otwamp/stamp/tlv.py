"""STAMP TLVs (RFC 8972 §4): the generic TLV, the flags, and one class per TLV type.

Every TLV is STAMP TLV Flags (U, M, I), Type, Length and Value (RFC 8972 §4,
Figure 5). ``split_tlvs`` cuts a packet's TLV octets into TLVs and says where
a malformed one begins (a Length beyond what is left); the typed classes
decode a Value and raise ProtocolError when its Length is not valid for the
type, which a Session-Reflector answers with the M flag (RFC 8972 §4).
"""

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import ClassVar, Self, TypeAlias

from otwamp.errors import ProtocolError

SECTION = "RFC 8972 §4"
HEADER = struct.Struct("!BBH")  # Flags, Type, Length
HEADER_SIZE = HEADER.size
FLAG_U = 0x80  # Unrecognized (RFC 8972 §4, Figure 6)
FLAG_M = 0x40  # Malformed
FLAG_I = 0x20  # Integrity check failed
HMAC_TLV_SIZE = 16


class TlvType(enum.IntEnum):
    """The STAMP TLV Types registry (RFC 8972 §5.1, Table 2)."""

    EXTRA_PADDING = 1
    LOCATION = 2
    TIMESTAMP_INFORMATION = 3
    CLASS_OF_SERVICE = 4
    DIRECT_MEASUREMENT = 5
    ACCESS_REPORT = 6
    FOLLOW_UP_TELEMETRY = 7
    HMAC = 8


class SubTlvType(enum.IntEnum):
    """The STAMP Sub-TLV Types registry (RFC 8972 §5.3, Table 5), all of the Location TLV."""

    SOURCE_MAC = 1
    SOURCE_EUI48 = 2
    SOURCE_EUI64 = 3
    DESTINATION_IP = 4
    DESTINATION_IPV4 = 5
    DESTINATION_IPV6 = 6
    SOURCE_IP = 7
    SOURCE_IPV4 = 8
    SOURCE_IPV6 = 9


class SyncSource(enum.IntEnum):
    """The STAMP Synchronization Sources registry (RFC 8972 §5.4, Table 7)."""

    RESERVED = 0
    NTP = 1
    PTP = 2
    SSU_BITS = 3
    GNSS = 4  # GPS/GLONASS/LORAN-C/BDS/Galileo
    LOCAL_FREE_RUNNING = 5


class TimestampMethod(enum.IntEnum):
    """The STAMP Timestamping Methods registry (RFC 8972 §5.5, Table 9)."""

    RESERVED = 0
    HW_ASSIST = 1
    SW_LOCAL = 2
    CONTROL_PLANE = 3


class AccessId(enum.IntEnum):
    """Access ID of the Access Report TLV (RFC 8972 §4.6)."""

    THREE_GPP = 1
    NON_THREE_GPP = 2


@dataclass(frozen=True, slots=True)
class Tlv:
    """One TLV (or sub-TLV) as on the wire: Flags, Type and Value (RFC 8972 §4)."""

    flags: int
    type: int
    value: bytes = b""

    def encode(self) -> bytes:
        """Flags, Type, Length and Value."""
        if len(self.value) > 0xFFFF:
            raise ValueError("a TLV Value has at most 65535 octets")
        return HEADER.pack(self.flags, self.type, len(self.value)) + self.value

    @property
    def size(self) -> int:
        """Octets on the wire."""
        return HEADER_SIZE + len(self.value)


@dataclass(frozen=True, slots=True)
class Split:
    """TLV octets cut into TLVs: each with its offset, and where a malformed rest begins.

    ``malformed_at`` is the offset of a TLV whose Length runs past the end
    (RFC 8972 §4: "the remaining length ... is less than the size of the
    TLV"), or of fewer than four octets left over; None when the TLVs fill
    the octets exactly.
    """

    tlvs: tuple[tuple[int, Tlv], ...]
    malformed_at: int | None


def split_tlvs(data: bytes | bytearray | memoryview) -> Split:
    """Cut ``data`` into TLVs; never raises, whatever the octets."""
    view = memoryview(data)
    tlvs: list[tuple[int, Tlv]] = []
    offset = 0
    while offset < len(view):
        if len(view) - offset < HEADER_SIZE:
            return Split(tuple(tlvs), offset)
        flags, kind, length = HEADER.unpack_from(view, offset)
        end = offset + HEADER_SIZE + length
        if end > len(view):
            return Split(tuple(tlvs), offset)
        tlvs.append((offset, Tlv(flags, kind, bytes(view[offset + HEADER_SIZE : end]))))
        offset = end
    return Split(tuple(tlvs), None)


def encode_tlvs(tlvs: "tuple[Tlv, ...] | list[Tlv]") -> bytes:
    """TLVs back to back."""
    return b"".join(tlv.encode() for tlv in tlvs)


def _length(value: bytes, expected: int, what: str, section: str) -> None:
    if len(value) != expected:
        raise ProtocolError(
            f"Length {len(value)}, expected {expected}", field=f"{what} TLV", section=section
        )


def _at_least(value: bytes, minimum: int, what: str, section: str) -> None:
    if len(value) < minimum:
        raise ProtocolError(
            f"Length {len(value)}, expected at least {minimum}",
            field=f"{what} TLV",
            section=section,
        )


@dataclass(frozen=True, slots=True)
class ExtraPadding:
    """Extra Padding TLV (RFC 8972 §4.1): any number of octets, pseudorandom or zero."""

    TYPE: ClassVar[TlvType] = TlvType.EXTRA_PADDING
    padding: bytes = b""

    def encode_value(self) -> bytes:
        """The Value field."""
        return self.padding

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Any Value is valid."""
        return cls(value)


@dataclass(frozen=True, slots=True)
class Location:
    """Location TLV (RFC 8972 §4.2): the ports seen by the reflector and sub-TLVs (§4.2.1)."""

    TYPE: ClassVar[TlvType] = TlvType.LOCATION
    SECTION: ClassVar[str] = "RFC 8972 §4.2"
    destination_port: int = 0
    source_port: int = 0
    sub_tlvs: bytes = b""  # undecoded: see ``split_tlvs`` and ``decode_location_sub_tlv``

    def encode_value(self) -> bytes:
        """The Value field."""
        return struct.pack("!HH", self.destination_port, self.source_port) + self.sub_tlvs

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Ports and sub-TLV octets; at least the 4 octets of the ports."""
        _at_least(value, 4, "Location", cls.SECTION)
        destination, source = struct.unpack_from("!HH", value)
        return cls(destination, source, value[4:])


SUB_SECTION = "RFC 8972 §4.2.1"
# The Length each Location sub-TLV must have (RFC 8972 §4.2.1).
SUB_TLV_LENGTHS = {
    SubTlvType.SOURCE_MAC: 8,
    SubTlvType.SOURCE_EUI48: 8,
    SubTlvType.SOURCE_EUI64: 8,
    SubTlvType.DESTINATION_IP: 16,
    SubTlvType.DESTINATION_IPV4: 16,
    SubTlvType.DESTINATION_IPV6: 16,
    SubTlvType.SOURCE_IP: 16,
    SubTlvType.SOURCE_IPV4: 16,
    SubTlvType.SOURCE_IPV6: 16,
}
IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
LocationValue: TypeAlias = IPAddress | bytes | None


def decode_location_sub_tlv(tlv: Tlv) -> LocationValue:
    """What a Location sub-TLV reports: an address, a MAC's octets, or None for a request.

    Raises ProtocolError for an unknown type or a Length other than the
    type's (RFC 8972 §4.2.1).
    """
    try:
        kind = SubTlvType(tlv.type)
    except ValueError:
        raise ProtocolError(
            f"unknown sub-TLV type {tlv.type}", field="Location sub-TLV", section=SUB_SECTION
        ) from None
    _length(tlv.value, SUB_TLV_LENGTHS[kind], kind.name, SUB_SECTION)
    if kind in (SubTlvType.DESTINATION_IPV4, SubTlvType.SOURCE_IPV4):
        return ipaddress.IPv4Address(tlv.value[:4])
    if kind in (SubTlvType.DESTINATION_IPV6, SubTlvType.SOURCE_IPV6):
        return ipaddress.IPv6Address(tlv.value)
    if kind is SubTlvType.SOURCE_EUI48:
        return tlv.value[:6]
    if kind is SubTlvType.SOURCE_EUI64:
        return tlv.value
    return None  # the requests: Source MAC, Destination IP, Source IP carry MBZ only


def address_sub_tlv(destination: bool, address: IPAddress) -> Tlv:
    """The Destination/Source IPv4/IPv6 Address sub-TLV of ``address`` (RFC 8972 §4.2.1)."""
    if address.version == 4:
        kind = SubTlvType.DESTINATION_IPV4 if destination else SubTlvType.SOURCE_IPV4
    else:
        kind = SubTlvType.DESTINATION_IPV6 if destination else SubTlvType.SOURCE_IPV6
    return Tlv(0, kind, address.packed.ljust(16, b"\0"))


@dataclass(frozen=True, slots=True)
class TimestampInformation:
    """Timestamp Information TLV (RFC 8972 §4.3): clock sources and stamping methods."""

    TYPE: ClassVar[TlvType] = TlvType.TIMESTAMP_INFORMATION
    SECTION: ClassVar[str] = "RFC 8972 §4.3"
    sync_in: int = 0
    timestamp_in: int = 0
    sync_out: int = 0
    timestamp_out: int = 0
    sub_tlvs: bytes = b""

    def encode_value(self) -> bytes:
        """The Value field."""
        fields = (self.sync_in, self.timestamp_in, self.sync_out, self.timestamp_out)
        return bytes(fields) + self.sub_tlvs

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """The four one-octet fields and optional sub-TLV octets."""
        _at_least(value, 4, "Timestamp Information", cls.SECTION)
        return cls(value[0], value[1], value[2], value[3], value[4:])


@dataclass(frozen=True, slots=True)
class ClassOfService:
    """Class of Service TLV (RFC 8972 §4.4): DSCP1 asked, DSCP2 and ECN seen, RP."""

    TYPE: ClassVar[TlvType] = TlvType.CLASS_OF_SERVICE
    SECTION: ClassVar[str] = "RFC 8972 §4.4"
    dscp1: int = 0
    dscp2: int = 0
    ecn: int = 0
    rp: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.dscp1 < 64 and 0 <= self.dscp2 < 64 and 0 <= self.ecn < 4):
            raise ValueError("DSCP is 6 bits, ECN 2")
        if not 0 <= self.rp < 4:
            raise ValueError("RP is 2 bits")

    def encode_value(self) -> bytes:
        """DSCP1 (6 bits), DSCP2 (6), ECN (2), RP (2), Reserved (16)."""
        word = (self.dscp1 << 26) | (self.dscp2 << 20) | (self.ecn << 18) | (self.rp << 16)
        return struct.pack("!I", word)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Length must be 4; Reserved is ignored."""
        _length(value, 4, "Class of Service", cls.SECTION)
        (word,) = struct.unpack("!I", value)
        return cls(word >> 26, (word >> 20) & 0x3F, (word >> 18) & 3, (word >> 16) & 3)


@dataclass(frozen=True, slots=True)
class DirectMeasurement:
    """Direct Measurement TLV (RFC 8972 §4.5): S_TxC, R_RxC, R_TxC counters."""

    TYPE: ClassVar[TlvType] = TlvType.DIRECT_MEASUREMENT
    SECTION: ClassVar[str] = "RFC 8972 §4.5"
    sender_tx: int = 0
    reflector_rx: int = 0
    reflector_tx: int = 0

    def encode_value(self) -> bytes:
        """Three four-octet counters (they wrap at 2**32)."""
        mask = 0xFFFFFFFF
        return struct.pack(
            "!III", self.sender_tx & mask, self.reflector_rx & mask, self.reflector_tx & mask
        )

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Length must be 12."""
        _length(value, 12, "Direct Measurement", cls.SECTION)
        return cls(*struct.unpack("!III", value))


@dataclass(frozen=True, slots=True)
class AccessReport:
    """Access Report TLV (RFC 8972 §4.6): Access ID (1 or 2) and Return Code."""

    TYPE: ClassVar[TlvType] = TlvType.ACCESS_REPORT
    SECTION: ClassVar[str] = "RFC 8972 §4.6"
    access_id: int = AccessId.THREE_GPP
    return_code: int = 0

    def encode_value(self) -> bytes:
        """ID (4 bits), Resv (4), Return Code (8), Reserved (16)."""
        return struct.pack("!BBH", (self.access_id & 0x0F) << 4, self.return_code, 0)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Length must be 4 and the ID 1 or 2 ("All other values are invalid")."""
        _length(value, 4, "Access Report", cls.SECTION)
        access_id = value[0] >> 4
        if access_id not in (AccessId.THREE_GPP, AccessId.NON_THREE_GPP):
            raise ProtocolError(
                f"Access ID {access_id}, not 1 or 2", field="Access Report TLV", section=cls.SECTION
            )
        return cls(access_id, value[1])


@dataclass(frozen=True, slots=True)
class FollowUpTelemetry:
    """Follow-Up Telemetry TLV (RFC 8972 §4.7): the previous reply's seq and send time."""

    TYPE: ClassVar[TlvType] = TlvType.FOLLOW_UP_TELEMETRY
    SECTION: ClassVar[str] = "RFC 8972 §4.7"
    seq: int = 0
    timestamp: int = 0
    mode: int = 0  # a TimestampMethod

    def encode_value(self) -> bytes:
        """Sequence Number, Follow-Up Timestamp, Timestamp M(ode), Reserved (3)."""
        return struct.pack("!IQB3x", self.seq, self.timestamp, self.mode)

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Length must be 16."""
        _length(value, 16, "Follow-Up Telemetry", cls.SECTION)
        return cls(*struct.unpack("!IQB3x", value))


@dataclass(frozen=True, slots=True)
class HmacTlv:
    """HMAC TLV (RFC 8972 §4.8): HMAC-SHA-256-128 of the Sequence Number and earlier TLVs."""

    TYPE: ClassVar[TlvType] = TlvType.HMAC
    SECTION: ClassVar[str] = "RFC 8972 §4.8"
    hmac: bytes = bytes(HMAC_TLV_SIZE)

    def __post_init__(self) -> None:
        if len(self.hmac) != HMAC_TLV_SIZE:
            raise ValueError("the HMAC TLV carries 16 octets")

    def encode_value(self) -> bytes:
        """The 16-octet HMAC."""
        return self.hmac

    @classmethod
    def decode_value(cls, value: bytes) -> Self:
        """Length must be 16."""
        _length(value, HMAC_TLV_SIZE, "HMAC", cls.SECTION)
        return cls(value)


Typed: TypeAlias = (
    ExtraPadding
    | Location
    | TimestampInformation
    | ClassOfService
    | DirectMeasurement
    | AccessReport
    | FollowUpTelemetry
    | HmacTlv
)
TYPED: dict[int, type[Typed]] = {
    cls.TYPE: cls
    for cls in (
        ExtraPadding,
        Location,
        TimestampInformation,
        ClassOfService,
        DirectMeasurement,
        AccessReport,
        FollowUpTelemetry,
        HmacTlv,
    )
}


def decode_typed(tlv: Tlv) -> Typed | None:
    """The typed TLV, None for a type we do not know; ProtocolError for a bad Length/value."""
    cls = TYPED.get(tlv.type)
    return None if cls is None else cls.decode_value(tlv.value)


def to_tlv(typed: Typed, flags: int = 0) -> Tlv:
    """A typed TLV as a generic one with ``flags``."""
    return Tlv(flags, typed.TYPE, typed.encode_value())
