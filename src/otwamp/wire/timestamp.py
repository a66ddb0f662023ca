"""NTP-format timestamps and the Error Estimate (RFC 4656 §4.1.2).

Timestamp: 32-bit unsigned seconds since 1900-01-01 and a 32-bit binary
fraction. Error Estimate: S (synchronized), Z (MBZ in RFC 4656; RFC 8186
uses it for the PTP format), 6-bit Scale and 8-bit Multiplier; the error is
Multiplier * 2**(-32) * 2**Scale seconds.
"""

import math
import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import need_length

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 to 1970-01-01 (RFC 5905 §6)
_NS = 1_000_000_000
_FRAC = 1 << 32
_TS = struct.Struct("!Q")
_EE = struct.Struct("!H")
SECTION = "RFC 4656 §4.1.2"
_ERA_PIVOT = 1 << 31
_MOD = 1 << 64  # timestamps are 64-bit and wrap with the NTP era (RFC 5905 §6)
_HALF = 1 << 63


def ns_to_ntp(ns: int) -> int:
    """Unix nanoseconds to a 64-bit NTP timestamp; seconds wrap into era 1 in 2036 (RFC 5905 §6)."""
    secs, rem = divmod(ns, _NS)
    return (((secs + NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | ((rem << 32) // _NS)


def ntp_to_ns(ntp: int) -> int:
    """A 64-bit NTP timestamp to Unix nanoseconds (rounded to nearest).

    Seconds below 2**31 (before 1968 in era 0) are read as era 1, 2036 to
    2104, the usual pivot for the 32-bit field (RFC 5905 §6).
    """
    secs = ntp >> 32
    secs += (1 << 32) if secs < _ERA_PIVOT else 0
    secs -= NTP_UNIX_OFFSET
    return secs * _NS + (((ntp & 0xFFFFFFFF) * _NS + (_FRAC >> 1)) >> 32)


def ntp_add(ntp: int, delta: int) -> int:
    """A timestamp moved by a signed 32.32 interval, modulo 2**64 (RFC 5905 §6 era wrap)."""
    return (ntp + delta) % _MOD


def ntp_diff(later: int, earlier: int) -> int:
    """``later - earlier`` as a signed 32.32 interval, correct across an era wrap (RFC 5905 §6).

    Timestamps less than 2**63 apart (68 years) compare correctly, the
    serial-number arithmetic of RFC 1982 applied to 64 bits.
    """
    return (later - earlier + _HALF) % _MOD - _HALF


def encode_timestamp(ntp: int) -> bytes:
    """Encode a 64-bit NTP timestamp as 8 octets."""
    return _TS.pack(ntp)


def decode_timestamp(data: bytes) -> int:
    """Decode 8 octets to a 64-bit NTP timestamp."""
    need_length(data, 8, "Timestamp", SECTION)
    value: int = _TS.unpack(data)[0]
    return value


def duration_to_ntp(seconds: float) -> int:
    """A non-negative interval (e.g. Timeout, RFC 4656 §3.5) in timestamp format."""
    if seconds < 0 or not math.isfinite(seconds):
        raise ValueError("an interval must be finite and non-negative")
    return round(seconds * _FRAC)


def ntp_to_duration(ntp: int) -> float:
    """An interval in timestamp format to seconds."""
    return ntp / _FRAC


@dataclass(frozen=True, slots=True)
class ErrorEstimate:
    """The 16-bit Error Estimate of RFC 4656 §4.1.2."""

    sync: bool
    scale: int
    multiplier: int
    z: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.scale < 64:
            raise ValueError("Scale is 6 bits")
        if not 1 <= self.multiplier < 256:
            raise ValueError("Multiplier is 8 bits and MUST NOT be zero")

    @property
    def seconds(self) -> float:
        """The estimated error in seconds."""
        return self.multiplier * 2.0 ** (self.scale - 32)

    def to_int(self) -> int:
        """The 16-bit wire value."""
        return (self.sync << 15) | (self.z << 14) | (self.scale << 8) | self.multiplier

    def encode(self) -> bytes:
        """Encode as 2 octets."""
        return _EE.pack(self.to_int())

    @classmethod
    def from_int(cls, value: int) -> "ErrorEstimate":
        """Decode the 16-bit wire value; Multiplier 0 marks a corrupt packet."""
        multiplier = value & 0xFF
        if multiplier == 0:
            raise ProtocolError(
                "Multiplier MUST NOT be zero", field="Error Estimate", section=SECTION
            )
        return cls(bool(value & 0x8000), (value >> 8) & 0x3F, multiplier, bool(value & 0x4000))

    @classmethod
    def decode(cls, data: bytes) -> "ErrorEstimate":
        """Decode 2 octets."""
        need_length(data, 2, "Error Estimate", SECTION)
        value: int = _EE.unpack(data)[0]
        return cls.from_int(value)

    @classmethod
    def from_seconds(cls, error: float, sync: bool) -> "ErrorEstimate":
        """The smallest encodable estimate that is not below ``error`` seconds."""
        if math.isnan(error) or error == math.inf:
            return cls(sync, 63, 255)  # unknown or unbounded: the largest estimate
        if error <= 0:
            return cls(sync, 0, 1)
        scale = 0
        while scale < 63 and math.ceil(error * 2.0 ** (32 - scale)) > 255:
            scale += 1
        multiplier = min(255, max(1, math.ceil(error * 2.0 ** (32 - scale))))
        return cls(sync, scale, multiplier)
